package db_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
)

// setupPrivacy returns a store over a fresh, migrated database and a random privacy key.
func setupPrivacy(t *testing.T) (*db.Store, []byte) {
	t.Helper()
	return dbtest.StoreWithKey(t)
}

// person is a lead seeded with data in every table that can hold a lead's data.
type person struct {
	id, email, name string
}

// seedPerson records a lead through the Store where it can (capture, send, bounce) and with SQL
// where the sales flow would need a workflow, spreading the address and the name into free-text
// columns the way real data does (bounce messages, URLs, rep notes).
func seedPerson(t *testing.T, store *db.Store, email, name string) person {
	t.Helper()
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := store.Pool().Exec(ctx, sql, args...)
		require.NoError(t, err, sql)
	}
	captured, err := store.RecordCapture(ctx, db.Capture{
		Email: email, Name: name, Company: "Acme", Interests: []string{"pricing"},
		Attributes: map[string]string{"signature": name + " <" + email + ">"},
		Source:     "ebook_download", Segment: "b2b", Stage: "lead",
		Consent:   &db.Consent{Granted: true, WordingID: "v1", IP: "192.0.2.7"},
		EventType: "ebook_download",
	})
	require.NoError(t, err)
	id := captured.Lead.ID

	claim, err := store.ClaimSend(ctx, db.SendKey{LeadID: id, SequenceID: "welcome", StepID: "d0"}, "welcome", "mail.example.com")
	require.NoError(t, err)
	require.NoError(t, claim.MarkFailed(ctx, 550, "5.1.1", "550 5.1.1 <"+email+">: no such user", true))

	sendID := uuid.NewString()
	exec(`INSERT INTO sends (id, lead_id, sequence_id, step_id, template, message_id, status, subject, sent_at)
		VALUES ($1, $2, 'welcome', 'd3', 'tips', $3, 'sent', $4, now())`, sendID, id, "<"+sendID+"@mail.example.com>",
		"Hi "+name+", three tips")
	exec(`INSERT INTO send_links (send_id, idx, url, tag) VALUES ($1, 0, $2, 'pricing')`, sendID,
		"https://example.com/pricing?email="+email)
	_, err = store.InsertEvents(ctx, []db.Event{{LeadID: id, Type: "click", SendID: sendID, URL: "https://example.com/pricing?email=" + email,
		ClientEventID: "c1", UserAgent: "Mozilla/5.0", OccurredAt: time.Now()}})
	require.NoError(t, err)
	exec(`INSERT INTO stage_changes (lead_id, from_stage, to_stage, reason, actor) VALUES ($1, 'lead', 'mql', $2, 'ana')`,
		id, "call with "+name)
	var handoffID int64
	require.NoError(t, store.Pool().QueryRow(ctx, `INSERT INTO handoffs (lead_id, seq, assignment, rep_id, policy, reason,
		handed_off_at, due_at, outcome, reject_reason, reject_note) VALUES ($1, 1, 1, 'ana', 'round_robin', 'score', now(),
		now() + interval '1 hour', 'rejected', 'not_a_fit', $2) RETURNING id`, id, name+" is a student").Scan(&handoffID))
	exec(`INSERT INTO escalations (handoff_id, lapse, manager_id, overdue_seconds) VALUES ($1, 1, 'max', 60)`, handoffID)
	_, err = store.SaveAnswerNote(ctx, id, "Note about "+name+": call back after the trip")
	require.NoError(t, err)
	exec(`INSERT INTO held_sends (lead_id, sequence_id, step_id) VALUES ($1, 'analytics-series', 'deep-dive')`, id)
	exec(`INSERT INTO conversions (lead_id, sequence_id, goal) VALUES ($1, 'analytics-series', 'event demo_request')`, id)
	exec(`INSERT INTO qualifications (lead_id, rep_id, need, budget) VALUES ($1, 'ana', $2, '10k')`, id, name+" needs SSO")
	exec(`INSERT INTO event_aggregates (lead_id, day, type, tags, count) VALUES ($1, '2025-01-02', 'page_view', '{pricing}', 3)`, id)
	exec(`INSERT INTO opportunities (lead_id, rep_id, outcome, value, currency, lost_reason, closed_at)
		VALUES ($1, 'ana', 'lost', 1234.50, 'EUR', $2, now())`, id, "went quiet after "+email+" left")
	exec(`INSERT INTO notices (key, lead_id, kind, recipient, message_id, status, error)
		VALUES ($1, $2, 'handoff', 'ana', $3, 'failed', $4)`, "handoff:"+id, id, "<n-"+id+"@mail.example.com>",
		"about "+name)
	return person{id: id, email: email, name: name}
}

