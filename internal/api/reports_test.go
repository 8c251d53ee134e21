package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/sales"
)

// TestMain is in api_test.go, which shares this test binary.

const reportKey = "k"

// reportServer serves only the report routes, over a fresh, migrated database, and returns its URL
// and the store for fixtures.
func reportServer(t *testing.T) (string, *db.Store) {
	t.Helper()
	store := dbtest.Store(t)
	s := &Server{Store: store, APIKeys: []string{reportKey}}
	mux := http.NewServeMux()
	s.reportRoutes(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs.URL, store
}

// reportGet fetches url, with the API key unless key is "", and decodes the JSON answer into out.
func reportGet(t *testing.T, url, key string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	assert.Equal(t, "application/json; charset=utf-8", res.Header.Get("Content-Type"))
	require.NoError(t, json.Unmarshal(body, out), "body: %s", body)
	return res.StatusCode
}

func reportExec(t *testing.T, store *db.Store, sql string, args ...any) {
	t.Helper()
	_, err := store.Pool().Exec(context.Background(), sql, args...)
	require.NoError(t, err, sql)
}

func reportLead(t *testing.T, store *db.Store, source, stage string, created time.Time) string {
	t.Helper()
	id := uuid.NewString()
	reportExec(t, store, `INSERT INTO leads (id, email, source, segment, stage, created_at) VALUES ($1, $2, $3, 'b2b', $4, $5)`,
		id, id+"@example.com", source, stage, created)
	return id
}

func reportDay(month time.Month, d int) time.Time {
	return time.Date(2026, month, d, 0, 0, 0, 0, time.UTC)
}

func TestReportFunnelHTTP(t *testing.T) {
	t.Parallel()
	url, store := reportServer(t)
	won := reportLead(t, store, "ebook_download", "customer", reportDay(time.November, 2))
	reportExec(t, store, `INSERT INTO stage_changes (lead_id, from_stage, to_stage, reason, changed_at) VALUES
		($1, 'lead', 'sql', 'test', $2), ($1, 'sql', 'customer', 'test', $3)`, won, reportDay(time.November, 3), reportDay(time.November, 5))
	reportExec(t, store, `INSERT INTO opportunities (lead_id, rep_id, closed_at, outcome, value, currency)
		VALUES ($1, 'ana', $2, 'won', 1200.25, 'EUR')`, won, reportDay(time.November, 5))
	reportLead(t, store, "webinar", "mql", reportDay(time.November, 20))
	reportLead(t, store, "webinar", "lead", reportDay(time.December, 1)) // the end of the period is exclusive

	t.Run("period and shape", func(t *testing.T) {
		var got struct {
			Overall  map[string]json.RawMessage `json:"overall"`
			BySource []db.Funnel                `json:"by_source"`
		}
		code := reportGet(t, url+"/api/v1/reports/funnel?from=2026-11-01&to=2026-12-01", reportKey, &got)
		require.Equal(t, http.StatusOK, code)
		assert.ElementsMatch(t, []string{"source", "stages", "conversions", "sql_to_won_days", "revenue_from_sqls"}, reportKeys(got.Overall))

		var overall db.Funnel
		require.NoError(t, json.Unmarshal(reportJSON(t, got.Overall), &overall))
		assert.Equal(t, []db.FunnelStage{{Stage: "lead", Leads: 2}, {Stage: "mql", Leads: 2}, {Stage: "sal", Leads: 1},
			{Stage: "sql", Leads: 1}, {Stage: "customer", Leads: 1}}, overall.Stages)
		assert.Equal(t, []db.Conversion{{From: "lead", To: "mql", Rate: 1}, {From: "mql", To: "sal", Rate: 0.5},
			{From: "sal", To: "sql", Rate: 1}, {From: "sql", To: "customer", Rate: 1}}, overall.Conversions)
		require.NotNil(t, overall.SQLToWonDays)
		assert.InDelta(t, 2.0, *overall.SQLToWonDays, 1e-9)
		assert.InDelta(t, 1200.25, overall.RevenueFromSQLs, 1e-9)

		require.Len(t, got.BySource, 2)
		assert.Equal(t, "ebook_download", got.BySource[0].Source)
		assert.Equal(t, 1, got.BySource[0].Stages[4].Leads)
		assert.Equal(t, "webinar", got.BySource[1].Source)
		assert.Equal(t, 1, got.BySource[1].Stages[0].Leads, "the lead created on December 1 is outside the period")
		assert.Nil(t, got.BySource[1].SQLToWonDays)
	})

	t.Run("one source, RFC 3339 bounds", func(t *testing.T) {
		var got funnelResponse
		// 01:00+01:00 on November 20 is the webinar lead's creation instant, which an exclusive end leaves out.
		code := reportGet(t, url+"/api/v1/reports/funnel?source=webinar&from=2026-11-01T00:00:00Z&to=2026-11-20T01:00:00%2B01:00", reportKey, &got)
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, "webinar", got.Overall.Source)
		assert.Equal(t, 0, got.Overall.Stages[0].Leads)
		assert.Empty(t, got.BySource)

		code = reportGet(t, url+"/api/v1/reports/funnel?source=webinar&from=2026-11-01T00:00:00Z&to=2026-11-20T01:00:01%2B01:00", reportKey, &got)
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, 1, got.Overall.Stages[0].Leads)
		require.Len(t, got.BySource, 1)
		assert.Equal(t, "webinar", got.BySource[0].Source)
	})

	t.Run("open period", func(t *testing.T) {
		var got funnelResponse
		require.Equal(t, http.StatusOK, reportGet(t, url+"/api/v1/reports/funnel", reportKey, &got))
		assert.Equal(t, 3, got.Overall.Stages[0].Leads)
	})

	t.Run("no leads", func(t *testing.T) {
		var got map[string]json.RawMessage
		require.Equal(t, http.StatusOK, reportGet(t, url+"/api/v1/reports/funnel?source=nowhere", reportKey, &got))
		assert.JSONEq(t, `[]`, string(got["by_source"]))
	})
}

