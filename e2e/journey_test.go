package e2e

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/workflows"
)

func ada() map[string]any {
	return map[string]any{
		"email": "  Ada.Lovelace@Example.COM ", "name": "Ada Lovelace", "company": "Analytical Engines",
		"interests": []string{"Analytics"}, "source": "ebook_download", "time_zone": "Europe/London",
		"attributes": map[string]string{"industry": "software"},
		"consent":    map[string]any{"granted": true, "wording_id": "ebook-form-v3"},
	}
}

// The core journey: a lead captured through the API receives exactly its segment's three emails,
// in order, spaced by the configured waits, with the right content and headers, over SMTP.
func TestCapturedLeadReceivesItsSequenceExactlyOnce(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	start := time.Now()
	code, body := s.post("/api/v1/leads", ada())
	require.Equal(t, 201, code, "%v", body)
	leadID := body["id"].(string)
	assert.Equal(t, "analytics", body["segment"])
	assert.Equal(t, "lead", body["stage"])
	assert.Equal(t, true, body["enrolled"])

	msgs := s.waitMessages(3, 60*time.Second, 3*time.Second)
	wantSubjects := []string{
		"Ada, three numbers every dashboard needs",
		"Why your weekly report gets ignored",
		"How a 12-person team cut reporting time by 80%",
	}
	sends, err := s.store.Sends(context.Background(), leadID)
	require.NoError(t, err)
	require.Len(t, sends, 3)
	for i, m := range msgs {
		assert.Equal(t, wantSubjects[i], m.Subject)
		assert.Equal(t, []string{"ada.lovelace@example.com"}, m.To, "one normalised recipient")
		assert.Equal(t, `"Acme Insights" <hello@acme.test>`, m.Header.Get("From"))
		assert.Contains(t, m.Header.Get("To"), "<ada.lovelace@example.com>")
		assert.Equal(t, sends[i].MessageID, m.MessageID, "Message-ID is the one recorded for the send")
		assert.True(t, strings.HasSuffix(m.MessageID, "@acme.test>"))
		assert.NotEmpty(t, m.Header.Get("Date"))
		assert.Contains(t, m.Text, "Acme Insights GmbH, Beispielstraße 1", "postal address in every email")
		assert.Contains(t, m.HTML, "Acme Insights GmbH, Beispielstraße 1")
		assert.NotContains(t, m.Text+m.HTML, "<no value>")
		assert.Equal(t, db.SendSent, sends[i].Status)
	}
	assert.Contains(t, msgs[0].Text, "Ada", "personalised with the first name")
	// Waits of 2 s between steps (the SMTP server stamps arrival).
	for i := 1; i < len(msgs); i++ {
		gap := msgs[i].Received.Sub(msgs[i-1].Received)
		assert.GreaterOrEqual(t, gap, 1900*time.Millisecond, "gap before message %d", i+1)
	}
	assert.Less(t, msgs[0].Received.Sub(start), 10*time.Second, "first email goes out at once")

	st := s.leadState(leadID)
	assert.Equal(t, workflows.StatusCompleted, st.Status)
	require.Len(t, st.History, 3)
	for _, h := range st.History {
		assert.Equal(t, "sent", h.Outcome)
	}

	// The API shows the lead, its sends and its workflow state.
	code, detail := s.get("/api/v1/leads/" + leadID)
	require.Equal(t, 200, code)
	assert.Equal(t, "ada.lovelace@example.com", detail["email"])
	assert.Len(t, detail["sends"], 3)
	require.NotNil(t, detail["workflow"])
	assert.Equal(t, "completed", detail["workflow"].(map[string]any)["status"])
}