// leadTables lists every table with a lead_id column, read from the catalogue so that a table
// added later is covered without anyone remembering to add it here.
func leadTables(t *testing.T, store *db.Store) []string {
	t.Helper()
	rows, err := store.Pool().Query(context.Background(), `SELECT c.table_name FROM information_schema.columns c
		JOIN information_schema.tables t USING (table_schema, table_name)
		WHERE c.table_schema = current_schema() AND c.column_name = 'lead_id' AND t.table_type = 'BASE TABLE'
		ORDER BY 1`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.NotEmpty(t, tables)
	return tables
}

// childTables are the tables that hold a lead's rows through a parent rather than a lead_id.
var childTables = map[string]string{
	"send_links":  `SELECT count(*) FROM send_links c JOIN sends p ON p.id = c.send_id WHERE p.lead_id = $1`,
	"escalations": `SELECT count(*) FROM escalations c JOIN handoffs p ON p.id = c.handoff_id WHERE p.lead_id = $1`,
}

// countRows returns, per table, how many rows belong to the lead.
func countRows(t *testing.T, store *db.Store, leadID string) map[string]int {
	t.Helper()
	ctx := context.Background()
	counts := map[string]int{}
	for _, table := range leadTables(t, store) {
		var n int
		require.NoError(t, store.Pool().QueryRow(ctx,
			`SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize()+` WHERE lead_id = $1`, leadID).Scan(&n))
		counts[table] = n
	}
	for table, sql := range childTables {
		var n int
		require.NoError(t, store.Pool().QueryRow(ctx, sql, leadID).Scan(&n))
		counts[table] = n
	}
	return counts
}

// findText returns "table.column" for every column of every table in which text occurs,
// case-insensitively. bytea is read as escaped bytes, so clear text stored there is found too.
func findText(t *testing.T, store *db.Store, text string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := store.Pool().Query(ctx, `SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c
		JOIN information_schema.tables t USING (table_schema, table_name)
		WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' ORDER BY 1, 2`)
	require.NoError(t, err)
	type column struct{ table, name, typ string }
	columns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		err := r.Scan(&c.table, &c.name, &c.typ)
		return c, err
	})
	require.NoError(t, err)
	require.Greater(t, len(columns), 50, "the scan must see the whole schema")
	var found []string
	for _, c := range columns {
		expr := pgx.Identifier{c.name}.Sanitize() + "::text"
		if c.typ == "bytea" {
			expr = "encode(" + pgx.Identifier{c.name}.Sanitize() + ", 'escape')"
		}
		var n int
		require.NoError(t, store.Pool().QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{c.table}.Sanitize()+
			` WHERE strpos(lower(`+expr+`), lower($1)) > 0`, text).Scan(&n))
		if n > 0 {
			found = append(found, c.table+"."+c.name)
		}
	}
	return found
}

func TestExportHoldsEveryTableOfTheLead(t *testing.T) {
	t.Parallel()
	store, key := setupPrivacy(t)
	ctx := context.Background()
	zelda := seedPerson(t, store, "zelda.quimby@example.org", "Zelda Quimbyfort")
	other := seedPerson(t, store, "otto@example.net", "Otto Brandvold")

	want := countRows(t, store, zelda.id)
	for table, n := range want {
		require.Positive(t, n, "the fixture puts no row in %s: extend seedPerson so its export and erasure are tested", table)
	}
	assert.Equal(t, want, countRows(t, store, other.id), "the two people have the same shape of data")

	exp, err := store.Export(ctx, key, zelda.id)
	require.NoError(t, err)
	raw, err := json.Marshal(exp)
	require.NoError(t, err)
	var sections map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &sections))
	for table, n := range want {
		section, ok := sections[table]
		require.True(t, ok, "table %s holds lead data but Export has no %q section", table, table)
		var rows []map[string]any
		require.NoError(t, json.Unmarshal(section, &rows))
		assert.Len(t, rows, n, table)
		for _, row := range rows {
			if id, ok := row["lead_id"]; ok {
				assert.Equal(t, zelda.id, id, "%s: only the lead's own rows", table)
			}
		}
	}

	assert.Equal(t, zelda.id, exp.Lead.ID)
	assert.Equal(t, "Zelda Quimbyfort", exp.Lead.Name)
	assert.Equal(t, "Zelda Quimbyfort <zelda.quimby@example.org>", exp.Lead.Attributes["signature"])
	assert.Equal(t, "192.0.2.7", exp.Consents[0]["ip"])
	assert.Equal(t, json.Number("1234.50"), exp.Opportunities[0]["value"], "money keeps its exact digits")
	require.NotNil(t, exp.Suppressed)
	assert.Equal(t, "hard_bounce", *exp.Suppressed)
	assert.WithinDuration(t, time.Now(), exp.ExportedAt, time.Minute)

	// Once the list holds only hashes the export still finds the address on it.
	_, err = store.HashSuppressions(ctx, key)
	require.NoError(t, err)
	exp, err = store.Export(ctx, key, zelda.id)
	require.NoError(t, err)
	require.NotNil(t, exp.Suppressed)
	assert.Equal(t, "hard_bounce", *exp.Suppressed)

	// A lead with nothing but the lead row exports empty lists, not nulls.
	bare, err := store.RecordCapture(ctx, db.Capture{Email: "bare@example.com", Source: "api", Segment: "b2b", Stage: "lead"})
	require.NoError(t, err)
	exp, err = store.Export(ctx, key, bare.Lead.ID)
	require.NoError(t, err)
	assert.Nil(t, exp.Suppressed)
	assert.NotNil(t, exp.Handoffs)
	assert.Empty(t, exp.Handoffs)
}

