package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
)

// reportData fills a tend's database with four leads of two sources at four stages, their stage
// history, and three handoffs: one accepted in 90 s, one rejected for a reason, one open. It
// returns the lead ids, oldest first.
func reportData(t *testing.T, store *db.Store) []string {
	t.Helper()
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := store.Pool().Exec(ctx, sql, args...)
		require.NoError(t, err, sql)
	}
	day := time.Date(2026, 11, 10, 9, 0, 0, 0, time.UTC)
	var ids []string
	for i, l := range []struct{ email, source, stage, band string }{
		{"ada@example.com", "ebook_download", "customer", "hot"},
		{"grace@example.com", "ebook_download", "sql", "hot"},
		{"alan@example.com", "webinar_registration", "mql", "warm"},
		{"edsger@example.com", "webinar_registration", "lead", "cold"},
	} {
		id := uuid.NewString()
		ids = append(ids, id)
		at := day.Add(time.Duration(i) * time.Hour)
		exec(`INSERT INTO leads (id, email, name, source, segment, stage, band, score, score_breakdown, created_at, updated_at)
			VALUES ($1, $2, initcap(split_part($2, '@', 1)), $3, 'analytics', $4, $5, $6, $7, $8, $8)`,
			id, l.email, l.source, l.stage, l.band, float64(60-15*i),
			`[{"rule_id":"pricing-page","kind":"behaviour","points":15,"events":1},{"rule_id":"big-company","kind":"fit","points":10,"events":0}]`, at)
		order := []string{"lead", "mql", "sal", "sql", "opportunity", "customer"}
		for j := 1; j < len(order) && order[j-1] != l.stage; j++ {
			exec(`INSERT INTO stage_changes (lead_id, from_stage, to_stage, reason, changed_at) VALUES ($1, $2, $3, 'test', $4)`,
				id, order[j-1], order[j], at.Add(time.Duration(j)*time.Minute))
		}
	}
	exec(`INSERT INTO handoffs (lead_id, seq, assignment, rep_id, policy, reason, handed_off_at, due_at, accepted_at, responded_at, response_seconds, outcome)
		VALUES ($1, 1, 1, 'rep-mia', 'mql', 'score 60', $2, $2::timestamptz + interval '2 minutes', $2::timestamptz + interval '90 seconds',
		        $2::timestamptz + interval '90 seconds', 90, 'accepted')`, ids[0], day.Add(2*time.Minute))
	exec(`INSERT INTO handoffs (lead_id, seq, assignment, rep_id, policy, reason, handed_off_at, due_at, responded_at, response_seconds, outcome, reject_reason)
		VALUES ($1, 1, 1, 'rep-jonas', 'mql', 'score 45', $2, $2::timestamptz + interval '2 minutes', $2::timestamptz + interval '5 minutes', 300,
		        'rejected', 'no budget')`, ids[1], day.Add(time.Hour+2*time.Minute))
	exec(`INSERT INTO handoffs (lead_id, seq, assignment, rep_id, policy, reason, handed_off_at, due_at)
		VALUES ($1, 1, 1, 'rep-mia', 'hand-raise', 'demo_request', $2, $2::timestamptz + interval '1 minute')`, ids[2], day.Add(2*time.Hour+2*time.Minute))
	return ids
}

