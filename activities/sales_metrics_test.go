package activities

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/metrics"
)

// A rep's answer (accept, reject) counts its stage change once: its retry stores nothing new and
// counts nothing, and an answer the lead's stage refuses counts nothing either.
func TestAnswersCountTheirStageChangeOnce(t *testing.T) {
	ctx := context.Background()
	segment, team := exampleTeam(t)
	store := dbtest.Store(t)
	set := metrics.New()
	a := &Sales{Store: store, Team: team, Mailer: &recordingMailer{}, From: From{Name: "tend", Address: "tend@acme.test", Domain: "acme.test"},
		Metrics: set}
	handedOff := func(email string) (leadID string, handoffID int64) {
		t.Helper()
		c, err := store.RecordCapture(ctx, db.Capture{Email: email, Name: "Ada", Source: "api", Segment: segment, Stage: "mql"})
		require.NoError(t, err)
		as, err := a.Assign(ctx, AssignInput{LeadID: c.Lead.ID, Seq: 1, Assignment: 1, Reason: "demo request", At: time.Now()})
		require.NoError(t, err)
		return c.Lead.ID, as.HandoffID
	}
	respond := func(in RespondInput) lifecycle.Stage {
		t.Helper()
		res, err := a.Respond(ctx, in)
		require.NoError(t, err)
		return res.Stage
	}

	ana, h := handedOff("ana@example.com")
	accept := RespondInput{HandoffID: h, LeadID: ana, RepID: "rep-1", Action: "accept", At: time.Now()}
	assert.Equal(t, lifecycle.SAL, respond(accept))
	assert.Equal(t, lifecycle.SAL, respond(accept), "a retry")

	bo, h := handedOff("bo@example.com")
	assert.Equal(t, lifecycle.Recycled, respond(RespondInput{HandoffID: h, LeadID: bo, RepID: "rep-1", Action: "reject", Reason: "not_ready", At: time.Now()}))

	// A lead that became a customer meanwhile is not disqualified by a late rejection.
	cy, h := handedOff("cy@example.com")
	require.NoError(t, store.SetStage(ctx, cy, "customer", "crm", "won elsewhere", nil))
	assert.Equal(t, lifecycle.Customer, respond(RespondInput{HandoffID: h, LeadID: cy, RepID: "rep-1", Action: "reject", Reason: "no_budget", At: time.Now()}))

	var lines []string
	for _, l := range strings.Split(scrapeSet(t, set), "\n") {
		if strings.HasPrefix(l, "tend_stage_transitions_total{") {
			lines = append(lines, l)
		}
	}
	assert.ElementsMatch(t, []string{
		`tend_stage_transitions_total{from="mql",to="sal"} 1`,
		`tend_stage_transitions_total{from="mql",to="recycled"} 1`,
	}, lines)
}