func TestExportUnknownLead(t *testing.T) {
	t.Parallel()
	store, key := setupPrivacy(t)
	_, err := store.Export(context.Background(), key, uuid.NewString())
	assert.ErrorIs(t, err, db.ErrNotFound)
	_, err = store.Export(context.Background(), key, "not-a-uuid")
	assert.ErrorIs(t, err, db.ErrNotFound)
}

// The Lead struct is the export of the lead row: a column it does not carry would be left out.
func TestExportLeadCarriesEveryLeadColumn(t *testing.T) {
	t.Parallel()
	store, _ := setupPrivacy(t)
	rows, err := store.Pool().Query(context.Background(), `SELECT column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'leads' ORDER BY 1`)
	require.NoError(t, err)
	columns, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"id", "email", "name", "company", "interests", "attributes", "time_zone", "source",
		"segment", "stage", "unsubscribed_at", "created_at", "updated_at", "score", "band", "score_breakdown", "scored_at",
		"handoff_ready_at", "handoff_reason", "opted_out_interests"}, columns,
		"leads has a column db.Lead does not carry: add it to Lead (and leadColumns) so Export includes it")
}

func TestEraseLeavesNoTrace(t *testing.T) {
	t.Parallel()
	store, key := setupPrivacy(t)
	ctx := context.Background()
	zelda := seedPerson(t, store, "zelda.quimby@example.org", "Zelda Quimbyfort")
	other := seedPerson(t, store, "otto@example.net", "Otto Brandvold")
	otherBefore := countRows(t, store, other.id)
	require.NotEmpty(t, findText(t, store, zelda.email), "the scan must find the address before the erasure")
	require.NotEmpty(t, findText(t, store, zelda.name), "the scan must find the name before the erasure")

	require.NoError(t, store.Erase(ctx, key, zelda.id, "gdpr request"))

	assert.Empty(t, findText(t, store, zelda.email), "the address is still stored")
	assert.Empty(t, findText(t, store, "ZELDA.QUIMBY"), "the address's local part is still stored")
	assert.Empty(t, findText(t, store, zelda.name), "the name is still stored")
	assert.Empty(t, findText(t, store, zelda.id), "the lead id is still stored in clear")
	for table, n := range countRows(t, store, zelda.id) {
		assert.Zero(t, n, table)
	}
	_, err := store.Lead(ctx, zelda.id)
	assert.ErrorIs(t, err, db.ErrNotFound)

	var erasures int
	var reason string
	require.NoError(t, store.Pool().QueryRow(ctx, `SELECT count(*) OVER (), reason FROM erasures WHERE lead_ref = $1`,
		db.LeadRef(key, zelda.id)).Scan(&erasures, &reason))
	assert.Equal(t, 1, erasures)
	assert.Equal(t, "gdpr request", reason)

	why, ok, err := store.IsSuppressed(ctx, key, "Zelda.Quimby@Example.org")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, db.SuppressionErased, why)

	// The other person is untouched.
	assert.Equal(t, otherBefore, countRows(t, store, other.id))
	assert.NotEmpty(t, findText(t, store, other.name))

	// A re-import brings the address back as a new lead, still suppressed.
	again, err := store.RecordCapture(ctx, db.Capture{Email: zelda.email, Source: "import", Segment: "b2b", Stage: "lead"})
	require.NoError(t, err)
	assert.True(t, again.Created)
	why, ok, err = store.IsSuppressed(ctx, key, again.Lead.Email)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, db.SuppressionErased, why)

	assert.ErrorIs(t, store.Erase(ctx, key, zelda.id, "again"), db.ErrNotFound)
}

