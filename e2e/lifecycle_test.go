package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/workflows"
)

// catalogFile writes a sequences file with one short general series and the given extra
// top-level policies.
func catalogFile(t *testing.T, policies string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sequences.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`version: 1
default_segment: general
send_window: { cron: "* * * * *", time_zone: UTC }
`+policies+`
segments:
  - id: general
    interests: [analytics]
    sequence:
      id: general-series
      exit: { stages: [mql, sal, sql, opportunity, customer, evangelist, disqualified], unsubscribed: true }
      steps:
        - { id: welcome, template: general-1, subject: "Welcome to Acme Insights", wait: 0s }
`), 0o644))
	return p
}

const reengage = `reengagement:
  after: 5s
  sequence:
    id: reengagement
    exit: { stages: [mql, sal, sql, opportunity, customer, evangelist, disqualified], unsubscribed: true }
    steps:
      - { id: still-interested, template: reengage-1, subject: "Still interested?", wait: 0s }
      - { id: last-call, template: reengage-2, subject: "Should we stop writing?", wait: 3s }`

// A lead that goes quiet gets the re-engagement email; a click on it brings the lead back.
func TestQuietLeadIsReengagedAndAClickBringsItBack(t *testing.T) {
	t.Parallel()
	s := setup(t, options{sequences: catalogFile(t, reengage)})
	code, body := s.post("/api/v1/leads", ada())
	require.Equal(t, 201, code)
	leadID := body["id"].(string)
	msgs := s.mailTo("ada.lovelace@example.com", 2, 30*time.Second)
	assert.Equal(t, "Welcome to Acme Insights", msgs[0].Subject)
	assert.Equal(t, "Still interested?", msgs[1].Subject)
	gap := msgs[1].Received.Sub(msgs[0].Received)
	assert.GreaterOrEqual(t, gap, 4*time.Second, "sent once the lead had been quiet for 5 s")
	assert.Contains(t, msgs[1].Text, "/u/", "a link to the preference centre")
	assert.Equal(t, workflows.ModeReengaging, s.leadState(leadID).Mode)

	ls := links(t, msgs[1])
	require.NotEmpty(t, ls)
	time.Sleep(2100 * time.Millisecond) // past the machine-click window
	require.Equal(t, http.StatusFound, request(t, http.MethodGet, ls[0], browserUA).StatusCode)
	eventually(t, 15*time.Second, func() bool { return s.leadState(leadID).Mode == "" }, "back in nurture")
	st := s.leadState(leadID)
	assert.Equal(t, workflows.StatusCompleted, st.Status, "where it was: its series had ended")
	s.recordScenario("lead-reengage-click", leadID)
}

// Silence through the re-engagement series sunsets the lead; a site event revives it.
func TestSilenceSunsetsAndASiteEventRevives(t *testing.T) {
	t.Parallel()
	s := setup(t, options{sequences: catalogFile(t, reengage)})
	code, body := s.post("/api/v1/leads", ada())
	require.Equal(t, 201, code)
	leadID := body["id"].(string)
	msgs := s.mailTo("ada.lovelace@example.com", 3, 40*time.Second)
	assert.Equal(t, "Should we stop writing?", msgs[2].Subject)
	eventually(t, 15*time.Second, func() bool { return s.leadState(leadID).Mode == workflows.ModeSunset }, "sunset")
	assert.Equal(t, "sunset: no engagement", s.leadState(leadID).ExitReason)
	time.Sleep(6 * time.Second)
	assert.Len(t, msgsTo(s, "ada.lovelace@example.com"), 3, "no marketing email after the sunset")

	code, res := s.post("/api/v1/events", map[string]any{"events": []map[string]any{
		{"id": "back-1", "lead_id": leadID, "type": "page_view", "url": "https://acme.test/pricing", "tags": []string{"pricing"}}}})
	require.Equal(t, 200, code, "%v", res)
	eventually(t, 15*time.Second, func() bool { return s.leadState(leadID).Mode == "" }, "revived by the event")
	s.recordScenario("lead-sunset-revive", leadID)
}

// Quiet hours in the lead's time zone postpone a send to the next allowed minute.
func TestQuietHoursPostponeTheSend(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	if now.Second() > 50 {
		time.Sleep(time.Duration(61-now.Second()) * time.Second) // keep the quiet minute ahead of us
		now = time.Now().UTC()
	}
	from := now.Format("15:04")
	to := now.Add(time.Minute).Format("15:04")
	s := setup(t, options{sequences: catalogFile(t, fmt.Sprintf("quiet_hours: { from: %q, to: %q }", from, to))})
	lead := ada()
	lead["time_zone"] = "UTC"
	code, _ := s.post("/api/v1/leads", lead)
	require.Equal(t, 201, code)
	m := s.mailTo("ada.lovelace@example.com", 1, 90*time.Second)[0]
	end := now.Truncate(time.Minute).Add(time.Minute)
	assert.False(t, m.Received.Before(end), "not before the quiet hours end (%s), got %s", end, m.Received)
	assert.Less(t, m.Received.Sub(end), 15*time.Second, "at the next allowed minute")
	assert.True(t, strings.HasPrefix(m.Subject, "Welcome"))
}

// With consent required, a lead without a recorded consent is not mailed — unless its region is
// a legitimate-interest market.
func TestConsentRequiredExceptInLegitimateInterestRegions(t *testing.T) {
	t.Parallel()
	s := setup(t, options{sequences: catalogFile(t, "consent: { required: true, legitimate_interest_regions: [us] }")})
	german := ada()
	delete(german, "consent")
	german["attributes"] = map[string]string{"region": "de"}
	code, body := s.post("/api/v1/leads", german)
	require.Equal(t, 201, code)
	deID := body["id"].(string)
	american := ada()
	delete(american, "consent")
	american["email"] = "grace@example.com"
	american["attributes"] = map[string]string{"country": "US"}
	code, _ = s.post("/api/v1/leads", american)
	require.Equal(t, 201, code)

	s.mailTo("grace@example.com", 1, 30*time.Second)
	eventually(t, 30*time.Second, func() bool { return s.leadState(deID).ExitReason == "no consent" }, "not mailed without consent")
	assert.Empty(t, msgsTo(s, "ada.lovelace@example.com"))
}