// tend leads list and show talk to a running tend's API: an aligned table by default, the API's
// JSON as it is with -o json; the filters and the page size go to the API.
func TestLeadsListAndShow(t *testing.T) {
	t.Parallel()
	env, store := contentServer(t)
	ids := reportData(t, store)

	out, err := tendWith(t, env, "leads", "list")
	require.NoError(t, err, out)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 5, out)
	assert.Regexp(t, `^ID +EMAIL +NAME +STAGE +SCORE +BAND +SEGMENT +SOURCE +CREATED \(UTC\)$`, lines[0])
	assert.Regexp(t, `^`+ids[0]+` +ada@example.com +Ada +customer +60 +hot +analytics +ebook_download +2026-11-10 09:00:00$`, lines[1])
	assert.Regexp(t, `^`+ids[3]+` +edsger@example.com +Edsger +lead +15 +cold +analytics +webinar_registration +2026-11-10 12:00:00$`, lines[4])
	col := strings.Index(lines[0], "STAGE")
	for _, l := range lines[1:] {
		assert.NotEqual(t, byte(' '), l[col], "the STAGE column is aligned: %q", l)
		assert.Equal(t, byte(' '), l[col-1], "the STAGE column is aligned: %q", l)
	}

	out, err = tendWith(t, env, "leads", "list", "--stage", "mql")
	require.NoError(t, err, out)
	assert.Contains(t, out, "alan@example.com")
	assert.NotContains(t, out, "ada@example.com")
	out, err = tendWith(t, env, "leads", "list", "--band", "hot", "--segment", "security")
	require.NoError(t, err, out)
	assert.Equal(t, "No leads match.\n", out)

	// A page of two, and the cursor that gives the next.
	out, err = tendWith(t, env, "leads", "list", "--limit", "2")
	require.NoError(t, err, out)
	m := regexp.MustCompile(`(?m)^more: tend leads list --cursor (\S+) \(with the same filters\)$`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	assert.Equal(t, 4, strings.Count(out, "\n"), out)
	out, err = tendWith(t, env, "leads", "list", "--limit", "2", "--cursor", m[1])
	require.NoError(t, err, out)
	assert.Contains(t, out, "alan@example.com")
	assert.Contains(t, out, "edsger@example.com")
	assert.NotContains(t, out, "grace@example.com")

	// -o json is the API's page as it is.
	out, err = tendWith(t, env, "leads", "list", "-o", "json", "--limit", "3")
	require.NoError(t, err, out)
	var page struct {
		Leads []map[string]any `json:"leads"`
		Next  string           `json:"next"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &page), out)
	require.Len(t, page.Leads, 3)
	assert.Equal(t, ids[0], page.Leads[0]["id"])
	assert.Contains(t, page.Leads[0], "breakdown", "every field of the API, not only the table's")
	assert.NotEmpty(t, page.Next)
	assert.True(t, strings.HasPrefix(out, "{\n  \"leads\": [\n"), "pretty-printed: %s", out[:min(len(out), 40)])

	out, err = tendWith(t, env, "leads", "show", ids[1])
	require.NoError(t, err, out)
	assert.Regexp(t, `(?m)^lead +`+ids[1]+`$`, out)
	assert.Regexp(t, `(?m)^email +grace@example.com$`, out)
	assert.Regexp(t, `(?m)^stage +sql$`, out)
	assert.Regexp(t, `(?m)^score +45 \(hot\)$`, out)
	assert.Regexp(t, `(?m)^  pricing-page +behaviour +\+15 +1$`, out)
	assert.Regexp(t, `(?m)^  big-company +fit +\+10 +0$`, out)
	assert.Regexp(t, `(?m)^  2026-11-10 10:02:00 +rep-jonas +mql +2026-11-10 10:04:00 +rejected +5m0s +rejected: no budget$`, out)
	assert.Regexp(t, `(?m)^  2026-11-10 10:03:00 +stage +sal → sql +test$`, out)

	out, err = tendWith(t, env, "leads", "show", ids[1], "-o", "json")
	require.NoError(t, err, out)
	var lead map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &lead), out)
	assert.Equal(t, "grace@example.com", lead["email"])
	assert.Len(t, lead["handoffs"], 1)
	assert.Len(t, lead["stage_changes"], 3)

	_, err = tendWith(t, env, "leads", "show", uuid.NewString())
	require.Error(t, err)
	assert.NotErrorIs(t, err, errUsage, "a lead that is not there is not a usage error")
	assert.Contains(t, err.Error(), "not found")
}

// tend reports funnel and sla print the API's reports as tables, or its JSON with -o json; the
// period goes to the API.
func TestReportsFunnelAndSLA(t *testing.T) {
	t.Parallel()
	env, store := contentServer(t)
	reportData(t, store)

	out, err := tendWith(t, env, "reports", "funnel")
	require.NoError(t, err, out)
	assert.Contains(t, out, "Funnel of the leads created at any time\n")
	assert.Regexp(t, `(?m)^SOURCE +LEAD +MQL +SAL +SQL +CUSTOMER +LEAD→MQL +MQL→SAL +SAL→SQL +SQL→CUSTOMER +SQL→WON DAYS +REVENUE FROM SQLS$`, out)
	assert.Regexp(t, `(?m)^\(all\) +4 +3 +2 +2 +1 +75% +66\.7% +100% +50% +- +0$`, out)
	assert.Regexp(t, `(?m)^ebook_download +2 +2 +2 +2 +1 +100% +100% +100% +50% +- +0$`, out)
	assert.Regexp(t, `(?m)^webinar_registration +2 +1 +0 +0 +0 +50% +0% +0% +0% +- +0$`, out)

	out, err = tendWith(t, env, "reports", "funnel", "--from", "2026-11-10T10:30:00Z", "--source", "webinar_registration")
	require.NoError(t, err, out)
	assert.Contains(t, out, "from 2026-11-10T10:30:00Z")
	assert.Regexp(t, `(?m)^webinar_registration +2 +1 `, out, "the overall row names the source asked for")

	out, err = tendWith(t, env, "reports", "funnel", "-o", "json", "--to", "2026-11-10T09:30:00Z")
	require.NoError(t, err, out)
	var funnel struct {
		Overall db.Funnel `json:"overall"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &funnel), out)
	assert.Equal(t, 1, funnel.Overall.Stages[0].Leads, "only ada was created before 09:30")

	out, err = tendWith(t, env, "reports", "sla")
	require.NoError(t, err, out)
	assert.Regexp(t, `(?m)^REP +HANDOFFS +ANSWERED +MEDIAN +P90 +MEDIAN \(BUSINESS\) +P90 \(BUSINESS\) +BREACHES$`, out)
	assert.Regexp(t, `(?m)^rep-jonas +1 +1 +5m0s +5m0s +\S+ +\S+ +1 \(100%\)$`, out)
	assert.Regexp(t, `(?m)^rep-mia +2 +1 +1m30s +1m30s +\S+ +\S+ +\d \(\d+%\)$`, out)
	assert.Regexp(t, `(?m)^POLICY +HANDOFFS `, out)
	assert.Regexp(t, `(?m)^hand-raise +1 +0 +- +- `, out)
	assert.Regexp(t, `(?m)^  no budget +1$`, out)

	out, err = tendWith(t, env, "reports", "sla", "--output", "json", "--from", "2026-11-10T10:00:00Z")
	require.NoError(t, err, out)
	var sla struct {
		ByRep            []db.SLARow      `json:"by_rep"`
		RejectionReasons []db.ReasonCount `json:"rejection_reasons"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &sla), out)
	require.Len(t, sla.ByRep, 2, "ada's handoff was before 10:00: %s", out)
	assert.Equal(t, []db.ReasonCount{{Reason: "no budget", Count: 1}}, sla.RejectionReasons)

	out, err = tendWith(t, env, "reports", "sla", "--to", "2026-11-01")
	require.NoError(t, err, out)
	assert.Contains(t, out, "No handoffs in this period.")
}