func TestEraseUnknownLead(t *testing.T) {
	t.Parallel()
	store, key := setupPrivacy(t)
	ctx := context.Background()
	assert.ErrorIs(t, store.Erase(ctx, key, uuid.NewString(), "gdpr request"), db.ErrNotFound)
	assert.ErrorIs(t, store.Erase(ctx, key, "not-a-uuid", "gdpr request"), db.ErrNotFound)
	var n int
	require.NoError(t, store.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM erasures) + (SELECT count(*) FROM suppressions)`).Scan(&n))
	assert.Zero(t, n, "a failed erasure writes nothing")
}

func TestEraseIsOneTransaction(t *testing.T) {
	t.Parallel()
	store, key := setupPrivacy(t)
	ctx := context.Background()
	zelda := seedPerson(t, store, "zelda.quimby@example.org", "Zelda Quimbyfort")
	before := countRows(t, store, zelda.id)
	// The last step fails: nothing of the steps before it may stay.
	_, err := store.Pool().Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'refused'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON erasures FOR EACH ROW EXECUTE FUNCTION refuse()`)
	require.NoError(t, err)

	require.Error(t, store.Erase(ctx, key, zelda.id, "gdpr request"))
	assert.Equal(t, before, countRows(t, store, zelda.id))
	why, ok, err := store.IsSuppressed(ctx, key, zelda.email)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "hard_bounce", why, "the suppression is as it was")
}

func TestPrivacyKeyIsRequired(t *testing.T) {
	t.Parallel()
	store, _ := setupPrivacy(t)
	ctx := context.Background()
	short := []byte("short")
	_, _, err := store.IsSuppressed(ctx, short, "a@example.com")
	assert.ErrorContains(t, err, "privacy key")
	assert.ErrorContains(t, store.SuppressHashed(ctx, nil, "a@example.com", "manual", ""), "privacy key")
	assert.ErrorContains(t, store.Erase(ctx, short, uuid.NewString(), ""), "privacy key")
	_, err = store.HashSuppressions(ctx, short)
	assert.ErrorContains(t, err, "privacy key")
	_, err = store.Export(ctx, short, uuid.NewString())
	assert.ErrorContains(t, err, "privacy key")
}

