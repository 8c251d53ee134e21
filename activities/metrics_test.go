package activities

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/mail"
	"github.com/tendhq/tend/internal/metrics"
	"github.com/tendhq/tend/internal/sales"
	"github.com/tendhq/tend/internal/score"
	"github.com/tendhq/tend/internal/sequence"
)

// failingMailer answers every message with one SMTP failure.
type failingMailer struct{ f *mail.Failure }

func (m failingMailer) Send(context.Context, mail.Message) error { return m.f }

// A real send on real Postgres is counted as sent once; its retry, which mails nothing, is
// counted as already sent, and a hard bounce as a hard bounce — what an operator's dashboard
// of deliveries reads.
func TestSendsAreCountedByOutcome(t *testing.T) {
	ctx := context.Background()
	a, m, _, id := emailSetup(t, nil)
	set := metrics.New()
	a.Metrics = set
	in := SendInput{LeadID: id, SequenceID: "analytics-series", StepID: "intro", Template: "analytics-1", Subject: "One"}
	res, err := a.SendStep(ctx, in)
	require.NoError(t, err)
	require.Equal(t, StatusSent, res.Status)
	require.Len(t, m.sent, 1)
	assert.Contains(t, scrapeSet(t, set), `tend_emails_total{outcome="sent"} 1`)

	res, err = a.SendStep(ctx, in)
	require.NoError(t, err)
	require.Equal(t, StatusAlreadySent, res.Status)
	body := scrapeSet(t, set)
	assert.Contains(t, body, `tend_emails_total{outcome="sent"} 1`, "a retry that mails nothing is not a second send")
	assert.Contains(t, body, `tend_emails_total{outcome="already_sent"} 1`)

	a.Mailer = failingMailer{&mail.Failure{Code: 550, Enhanced: "5.1.1", Stage: "rcpt to"}}
	_, err = a.SendStep(ctx, SendInput{LeadID: id, SequenceID: "analytics-series", StepID: "deep-dive", Template: "analytics-2", Subject: "Two"})
	require.Error(t, err)
	assert.Contains(t, scrapeSet(t, set), `tend_emails_total{outcome="hard_bounce"} 1`)
}

func scrapeSet(t *testing.T, set *metrics.Set) string {
	t.Helper()
	rec := httptest.NewRecorder()
	set.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	b, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// A rescore counts the score it stored, and the move to MQL once: its retry stores the score
// again but changes no stage.
func TestRescoreCountsScoresAndTheStageChangeOnce(t *testing.T) {
	ctx := context.Background()
	a, store, id := rescoreSetup(t)
	set := metrics.New()
	a.Metrics = set
	addEvents(t, store, id, "demo_request")
	_, err := a.Rescore(ctx, RescoreInput{LeadID: id})
	require.NoError(t, err)
	_, err = a.Rescore(ctx, RescoreInput{LeadID: id})
	require.NoError(t, err)
	body := scrapeSet(t, set)
	assert.Contains(t, body, "tend_score_updates_total 2")
	assert.Contains(t, body, `tend_stage_transitions_total{from="lead",to="mql"} 1`)
}

// A handoff is counted when it is opened, and a lapse when its escalation goes out, with how late
// after the deadline that was — once, however often the activities run.
func TestHandoffsAndSLABreachesAreCountedOnce(t *testing.T) {
	ctx := context.Background()
	segment, team := exampleTeam(t)
	store := dbtest.Store(t)
	c, err := store.RecordCapture(ctx, db.Capture{Email: "ada@example.com", Name: "Ada", Source: "api", Segment: segment, Stage: "mql"})
	require.NoError(t, err)
	set := metrics.New()
	m := &recordingMailer{}
	a := &Sales{Store: store, Team: team, Mailer: m, From: From{Name: "tend", Address: "tend@acme.test", Domain: "acme.test"}, Metrics: set}

	in := AssignInput{LeadID: c.Lead.ID, Seq: 1, Assignment: 1, Reason: "demo request", At: time.Now()}
	as, err := a.Assign(ctx, in)
	require.NoError(t, err)
	_, err = a.Assign(ctx, in) // a retry
	require.NoError(t, err)
	lapse := LapseInput{HandoffID: as.HandoffID, Lapse: 1, At: as.DueAt}
	_, err = a.Lapse(ctx, lapse)
	require.NoError(t, err)
	_, err = a.Lapse(ctx, lapse) // a retry
	require.NoError(t, err)

	body := scrapeSet(t, set)
	assert.Contains(t, body, `tend_handoffs_total{kind="handoff"} 1`)
	assert.Contains(t, body, "tend_sla_breaches_total 1")
	assert.Contains(t, body, "tend_escalation_lateness_seconds_count 1")
}

// exampleTeam loads the examples' sales team, checked against the examples' segments, and returns
// the first segment with it.
func exampleTeam(t *testing.T) (segment string, team *sales.Team) {
	t.Helper()
	cat, err := sequence.Load("../examples/sequences.yaml", sequence.Options{})
	require.NoError(t, err)
	var segs []string
	for _, s := range cat.Segments {
		segs = append(segs, s.ID)
	}
	team, err = sales.Load("../examples/sales.yaml", sales.Options{Segments: segs, EventTypes: score.EventTypes()})
	require.NoError(t, err)
	return segs[0], team
}
