package workflows

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/sequence"
)

type policyEnv struct {
	env      *testsuite.TestWorkflowEnvironment
	sent     []string
	sentAt   []time.Time
	rescores int
	engaged  func(n int) time.Time // the lead's last engagement as the n-th rescore reports it
}

func series(id string, n int, wait time.Duration) sequence.Sequence {
	s := sequence.Sequence{ID: id, Window: sequence.Window{Cron: "* * * * *", TimeZone: "Europe/Berlin"},
		Exit: sequence.Exit{Stages: []lifecycle.Stage{lifecycle.MQL}, Unsubscribed: true}}
	for i := range n {
		w := wait
		if i == 0 {
			w = 0
		}
		s.Steps = append(s.Steps, sequence.Step{ID: fmt.Sprintf("s%d", i+1), Template: "t", Subject: "x", Wait: w})
	}
	return s
}

func newPolicyEnv(t *testing.T, start time.Time, plan func(in activities.PlanInput) activities.Plan) *policyEnv {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	e := &policyEnv{env: s.NewTestWorkflowEnvironment(), engaged: func(int) time.Time { return time.Time{} }}
	e.env.RegisterWorkflow(Lead)
	e.env.SetStartTime(start)
	var leads *activities.Leads
	var email *activities.Email
	e.env.RegisterActivity(leads.Plan)
	e.env.RegisterActivity(leads.Rescore)
	e.env.RegisterActivity(email.SendStep)
	e.env.OnActivity(leads.Plan, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PlanInput) (activities.Plan, error) { return plan(in), nil })
	e.env.OnActivity(leads.Rescore, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RescoreInput) (activities.RescoreResult, error) {
			e.rescores++
			return activities.RescoreResult{Stage: lifecycle.Lead, LastEngagement: e.engaged(e.rescores)}, nil
		})
	e.env.OnActivity(email.SendStep, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
			e.sent = append(e.sent, in.SequenceID+"/"+in.StepID)
			e.sentAt = append(e.sentAt, e.env.Now())
			return activities.SendResult{Status: activities.StatusSent, SendID: in.SequenceID + in.StepID}, nil
		})
	return e
}

func (e *policyEnv) run(t *testing.T, until time.Duration) LeadState {
	var st LeadState
	e.env.RegisterDelayedCallback(func() { st = queryState(t, e.env); e.env.CancelWorkflow() }, until)
	e.env.ExecuteWorkflow(Lead, LeadInput{LeadID: "3f1c0a3e-0000-4000-8000-0000000000bb"})
	requireCancelled(t, e.env)
	return st
}

func reengagement() *sequence.Reengagement {
	return &sequence.Reengagement{After: 30 * day, Sequence: series("reengagement", 2, 7*day)}
}

// A quiet lead gets the re-engagement series (its score recomputed for decay); when it engages it
// returns to its nurture at the step it had reached.
func TestInactiveLeadIsReengagedAndReturnsToItsNurture(t *testing.T) {
	start := time.Date(2026, 11, 2, 10, 0, 0, 0, berlin)
	e := newPolicyEnv(t, start, func(activities.PlanInput) activities.Plan {
		return activities.Plan{Segment: "a", Stage: lifecycle.Lead, Sequence: series("nurture", 4, 20*day), Reengagement: reengagement()}
	})
	// The lead clicks on day 35, during the re-engagement series.
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalEngaged, Engaged{}) }, 35*day)
	e.engaged = func(n int) time.Time {
		if e.env.Now().Before(start.Add(35 * day)) {
			return time.Time{}
		}
		return start.Add(35 * day)
	}
	st := e.run(t, 60*day)
	// Day 0: s1; day 20: s2; day 30: quiet since enrolment → re-engagement step 1; day 35: click →
	// back to nurture: s3 20 days later (day 55).
	assert.Equal(t, []string{"nurture/s1", "nurture/s2", "reengagement/s1", "nurture/s3"}, e.sent)
	assert.Equal(t, start.Add(30*day), e.sentAt[2].In(berlin), "re-engagement when the 30 days are up")
	assert.Equal(t, start.Add(55*day), e.sentAt[3].In(berlin))
	assert.GreaterOrEqual(t, e.rescores, 2, "rescored when going quiet (decay) and on the click")
	assert.Empty(t, st.Mode)
	assert.Equal(t, "nurture", st.Sequence.ID)
}

