package activities

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/mail"
	"github.com/tendhq/tend/internal/metrics"
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