func TestPrivacyHashEmail(t *testing.T) {
	t.Parallel()
	k1, k2 := []byte("0123456789abcdef"), []byte("fedcba9876543210")
	assert.Equal(t, db.HashEmail(k1, "ana@example.com"), db.HashEmail(k1, "  Ana@Example.COM "), "one hash per address")
	assert.Len(t, db.HashEmail(k1, "ana@example.com"), 32)
	assert.NotEqual(t, db.HashEmail(k1, "ana@example.com"), db.HashEmail(k2, "ana@example.com"), "keyed")
	assert.NotEqual(t, db.HashEmail(k1, "ana@example.com"), db.HashEmail(k1, "bob@example.com"))
	assert.NotEqual(t, db.LeadRef(k1, "x"), db.HashEmail(k1, "x"), "lead refs and address hashes never collide")
}

func TestSuppressHashedStoresNoAddress(t *testing.T) {
	t.Parallel()
	store, key := setupPrivacy(t)
	ctx := context.Background()

	require.NoError(t, store.SuppressHashed(ctx, key, " Bob@Example.COM ", "complaint", "FBL report for bob@example.com"))
	require.NoError(t, store.SuppressHashed(ctx, key, "bob@example.com", "manual", "second"))

	why, ok, err := store.IsSuppressed(ctx, key, "bob@example.com")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "complaint", why, "the first reason stays")
	_, ok, err = store.IsSuppressed(ctx, key, "carol@example.com")
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Empty(t, findText(t, store, "bob@example.com"))

	var rows int
	var detail string
	require.NoError(t, store.Pool().QueryRow(ctx, `SELECT count(*) OVER (), detail FROM suppressions WHERE email_hash = $1`,
		db.HashEmail(key, "bob@example.com")).Scan(&rows, &detail))
	assert.Equal(t, 1, rows)
	assert.Equal(t, "FBL report for [address]", detail)

	// An address on the list in clear (written by older code) moves to its hash, first reason kept.
	require.NoError(t, clearSuppression(ctx, store, "dave@example.com", "hard_bounce", "550 <dave@example.com>"))
	require.NoError(t, store.SuppressHashed(ctx, key, "dave@example.com", "manual", ""))
	why, ok, err = store.IsSuppressed(ctx, key, "dave@example.com")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "hard_bounce", why)
	assert.Empty(t, findText(t, store, "dave@example.com"))
}