func TestReportSLAHTTP(t *testing.T) {
	t.Parallel()
	url, store := reportServer(t)
	for i, h := range []struct {
		rep, outcome, reason string
		secs                 float64
		lapses               int
	}{
		{"ana", "accepted", "", 100, 0},
		{"ana", "rejected", "not_a_fit", 300, 1},
		{"bo", "rejected", "not_a_fit", 50, 0},
		{"bo", "rejected", "no_budget", 70, 0},
	} {
		lead := reportLead(t, store, "web", "sal", reportDay(time.November, 1))
		handed := reportDay(time.November, 2+i)
		reportExec(t, store, `INSERT INTO handoffs (lead_id, seq, assignment, rep_id, policy, reason, handed_off_at, due_at,
				responded_at, response_seconds, outcome, lapses, reject_reason)
			VALUES ($1, 1, 1, $2, 'hot-1h', 'score', $3, $4, $5, $6, $7, $8, $9)`,
			lead, h.rep, handed, handed.Add(time.Hour), handed.Add(time.Duration(h.secs)*time.Second), h.secs, h.outcome, h.lapses, h.reason)
	}

	var raw map[string]json.RawMessage
	code := reportGet(t, url+"/api/v1/reports/sla?from=2026-11-01&to=2026-12-01", reportKey, &raw)
	require.Equal(t, http.StatusOK, code)
	assert.ElementsMatch(t, []string{"by_rep", "by_policy", "rejection_reasons"}, reportKeys(raw))

	var got slaResponse
	require.NoError(t, json.Unmarshal(reportJSON(t, raw), &got))
	require.Len(t, got.ByRep, 2)
	ana := got.ByRep[0]
	assert.Equal(t, "ana", ana.Key)
	assert.Equal(t, 2, ana.Handoffs)
	assert.Equal(t, 2, ana.Responded)
	require.NotNil(t, ana.MedianResponseSeconds)
	assert.InDelta(t, 200, *ana.MedianResponseSeconds, 1e-9)
	require.NotNil(t, ana.P90ResponseSeconds)
	assert.InDelta(t, 280, *ana.P90ResponseSeconds, 1e-9)
	assert.Equal(t, 1, ana.Breaches)
	assert.Equal(t, 0.5, ana.BreachRate)
	require.Len(t, got.ByPolicy, 1)
	assert.Equal(t, db.SLARow{Key: "hot-1h", Handoffs: 4, Responded: 4, Breaches: 1, BreachRate: 0.25},
		db.SLARow{Key: got.ByPolicy[0].Key, Handoffs: got.ByPolicy[0].Handoffs, Responded: got.ByPolicy[0].Responded,
			Breaches: got.ByPolicy[0].Breaches, BreachRate: got.ByPolicy[0].BreachRate})
	assert.Equal(t, []db.ReasonCount{{Reason: "not_a_fit", Count: 2}, {Reason: "no_budget", Count: 1}}, got.RejectionReasons)

	// A period with nothing in it still has every list, empty.
	code = reportGet(t, url+"/api/v1/reports/sla?from=2027-01-01", reportKey, &raw)
	require.Equal(t, http.StatusOK, code)
	for _, k := range []string{"by_rep", "by_policy", "rejection_reasons"} {
		assert.JSONEq(t, `[]`, string(raw[k]), k)
	}
}

