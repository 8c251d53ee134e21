package e2e

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/mailcapture"
	"github.com/tendhq/tend/workflows"
)

var actionRe = regexp.MustCompile(`(?m)^Accept: (\S+)\s*$`)

// mailTo waits until n messages have reached address and returns them.
func (s *stack) mailTo(address string, n int, timeout time.Duration) []mailcapture.Message {
	s.t.Helper()
	var got []mailcapture.Message
	eventually(s.t, timeout, func() bool {
		got = got[:0]
		for _, m := range s.inbox.Messages() {
			if len(m.To) == 1 && m.To[0] == address {
				got = append(got, m)
			}
		}
		return len(got) >= n
	}, "%d message(s) to %s", n, address)
	return got
}

func (s *stack) demoLead(email string) string {
	s.t.Helper()
	lead := ada()
	lead["email"] = email
	lead["source"] = "demo_registration"
	code, body := s.post("/api/v1/leads", lead)
	require.Equal(s.t, 201, code)
	return body["id"].(string)
}

// The rep receives the handoff email with the lead's context; the accept link taken from it shows a
// page on GET (scanners must not accept), accepts on POST, and a second POST changes nothing.
func TestHandoffEmailAcceptLinkWorksOnce(t *testing.T) {
	t.Parallel()
	s := setup(t, options{team: "testdata/sales-slow.yaml"})
	code, team := s.get("/api/v1/team")
	require.Equal(t, 200, code)
	assert.Len(t, team["reps"], 2, "the team is readable through the API")
	leadID := s.demoLead("ada.lovelace@example.com")
	notice := s.mailTo("jonas@acme.test", 1, 30*time.Second)[0]
	assert.Contains(t, notice.Subject, "New lead for you: Ada Lovelace (Analytical Engines)")
	assert.Contains(t, notice.Text, "hand-raise: demo_request", "why the lead is ready")
	assert.Contains(t, notice.Text, "demo_request", "what it did")
	assert.Contains(t, notice.Text, "industry: software", "fit attributes")
	assert.Empty(t, notice.Header.Get("List-Unsubscribe"), "a notice to sales is not marketing")
	m := actionRe.FindStringSubmatch(notice.Text)
	require.NotNil(t, m, "accept link in the notice")
	accept := m[1]

	resp := request(t, http.MethodGet, accept, "Mozilla/5.0 (compatible; Mimecast link scanner)")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "open", handoffOutcome(t, s, leadID), "a GET does not accept")

	resp, err := http.PostForm(accept, url.Values{})
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	// The answer is stored before its page is sent: no waiting for the API to catch up.
	assert.Equal(t, "sal", s.lead(leadID)["stage"], "the lead is at SAL when the answer page says Accepted")
	assert.Equal(t, "accepted", handoffOutcome(t, s, leadID))
	resp, err = http.PostForm(accept, url.Values{})
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode, "already accepted")

	// The API answers with the same update: already accepted for the rep, not your lead for others.
	code, out := s.post("/api/v1/leads/"+leadID+"/accept", map[string]string{"rep_id": "rep-jonas"})
	assert.Equal(t, 200, code)
	assert.Equal(t, workflows.OutcomeAlreadyAccepted, out["outcome"])
	code, out = s.post("/api/v1/leads/"+leadID+"/accept", map[string]string{"rep_id": "rep-nobody"})
	assert.Equal(t, 403, code)
	assert.Equal(t, workflows.OutcomeNotYourLead, out["outcome"])
	assert.Empty(t, msgsTo(s, "eva@acme.test"), "no escalation for a lead accepted in time")

	// Feedback loop after acceptance: qualify (BANT), opportunity, won.
	code, out = s.post("/api/v1/leads/"+leadID+"/qualify", map[string]string{"rep_id": "rep-jonas", "budget": "50k", "authority": "CTO",
		"need": "reporting", "timeframe": "Q1"})
	require.Equal(t, 200, code, "%v", out)
	assert.Equal(t, "sql", out["stage"])
	code, out = s.post("/api/v1/leads/"+leadID+"/opportunity", map[string]string{"rep_id": "rep-jonas"})
	require.Equal(t, 200, code, "%v", out)
	code, out = s.post("/api/v1/leads/"+leadID+"/won", map[string]any{"rep_id": "rep-jonas", "value": 12000, "currency": "eur"})
	require.Equal(t, 200, code, "%v", out)
	assert.Equal(t, "customer", out["stage"])
	code, _ = s.post("/api/v1/leads/"+leadID+"/won", map[string]any{"rep_id": "rep-jonas", "value": 1, "currency": "eur"})
	assert.Equal(t, 409, code, "no open opportunity left")
	s.recordScenario("lead-handoff-accept-won", leadID)

	// The reports show it.
	code, funnel := s.get("/api/v1/reports/funnel")
	require.Equal(t, 200, code)
	overall := funnel["overall"].(map[string]any)
	assert.InDelta(t, 12000, overall["revenue_from_sqls"], 0.01)
	code, sla := s.get("/api/v1/reports/sla")
	require.Equal(t, 200, code)
	byRep := sla["by_rep"].([]any)
	require.Len(t, byRep, 1)
	assert.Equal(t, "rep-jonas", byRep[0].(map[string]any)["key"])
	assert.EqualValues(t, 0, byRep[0].(map[string]any)["breaches"])
}