// A second capture of the same person (different case, new interest) updates the lead and does
// not restart or duplicate its sequence.
func TestSecondCaptureUpdatesAndDoesNotRestart(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	code, first := s.post("/api/v1/leads", ada())
	require.Equal(t, 201, code)
	// Let the first email go out, then capture again.
	s.waitMessages(1, 30*time.Second, 0)
	again := ada()
	again["email"] = "ADA.LOVELACE@example.com"
	again["interests"] = []string{"reporting"}
	again["source"] = "webinar_registration"
	code, second := s.post("/api/v1/leads", again)
	require.Equal(t, 200, code, "%v", second)
	assert.Equal(t, first["id"], second["id"], "same lead")
	assert.Equal(t, false, second["created"])
	assert.ElementsMatch(t, []any{"analytics", "reporting"}, second["interests"])

	s.waitMessages(3, 60*time.Second, 3*time.Second)
	var leads int
	require.NoError(t, s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM leads`).Scan(&leads))
	assert.Equal(t, 1, leads)
	var captures, consents int
	require.NoError(t, s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM captures`).Scan(&captures))
	require.NoError(t, s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM consents`).Scan(&consents))
	assert.Equal(t, 2, captures, "both captures recorded as lead-source history")
	assert.Equal(t, 2, consents)
	st := s.leadState(first["id"].(string))
	assert.Equal(t, 2, st.Captures)
}

// The send activity fails after the SMTP server accepted the message; its retry must not send the
// message again.
func TestActivityFailingAfterSMTPAcceptedSendsOnce(t *testing.T) {
	t.Parallel()
	var failed atomic.Int32
	s := setup(t, options{afterAccepted: func(ctx context.Context, in activities.SendInput) error {
		if in.StepID == "intro" && failed.Add(1) == 1 {
			return errors.New("injected failure after SMTP accepted the message")
		}
		return nil
	}})
	code, body := s.post("/api/v1/leads", ada())
	require.Equal(t, 201, code)
	msgs := s.waitMessages(3, 90*time.Second, 3*time.Second)
	assert.Equal(t, int32(1), failed.Load(), "the failure was injected once")
	intro := 0
	for _, m := range msgs {
		if strings.HasPrefix(m.Subject, "Ada, three numbers") {
			intro++
		}
	}
	assert.Equal(t, 1, intro, "the first step was delivered exactly once")
	st := s.leadState(body["id"].(string))
	require.Len(t, st.History, 3)
	assert.Equal(t, "already_sent", st.History[0].Outcome, "the retry found the step sent")
}

// Same, with the worker replaced between the failed attempt and its retry.
func TestActivityFailingAfterAcceptThenWorkerRestartSendsOnce(t *testing.T) {
	t.Parallel()
	failedOnce := make(chan struct{})
	var calls atomic.Int32
	s := setup(t, options{afterAccepted: func(ctx context.Context, in activities.SendInput) error {
		if in.StepID == "intro" && calls.Add(1) == 1 {
			close(failedOnce)
			return errors.New("injected failure after SMTP accepted the message")
		}
		return nil
	}})
	code, _ := s.post("/api/v1/leads", ada())
	require.Equal(t, 201, code)
	select {
	case <-failedOnce:
	case <-time.After(30 * time.Second):
		t.Fatal("the first attempt never ran")
	}
	// Replace the worker while the retry waits for its backoff (5 s).
	s.worker.Stop()
	s.deps.AfterAccepted = nil
	s.startWorker()
	msgs := s.waitMessages(3, 90*time.Second, 3*time.Second)
	intro := 0
	for _, m := range msgs {
		if strings.HasPrefix(m.Subject, "Ada, three numbers") {
			intro++
		}
	}
	assert.Equal(t, 1, intro, "the first step was delivered exactly once")
	assert.Equal(t, int32(1), calls.Load(), "the retry ran on the new worker")
}

// A 450 at RCPT is retried with backoff and then delivered once.
func TestTemporarySMTPFailureIsRetried(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	s.inbox.RejectRcpt(func(rcpt string, attempt int) *smtp.SMTPError {
		if attempt == 1 {
			return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy, try later"}
		}
		return nil
	})
	code, body := s.post("/api/v1/leads", ada())
	require.Equal(t, 201, code)
	msgs := s.waitMessages(3, 90*time.Second, 3*time.Second)
	assert.Equal(t, "Ada, three numbers every dashboard needs", msgs[0].Subject)
	sends, err := s.store.Sends(context.Background(), body["id"].(string))
	require.NoError(t, err)
	assert.Equal(t, 2, sends[0].Attempts, "one refused attempt, one delivery")
	assert.Equal(t, db.SendSent, sends[0].Status)
}

// A 550 5.1.1 at RCPT is permanent: recorded, the address suppressed, the sequence stopped.
func TestHardBounceSuppressesAndStops(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	s.inbox.RejectRcpt(func(rcpt string, attempt int) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	})
	code, body := s.post("/api/v1/leads", ada())
	require.Equal(t, 201, code)
	leadID := body["id"].(string)
	eventually(t, 30*time.Second, func() bool { return s.leadState(leadID).Status == workflows.StatusExited },
		"the workflow exits after the bounce")
	st := s.leadState(leadID)
	assert.Equal(t, "bounced", st.ExitReason)
	assert.Empty(t, s.inbox.Messages())
	sends, err := s.store.Sends(context.Background(), leadID)
	require.NoError(t, err)
	require.Len(t, sends, 1, "no later step was tried")
	assert.Equal(t, db.SendFailed, sends[0].Status)
	assert.Equal(t, 550, sends[0].SMTPCode)
	assert.NotContains(t, sends[0].Error, "ada.lovelace", "no address in the recorded error")
	reason, ok, err := s.store.Suppressed(context.Background(), "ada.lovelace@example.com")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "hard_bounce", reason)
	var clear int
	require.NoError(t, s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM suppressions WHERE email IS NOT NULL`).Scan(&clear))
	assert.Zero(t, clear, "the suppression list holds no address in clear")
}