func TestReportBadRequests(t *testing.T) {
	t.Parallel()
	url, _ := reportServer(t)
	for _, tc := range []struct {
		name, query string
		fields      []string
	}{
		{"from not a date", "from=yesterday", []string{"from"}},
		{"to not a date", "to=2026-13-01", []string{"to"}},
		{"both bad", "from=2026-11-1&to=1.12.2026", []string{"from", "to"}},
		{"RFC 3339 without zone", "from=2026-11-01T10:00:00", []string{"from"}},
		{"to before from", "from=2026-12-01&to=2026-11-01", []string{"to"}},
	} {
		for _, path := range []string{"/api/v1/reports/funnel", "/api/v1/reports/sla"} {
			t.Run(tc.name+" "+path, func(t *testing.T) {
				var got errorBody
				code := reportGet(t, url+path+"?"+tc.query, reportKey, &got)
				assert.Equal(t, http.StatusUnprocessableEntity, code)
				assert.NotEmpty(t, got.Error)
				var fields []string
				for _, f := range got.Fields {
					fields = append(fields, f.Field)
					assert.NotEmpty(t, f.Message)
				}
				assert.Equal(t, tc.fields, fields)
			})
		}
	}

	for _, path := range []string{"/api/v1/reports/funnel", "/api/v1/reports/sla"} {
		var got errorBody
		assert.Equal(t, http.StatusUnauthorized, reportGet(t, url+path, "", &got), path)
		assert.Equal(t, http.StatusUnauthorized, reportGet(t, url+path, "wrong", &got), path)
	}
}