func TestHashSuppressionsMigratesClearRows(t *testing.T) {
	t.Parallel()
	store, key := setupPrivacy(t)
	ctx := context.Background()

	// Rows as written before 0004, and by code that still writes addresses.
	require.NoError(t, clearSuppression(ctx, store, "ana@example.com", "complaint", "FBL report for ANA@example.com"))
	require.NoError(t, store.SuppressHashed(ctx, key, "bob@example.com", "manual", ""))
	require.NoError(t, clearSuppression(ctx, store, "bob@example.com", "hard_bounce", "550 <bob@example.com>"))
	why, ok, err := store.IsSuppressed(ctx, key, "ana@example.com")
	require.NoError(t, err)
	require.True(t, ok, "a clear row counts before it is hashed")
	require.Equal(t, "complaint", why)

	n, err := store.HashSuppressions(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, 2, n)

	assert.Empty(t, findText(t, store, "ana@example.com"))
	assert.Empty(t, findText(t, store, "bob@example.com"))
	var clear, total int
	require.NoError(t, store.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE email IS NOT NULL), count(*) FROM suppressions`).Scan(&clear, &total))
	assert.Zero(t, clear)
	assert.Equal(t, 2, total, "bob's clear duplicate is dropped")
	var detail string
	require.NoError(t, store.Pool().QueryRow(ctx, `SELECT detail FROM suppressions WHERE email_hash = $1`,
		db.HashEmail(key, "ana@example.com")).Scan(&detail))
	assert.Equal(t, "FBL report for [address]", detail)
	for addr, want := range map[string]string{"ana@example.com": "complaint", "bob@example.com": "manual"} {
		why, ok, err := store.IsSuppressed(ctx, key, addr)
		require.NoError(t, err)
		assert.True(t, ok, addr)
		assert.Equal(t, want, why, addr)
	}

	n, err = store.HashSuppressions(ctx, key)
	require.NoError(t, err)
	assert.Zero(t, n, "a second run changes nothing")
}

func TestHashSuppressionsLongList(t *testing.T) {
	t.Parallel()
	store, key := setupPrivacy(t)
	ctx := context.Background()
	_, err := store.Pool().Exec(ctx, `INSERT INTO suppressions (email, reason)
		SELECT 'user' || i || '@example.com', 'hard_bounce' FROM generate_series(1, 1234) i`)
	require.NoError(t, err)
	n, err := store.HashSuppressions(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, 1234, n)
	why, ok, err := store.IsSuppressed(ctx, key, "user777@example.com")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "hard_bounce", why)
}

func TestRetentionPurgeEventsKeepsScores(t *testing.T) {
	t.Parallel()
	store, _ := setupPrivacy(t)
	ctx := context.Background()
	zelda := seedPerson(t, store, "zelda.quimby@example.org", "Zelda Quimbyfort")
	scoredAt := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	_, err := store.Pool().Exec(ctx, `UPDATE leads SET score = 42.5, band = 'hot', scored_at = $2,
		score_breakdown = '[{"rule":"click","points":42.5}]' WHERE id = $1`, zelda.id, scoredAt)
	require.NoError(t, err)

	cutoff := time.Now().AddDate(0, 0, -365)
	// More old events than one delete batch holds, and the seeded ones, received now.
	_, err = store.Pool().Exec(ctx, `INSERT INTO events (lead_id, type, occurred_at, received_at)
		SELECT $1, 'page_view', $2::timestamptz - i * interval '1 minute', $2::timestamptz - i * interval '1 minute'
		FROM generate_series(1, 12345) i`, zelda.id, cutoff)
	require.NoError(t, err)
	var recent int64
	require.NoError(t, store.Pool().QueryRow(ctx, `SELECT count(*) FROM events WHERE received_at >= $1`, cutoff).Scan(&recent))
	require.Positive(t, recent)

	n, err := store.PurgeEvents(ctx, cutoff)
	require.NoError(t, err)
	assert.Equal(t, int64(12345), n)
	var left int64
	require.NoError(t, store.Pool().QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&left))
	assert.Equal(t, recent, left, "recent events stay")
	var folded int64
	require.NoError(t, store.Pool().QueryRow(ctx, `SELECT coalesce(sum(count), 0) FROM event_aggregates WHERE lead_id = $1 AND type = 'page_view' AND tags = '{}'`,
		zelda.id).Scan(&folded))
	assert.Equal(t, int64(12345), folded, "every purged event is counted in the daily aggregates")

	lead, err := store.Lead(ctx, zelda.id)
	require.NoError(t, err)
	assert.Equal(t, 42.5, lead.Score)
	assert.Equal(t, "hot", lead.Band)
	require.NotNil(t, lead.ScoredAt)
	assert.True(t, scoredAt.Equal(*lead.ScoredAt))
	assert.JSONEq(t, `[{"rule":"click","points":42.5}]`, string(lead.Breakdown))

	n, err = store.PurgeEvents(ctx, cutoff)
	require.NoError(t, err)
	assert.Zero(t, n)
}

// Example of an export as an API would serve it; kept here to show its shape stays JSON-able.
func TestExportIsJSON(t *testing.T) {
	t.Parallel()
	store, key := setupPrivacy(t)
	zelda := seedPerson(t, store, "zelda.quimby@example.org", "Zelda Quimbyfort")
	exp, err := store.Export(context.Background(), key, zelda.id)
	require.NoError(t, err)
	raw, err := json.Marshal(exp)
	require.NoError(t, err)
	for _, want := range []string{`"lead":{`, `"send_links":[{`, `"escalations":[{`, `"suppressed":"hard_bounce"`,
		fmt.Sprintf(`"id":%q`, zelda.id)} {
		assert.True(t, strings.Contains(string(raw), want), "export lacks %s", want)
	}
}

// clearSuppression writes a suppression row with the address in clear, as code before the keyed
// suppression list did.
func clearSuppression(ctx context.Context, store *db.Store, email, reason, detail string) error {
	_, err := store.Pool().Exec(ctx, `INSERT INTO suppressions (email, reason, detail) VALUES ($1, $2, $3)
		ON CONFLICT (email) DO NOTHING`, email, reason, detail)
	return err
}