// Silence through the re-engagement series sunsets the lead; a later event brings it back.
func TestSilenceSunsetsAndANewEventRevives(t *testing.T) {
	start := time.Date(2026, 11, 2, 10, 0, 0, 0, berlin)
	e := newPolicyEnv(t, start, func(activities.PlanInput) activities.Plan {
		return activities.Plan{Segment: "a", Stage: lifecycle.Lead, Sequence: series("nurture", 2, 10*day), Reengagement: reengagement()}
	})
	var sunset LeadState
	e.env.RegisterDelayedCallback(func() { sunset = queryState(t, e.env) }, 60*day)
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalEngaged, Engaged{}) }, 70*day)
	e.engaged = func(n int) time.Time {
		if e.env.Now().Before(start.Add(70 * day)) {
			return time.Time{}
		}
		return start.Add(70 * day)
	}
	st := e.run(t, 80*day)
	// Day 0, 10: nurture; day 40 (30 quiet days after the series' last activity counts from
	// enrolment): re-engagement s1, day 47: s2; then sunset.
	assert.Equal(t, []string{"nurture/s1", "nurture/s2", "reengagement/s1", "reengagement/s2"}, e.sent)
	assert.Equal(t, ModeSunset, sunset.Mode)
	assert.Equal(t, StatusExited, sunset.Status)
	assert.Equal(t, "sunset: no engagement", sunset.ExitReason)
	assert.Empty(t, st.Mode, "revived by the event on day 70")
	assert.Equal(t, StatusCompleted, st.Status, "back where it was: its nurture had ended")
}

// Three series one after another (the lead's interests change twice) under a cap of 2 emails in 7
// days: no 7-day window ever holds more than 2, and every email is sent.
func TestFrequencyCapAcrossSeriesNeverExceededNothingLost(t *testing.T) {
	start := time.Date(2026, 11, 2, 10, 0, 0, 0, berlin)
	capped := &sequence.FrequencyCap{Max: 2, Per: 7 * day}
	e := newPolicyEnv(t, start, func(in activities.PlanInput) activities.Plan {
		id := "a"
		if in.Segment != "" {
			id = in.Segment
		}
		return activities.Plan{Segment: id, Stage: lifecycle.Lead, Sequence: series(id+"-series", 3, time.Hour), FrequencyCap: capped}
	})
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalCapture, Capture{Segment: "b"}) }, time.Minute)
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalCapture, Capture{Segment: "c"}) }, 9*day)
	e.run(t, 60*day)
	require.Len(t, e.sent, 9, "nothing lost: %v", e.sent)
	for i := range e.sentAt {
		n := 0
		for j := range e.sentAt {
			if !e.sentAt[j].Before(e.sentAt[i]) && e.sentAt[j].Before(e.sentAt[i].Add(7*day)) {
				n++
			}
		}
		assert.LessOrEqual(t, n, 2, "window starting %s", e.sentAt[i])
	}
	// Each send happens exactly when the cap allows it: pairs a week apart.
	assert.Equal(t, start.Add(7*day), e.sentAt[2].In(berlin))
}

// A step due in the quiet hours waits for their end, in the lead's time zone.
func TestQuietHoursPostponeToTheNextAllowedMinute(t *testing.T) {
	start := time.Date(2026, 11, 2, 18, 0, 0, 0, berlin)
	e := newPolicyEnv(t, start, func(activities.PlanInput) activities.Plan {
		return activities.Plan{Segment: "a", Stage: lifecycle.Lead, Sequence: series("nurture", 2, 3*time.Hour),
			QuietHours: &sequence.QuietHours{From: "20:00", To: "08:00"}}
	})
	e.run(t, 5*day)
	require.Len(t, e.sent, 2)
	assert.Equal(t, start, e.sentAt[0].In(berlin))
	// Due at 21:00, inside 20:00-08:00: sent at 08:00 the next morning.
	assert.Equal(t, time.Date(2026, 11, 3, 8, 0, 0, 0, berlin), e.sentAt[1].In(berlin))
}