func reportKeys(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func reportJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// The SLA report and the dashboard's reports page give response times in wall-clock time and in
// the business time of the rep's calendar (the time the deadline counts in): a handoff on Friday
// at 17:30 answered on Monday at 09:30, with 09:00–18:00 weekday hours and a 2-hour SLA, took 64
// hours by the clock but one business hour, and is no breach.
func TestReportSLABusinessTimeHTTP(t *testing.T) {
	t.Parallel()
	store := dbtest.Store(t)
	team := &sales.Team{
		Calendars: []sales.Calendar{{ID: "office", TimeZone: "Europe/Berlin", Hours: []sales.Hours{{Days: "MON-FRI", From: "09:00", To: "18:00"}}}},
		Reps:      []sales.Rep{{ID: "ana", Calendar: "office", Territories: []string{"*"}}},
		Policies:  []sales.Policy{{ID: "hot-2h", Response: 2 * time.Hour}},
	}
	s := &Server{Store: store, APIKeys: []string{reportKey}, Team: team}
	mux := http.NewServeMux()
	s.reportRoutes(mux)
	s.dashboardRoutes(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)

	rep, _ := team.Rep("ana")
	cal, loc, err := team.CalendarOf(rep)
	require.NoError(t, err)
	friday := time.Date(2026, time.November, 27, 17, 30, 0, 0, loc)
	monday := time.Date(2026, time.November, 30, 9, 30, 0, 0, loc)
	lead := reportLead(t, store, "web", "sal", friday)
	reportExec(t, store, `INSERT INTO handoffs (lead_id, seq, assignment, rep_id, policy, reason, handed_off_at, due_at,
			responded_at, response_seconds, outcome)
		VALUES ($1, 1, 1, 'ana', 'hot-2h', 'score', $2, $3, $4, $5, 'accepted')`,
		lead, friday, cal.Add(friday, 2*time.Hour, loc), monday, monday.Sub(friday).Seconds())

	var got slaResponse
	require.Equal(t, http.StatusOK, reportGet(t, hs.URL+"/api/v1/reports/sla", reportKey, &got))
	require.Len(t, got.ByRep, 1)
	ana := got.ByRep[0]
	require.NotNil(t, ana.MedianResponseSeconds)
	assert.InDelta(t, (64 * time.Hour).Seconds(), *ana.MedianResponseSeconds, 1e-6, "wall clock")
	require.NotNil(t, ana.MedianBusinessSeconds, "business time is reported")
	assert.InDelta(t, time.Hour.Seconds(), *ana.MedianBusinessSeconds, 1e-6, "business time")
	require.NotNil(t, ana.P90BusinessSeconds)
	assert.InDelta(t, time.Hour.Seconds(), *ana.P90BusinessSeconds, 1e-6)
	assert.Equal(t, 0, ana.Breaches, "answered within two business hours")
	require.Len(t, got.ByPolicy, 1)
	assert.InDelta(t, time.Hour.Seconds(), *got.ByPolicy[0].MedianBusinessSeconds, 1e-6)

	req, err := http.NewRequest(http.MethodGet, hs.URL+"/app/reports", nil)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: sessionValue(reportKey, time.Now().Add(time.Hour))})
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	page := string(body)
	assert.Contains(t, page, "Median (wall clock)")
	assert.Contains(t, page, "Median (business hours)")
	assert.Contains(t, page, `<td>ana</td><td class="num">1</td><td class="num">1</td><td class="num">64h0m0s</td><td class="num">64h0m0s</td><td class="num">1h0m0s</td><td class="num">1h0m0s</td><td class="num">0</td><td class="num">0%</td>`)
}

// reportSend inserts a send row created at created (sent an hour later when status is sent) and
// returns its id.
func reportSend(t *testing.T, store *db.Store, lead, sequenceID, stepID, variant, status string, created time.Time) string {
	t.Helper()
	id := uuid.NewString()
	var sentAt *time.Time
	if status == "sent" {
		s := created.Add(time.Hour)
		sentAt = &s
	}
	reportExec(t, store, `INSERT INTO sends (id, lead_id, sequence_id, step_id, template, message_id, status, variant, created_at, sent_at)
		VALUES ($1, $2, $3, $4, 't', $5, $6, $7, $8, $9)`, id, lead, sequenceID, stepID, "<"+id+"@test>", status, variant, created, sentAt)
	return id
}