// Temporal is unreachable when the lead is captured: the lead is saved, the API says enrolment is
// pending, and the reconciler enrols it once Temporal answers.
func TestCaptureWhileTemporalIsDownIsEnrolledLater(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	real := s.capture.Enroller
	s.capture.Enroller = failingEnroller{}
	code, body := s.post("/api/v1/leads", ada())
	require.Equal(t, 201, code, "%v", body)
	assert.Equal(t, false, body["enrolled"])
	assert.Contains(t, body["enrollment"], "pending")
	pending, err := s.store.PendingEnrollments(context.Background(), time.Now().Add(time.Second), 10)
	require.NoError(t, err)
	require.Len(t, pending, 1)
	assert.Equal(t, 1, pending[0].Attempts)

	s.capture.Enroller = real
	n, err := s.capture.Reconcile(context.Background(), 0)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	s.waitMessages(3, 60*time.Second, 2*time.Second)
	pending, err = s.store.PendingEnrollments(context.Background(), time.Now().Add(time.Second), 10)
	require.NoError(t, err)
	assert.Empty(t, pending)
}

type failingEnroller struct{}

func (failingEnroller) Enroll(context.Context, string, workflows.Capture) error {
	return errors.New("connection refused")
}

// A person who refused marketing consent is recorded but never mailed.
func TestRefusedConsentIsNeverMailed(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	lead := ada()
	lead["consent"] = map[string]any{"granted": false, "wording_id": "ebook-form-v3"}
	code, body := s.post("/api/v1/leads", lead)
	require.Equal(t, 201, code)
	leadID := body["id"].(string)
	eventually(t, 30*time.Second, func() bool { return s.leadState(leadID).Status == workflows.StatusExited },
		"the workflow exits without mailing")
	assert.Equal(t, "no consent", s.leadState(leadID).ExitReason)
	time.Sleep(time.Second)
	assert.Empty(t, s.inbox.Messages())
	sends, err := s.store.Sends(context.Background(), leadID)
	require.NoError(t, err)
	require.Len(t, sends, 1)
	assert.Equal(t, db.SendSuppressed, sends[0].Status)
}