func msgsTo(s *stack, address string) []mailcapture.Message {
	var out []mailcapture.Message
	for _, m := range s.inbox.Messages() {
		if len(m.To) == 1 && m.To[0] == address {
			out = append(out, m)
		}
	}
	return out
}

func handoffOutcome(t *testing.T, s *stack, leadID string) string {
	var outcome string
	require.NoError(t, s.store.Pool().QueryRow(context.Background(),
		`SELECT outcome FROM handoffs WHERE lead_id = $1 ORDER BY seq, assignment LIMIT 1`, leadID).Scan(&outcome))
	return outcome
}

// Without an answer the manager receives the escalation at the deadline, exactly once per lapse;
// after the second lapse the lead goes to the next rep with a new clock, and the first rep's
// accept is too late.
func TestNoAnswerEscalatesToTheManagerAndReassigns(t *testing.T) {
	t.Parallel()
	s := setup(t, options{team: "testdata/sales.yaml"})
	leadID := s.demoLead("ada.lovelace@example.com")
	first := s.mailTo("jonas@acme.test", 1, 30*time.Second)[0]
	handedOff := first.Received
	esc := s.mailTo("eva@acme.test", 1, 30*time.Second)[0]
	assert.Contains(t, esc.Subject, "SLA missed: Ada Lovelace (Analytical Engines) not answered by Jonas Weber (due ")
	late := esc.Received.Sub(handedOff)
	assert.GreaterOrEqual(t, late, 2500*time.Millisecond, "not before the 3 s deadline")
	assert.Less(t, late, 10*time.Second, "within seconds of the deadline")
	copyToRep := s.mailTo("jonas@acme.test", 2, 10*time.Second)
	assert.Contains(t, copyToRep[1].Text, "escalated to your manager")

	// Second lapse → reassigned to Mia with a new clock.
	s.mailTo("eva@acme.test", 2, 30*time.Second)
	s.mailTo("mia@acme.test", 1, 30*time.Second)
	code, out := s.post("/api/v1/leads/"+leadID+"/accept", map[string]string{"rep_id": "rep-jonas"})
	assert.Equal(t, 409, code)
	assert.Equal(t, workflows.OutcomeTooLate, out["outcome"])
	code, out = s.post("/api/v1/leads/"+leadID+"/accept", map[string]string{"rep_id": "rep-mia"})
	assert.Equal(t, 200, code)
	assert.Equal(t, workflows.OutcomeAccepted, out["outcome"])
	time.Sleep(time.Second)
	assert.Len(t, msgsTo(s, "eva@acme.test"), 2, "exactly one escalation per lapse")

	var escalations int
	require.NoError(t, s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM escalations e JOIN handoffs h ON h.id = e.handoff_id
		WHERE h.lead_id = $1`, leadID).Scan(&escalations))
	assert.Equal(t, 2, escalations)
	s.recordScenario("lead-escalation-reassign", leadID)
	code, detail := s.get("/api/v1/leads/" + leadID)
	require.Equal(t, 200, code)
	handoffs := detail["handoffs"].([]any)
	require.Len(t, handoffs, 2)
	assert.Equal(t, "reassigned", handoffs[0].(map[string]any)["outcome"])
	assert.Equal(t, "accepted", handoffs[1].(map[string]any)["outcome"])
	code, sla := s.get("/api/v1/reports/sla")
	require.Equal(t, 200, code)
	for _, row := range sla["by_rep"].([]any) {
		r := row.(map[string]any)
		if r["key"] == "rep-jonas" {
			assert.EqualValues(t, 1, r["breaches"])
		}
	}
}

// A rep rejects as "not ready": the lead is recycled into the configured nurture series.
func TestRejectNotReadyRecyclesToNurture(t *testing.T) {
	t.Parallel()
	s := setup(t, options{team: "testdata/sales-slow.yaml"})
	leadID := s.demoLead("ada.lovelace@example.com")
	s.mailTo("jonas@acme.test", 1, 30*time.Second)
	code, out := s.post("/api/v1/leads/"+leadID+"/reject", map[string]string{"rep_id": "rep-jonas", "reason": "not_ready", "note": "next year"})
	require.Equal(t, 200, code, "%v", out)
	assert.Equal(t, workflows.OutcomeRejected, out["outcome"])
	eventually(t, 10*time.Second, func() bool { return s.lead(leadID)["stage"] == "recycled" }, "recycled")
	// Nurture resumes with the general series (its welcome email).
	welcome := s.mailTo("ada.lovelace@example.com", 1, 30*time.Second)
	found := false
	for _, m := range welcome {
		found = found || strings.HasPrefix(m.Subject, "Welcome to Acme Insights")
	}
	assert.True(t, found, "the recycle series started")
	s.recordScenario("lead-recycle-not-ready", leadID)
	code, sla := s.get("/api/v1/reports/sla")
	require.Equal(t, 200, code)
	reasons := sla["rejection_reasons"].([]any)
	require.Len(t, reasons, 1)
	assert.Equal(t, "not_ready", reasons[0].(map[string]any)["reason"])
	code, _ = s.post("/api/v1/leads/"+leadID+"/reject", map[string]string{"rep_id": "rep-jonas", "reason": "vibes"})
	assert.Equal(t, 422, code)
}

var rejectRe = regexp.MustCompile(`(?m)^Reject: (\S+)\s*$`)

// The rep's note on a rejection is stored with the answer in Postgres and never enters the
// workflow's history (which outlives an erasure).
func TestRejectNoteIsStoredButNotInTheWorkflowHistory(t *testing.T) {
	t.Parallel()
	s := setup(t, options{team: "testdata/sales-slow.yaml"})
	leadID := s.demoLead("ada.lovelace@example.com")
	notice := s.mailTo("jonas@acme.test", 1, 30*time.Second)[0]
	m := rejectRe.FindStringSubmatch(notice.Text)
	require.NotNil(t, m, "reject link in the notice")
	const note = "Spoke to Ada, budget only in Q3 — call her mobile"
	resp, err := http.PostForm(m[1], url.Values{"reason": {"not_ready"}, "note": {note}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var stored string
	require.NoError(t, s.store.Pool().QueryRow(context.Background(),
		`SELECT coalesce(reject_note, '') FROM handoffs WHERE lead_id = $1`, leadID).Scan(&stored))
	assert.Equal(t, note, stored, "the note is kept with the answer")
	var pending int
	require.NoError(t, s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM answer_notes`).Scan(&pending))
	assert.Zero(t, pending, "the note's staging row is gone once stored")
	hist := s.historyText(leadID)
	assert.Contains(t, hist, "not_ready", "the decoded history holds the answer's payload")
	assert.NotContains(t, hist, "budget only in Q3", "the note is not in the workflow history")
	assert.NotContains(t, hist, "mobile")
}