// The sequences report: per sequence its leads and the holdout lift, per step and variant the
// sends and what people (not machines) did with them; since is a look-back or a date.
func TestReportSequencesHTTP(t *testing.T) {
	t.Parallel()
	url, store := reportServer(t)
	now := time.Now().UTC()
	day := func(ago int) time.Time { return now.AddDate(0, 0, -ago) }

	// Two treated leads in the last week: a got variant a, opened and clicked it, and converted;
	// b got variant b, which only a link scanner clicked. One held-out lead, which converted.
	a := reportLead(t, store, "web", "lead", day(10))
	s := reportSend(t, store, a, "nurture", "intro", "a", "sent", day(5))
	reportExec(t, store, `INSERT INTO events (lead_id, type, send_id, machine, occurred_at) VALUES
		($1, 'open', $2, false, $3), ($1, 'click', $2, false, $3)`, a, s, day(4))
	reportExec(t, store, `INSERT INTO conversions (lead_id, sequence_id, goal, held_out, at) VALUES ($1, 'nurture', 'demo_request', false, $2)`, a, day(3))
	b := reportLead(t, store, "web", "lead", day(10))
	s = reportSend(t, store, b, "nurture", "intro", "b", "sent", day(5))
	reportExec(t, store, `INSERT INTO events (lead_id, type, send_id, machine, machine_reason, occurred_at) VALUES ($1, 'click', $2, true, 'scanner', $3)`, b, s, day(5))
	h := reportLead(t, store, "web", "lead", day(10))
	reportSend(t, store, h, "nurture", "intro", "a", "held_out", day(5))
	reportExec(t, store, `INSERT INTO conversions (lead_id, sequence_id, goal, held_out, at) VALUES ($1, 'nurture', 'demo_request', true, $2)`, h, day(2))
	// Forty days ago: outside the default 30 days.
	old := reportLead(t, store, "web", "lead", day(50))
	reportSend(t, store, old, "nurture", "intro", "a", "sent", day(40))

	var raw map[string]json.RawMessage
	require.Equal(t, http.StatusOK, reportGet(t, url+"/api/v1/reports/sequences", reportKey, &raw))
	assert.ElementsMatch(t, []string{"since", "sequences"}, reportKeys(raw))
	var got db.SequenceReport
	require.NoError(t, json.Unmarshal(reportJSON(t, raw), &got))
	assert.WithinDuration(t, now.AddDate(0, 0, -30), got.Since, time.Minute, "30 days by default")
	require.Len(t, got.Sequences, 1)
	q := got.Sequences[0]
	assert.Equal(t, "nurture", q.SequenceID)
	assert.Equal(t, []int{3, 2, 1, 1, 1}, []int{q.Leads, q.TreatedLeads, q.HeldOutLeads, q.TreatedConversions, q.HeldOutConversions})
	require.NotNil(t, q.Lift)
	assert.InDelta(t, -0.5, *q.Lift, 1e-9, "half the treated leads converted, all the held-out ones")
	require.NotNil(t, q.RelativeLift)
	assert.InDelta(t, -0.5, *q.RelativeLift, 1e-9)
	require.Len(t, q.Steps, 1)
	assert.Equal(t, "intro", q.Steps[0].StepID)
	require.Len(t, q.Steps[0].Variants, 2)
	va, vb := q.Steps[0].Variants[0], q.Steps[0].Variants[1]
	assert.Equal(t, []any{"a", 1, 1, 1, 1, 1, 1.0}, []any{va.Variant, va.Sent, va.HeldOut, va.Opens, va.Clicks, va.Conversions, va.ClickRate})
	assert.Equal(t, []any{"b", 1, 0, 0, 0, 0.0}, []any{vb.Variant, vb.Sent, vb.Opens, vb.Clicks, vb.Conversions, vb.ClickRate},
		"the scanner's click is not a person's")

	// The variant row's JSON names what a marketer reads, and leaves the grouping keys out.
	var shape struct {
		Sequences []struct {
			Steps []struct {
				Variants []map[string]json.RawMessage `json:"variants"`
			} `json:"steps"`
		} `json:"sequences"`
	}
	require.NoError(t, json.Unmarshal(reportJSON(t, raw), &shape))
	assert.ElementsMatch(t, []string{"variant", "sent", "failed", "suppressed", "held_out", "pending", "opens", "clicks",
		"unsubscribes", "conversions", "open_rate", "click_rate", "unsubscribe_rate", "conversion_rate"},
		reportKeys(shape.Sequences[0].Steps[0].Variants[0]))

	// 60 days back takes in the old send; a date works too.
	require.Equal(t, http.StatusOK, reportGet(t, url+"/api/v1/reports/sequences?since=60d", reportKey, &got))
	assert.Equal(t, 4, got.Sequences[0].Leads)
	require.Equal(t, http.StatusOK, reportGet(t, url+"/api/v1/reports/sequences?since="+day(45).Format(time.DateOnly), reportKey, &got))
	assert.Equal(t, 4, got.Sequences[0].Leads)
	require.Equal(t, http.StatusOK, reportGet(t, url+"/api/v1/reports/sequences?since=1d", reportKey, &raw))
	assert.JSONEq(t, `[]`, string(raw["sequences"]), "nothing in the last day")
}

func TestReportSequencesBadRequests(t *testing.T) {
	t.Parallel()
	url, _ := reportServer(t)
	for _, since := range []string{"yesterday", "-3d", "0", "2026-13-01", "30"} {
		var got errorBody
		code := reportGet(t, url+"/api/v1/reports/sequences?since="+since, reportKey, &got)
		assert.Equal(t, http.StatusUnprocessableEntity, code, since)
		require.Len(t, got.Fields, 1, since)
		assert.Equal(t, "since", got.Fields[0].Field)
		assert.Contains(t, got.Fields[0].Message, since)
	}
	var got errorBody
	assert.Equal(t, http.StatusUnauthorized, reportGet(t, url+"/api/v1/reports/sequences", "", &got))
	assert.Equal(t, http.StatusUnauthorized, reportGet(t, url+"/api/v1/reports/sequences", "wrong", &got))
}

// The dashboard's sequences page shows the same report: per sequence its leads, conversions and
// lift, then a row per step and variant; a bad period says so and shows the last 30 days.
func TestDashboardSequencesPage(t *testing.T) {
	t.Parallel()
	store := dbtest.Store(t)
	s := &Server{Store: store, APIKeys: []string{reportKey}}
	mux := http.NewServeMux()
	s.dashboardRoutes(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)

	day := time.Now().UTC().AddDate(0, 0, -2)
	a := reportLead(t, store, "web", "lead", day)
	sa := reportSend(t, store, a, "nurture", "intro", "a", "sent", day)
	reportExec(t, store, `INSERT INTO events (lead_id, type, send_id, machine, occurred_at) VALUES ($1, 'open', $2, false, $3)`, a, sa, day)
	reportExec(t, store, `INSERT INTO conversions (lead_id, sequence_id, goal, at) VALUES ($1, 'nurture', 'demo_request', $2)`, a, day.Add(2*time.Hour))
	b := reportLead(t, store, "web", "lead", day)
	reportSend(t, store, b, "nurture", "intro", "b", "sent", day)
	reportSend(t, store, reportLead(t, store, "web", "lead", day), "nurture", "intro", "a", "held_out", day)
	reportSend(t, store, a, "nurture", "followup", "", "sent", day.Add(time.Minute))

	get := func(path string, signedIn bool) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, hs.URL+path, nil)
		require.NoError(t, err)
		if signedIn {
			req.AddCookie(&http.Cookie{Name: sessionCookie, Value: sessionValue(reportKey, time.Now().Add(time.Hour))})
		}
		res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res.StatusCode, string(body)
	}
	code, _ := get("/app/reports/sequences", false)
	assert.Equal(t, http.StatusSeeOther, code, "signed-in only")

	code, page := get("/app/reports/sequences", true)
	require.Equal(t, http.StatusOK, code, page)
	assert.Contains(t, page, "<h2>nurture</h2>")
	assert.Contains(t, page, "<strong>1/2 converted (50%)</strong>", "treated")
	assert.Contains(t, page, "<strong>0/1 converted (0%)</strong>", "held out")
	assert.Contains(t, page, "<strong>&#43;50.0 points</strong>", "html/template writes + as &#43;")
	assert.Contains(t, page, `<tr><td>intro</td><td>a</td><td class="num">1</td><td class="num">0</td><td class="num">0</td><td class="num">1</td><td class="num">0</td><td class="num">1 (100%)</td><td class="num">0 (0%)</td><td class="num">0 (0%)</td><td class="num">1 (100%)</td></tr>`)
	assert.Contains(t, page, `<tr><td></td><td>b</td><td class="num">1</td>`)
	assert.Contains(t, page, `<tr><td>followup</td><td>–</td><td class="num">1</td>`)

	code, page = get("/app/reports/sequences?since=1h", true)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, page, "No sends or conversions in this period.")

	code, page = get("/app/reports/sequences?since=lately", true)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, page, "showing the last 30d")
	assert.Contains(t, page, "<h2>nurture</h2>")
}
