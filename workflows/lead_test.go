package workflows

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/sequence"
)

const day = 24 * time.Hour

var berlin = mustLoc("Europe/Berlin")

func mustLoc(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

// threePartSeries is a 3-email sequence over 10 days inside weekday business hours in Berlin.
func threePartSeries() sequence.Sequence {
	return sequence.Sequence{
		ID:     "analytics-series",
		Window: sequence.Window{Cron: "* 9-16 * * MON-FRI", TimeZone: "Europe/Berlin"},
		Steps: []sequence.Step{
			{ID: "intro", Template: "analytics-1", Subject: "one", Wait: 0},
			{ID: "deep-dive", Template: "analytics-2", Subject: "two", Wait: 3 * day},
			{ID: "case-study", Template: "analytics-3", Subject: "three", Wait: 7 * day},
		},
		Exit: sequence.Exit{Stages: []lifecycle.Stage{lifecycle.MQL, lifecycle.SAL}, Unsubscribed: true},
	}
}

type sent struct {
	step string
	at   time.Time
}

// setup returns a test environment with the lead workflow registered, a Plan that returns seq and
// a SendStep mock that records every call with the virtual time it ran at.
func setup(t *testing.T, seq sequence.Sequence, start time.Time) (*testsuite.TestWorkflowEnvironment, *[]sent) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(Lead)
	env.RegisterActivity(&activities.Leads{})
	env.RegisterActivity(&activities.Email{})
	env.SetStartTime(start)
	var leads *activities.Leads
	var email *activities.Email
	// Captures trigger a rescore; here it changes nothing.
	env.OnActivity(leads.Rescore, mock.Anything, mock.Anything).Return(activities.RescoreResult{}, nil)
	env.OnActivity(leads.Plan, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PlanInput) (activities.Plan, error) {
			return activities.Plan{Segment: "analytics", Stage: lifecycle.Lead, Sequence: seq, Done: []string{}}, nil
		})
	var calls []sent
	env.OnActivity(email.SendStep, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
			calls = append(calls, sent{step: in.StepID, at: env.Now().In(berlin)})
			return activities.SendResult{Status: activities.StatusSent, MessageID: "<" + in.StepID + "@test>"}, nil
		})
	return env, &calls
}

func stepsOf(calls []sent) []string {
	out := []string{}
	for _, c := range calls {
		out = append(out, c.step)
	}
	return out
}

func queryState(t *testing.T, env *testsuite.TestWorkflowEnvironment) LeadState {
	t.Helper()
	v, err := env.QueryWorkflow(QueryState)
	require.NoError(t, err)
	var st LeadState
	require.NoError(t, v.Get(&st))
	return st
}

func TestSequenceSendsOnTheRightDaysInsideTheWindow(t *testing.T) {
	// Captured on Friday 20 November 2026 at 18:00 in Berlin: outside business hours.
	start := time.Date(2026, 11, 20, 18, 0, 0, 0, berlin)
	env, calls := setup(t, threePartSeries(), start)
	env.RegisterDelayedCallback(func() {
		st := queryState(t, env)
		assert.Equal(t, StatusCompleted, st.Status)
		env.CancelWorkflow()
	}, 30*day)
	env.ExecuteWorkflow(Lead, LeadInput{LeadID: "3f1c0a3e-0000-4000-8000-000000000001"})
	require.True(t, env.IsWorkflowCompleted())
	// The lead stays open after its series, waiting for captures, until cancelled.
	var canceled *temporal.CanceledError
	require.ErrorAs(t, env.GetWorkflowError(), &canceled)

	require.Equal(t, []string{"intro", "deep-dive", "case-study"}, stepsOf(*calls))
	want := []time.Time{
		time.Date(2026, 11, 23, 9, 0, 0, 0, berlin), // Monday 09:00: the first minute of the window
		time.Date(2026, 11, 26, 9, 0, 0, 0, berlin), // three days later, Thursday, inside the window
		time.Date(2026, 12, 3, 9, 0, 0, 0, berlin),  // seven days after that
	}
	for i, c := range *calls {
		assert.True(t, want[i].Equal(c.at), "step %s sent at %s, want %s", c.step, c.at, want[i])
		h := c.at.Hour()
		assert.True(t, h >= 9 && h <= 16 && c.at.Weekday() != time.Saturday && c.at.Weekday() != time.Sunday,
			"step %s sent outside the window at %s", c.step, c.at)
	}
}

func requireCancelled(t *testing.T, env *testsuite.TestWorkflowEnvironment) {
	t.Helper()
	require.True(t, env.IsWorkflowCompleted())
	var canceled *temporal.CanceledError
	require.ErrorAs(t, env.GetWorkflowError(), &canceled)
}

func TestCaptureOfAnExistingLeadDoesNotRestartItsSequence(t *testing.T) {
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, berlin) // Monday, inside the window
	env, calls := setup(t, threePartSeries(), start)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalCapture, Capture{Segment: "analytics", Stage: lifecycle.Lead})
	}, 4*day)
	env.RegisterDelayedCallback(func() {
		st := queryState(t, env)
		assert.Equal(t, 1, st.Captures)
		assert.Equal(t, StatusCompleted, st.Status)
		assert.Len(t, st.History, 3)
		env.CancelWorkflow()
	}, 30*day)
	env.ExecuteWorkflow(Lead, LeadInput{LeadID: "3f1c0a3e-0000-4000-8000-000000000002"})
	requireCancelled(t, env)
	assert.Equal(t, []string{"intro", "deep-dive", "case-study"}, stepsOf(*calls))
	// The capture on day 4 did not move the third step: it is still 10 days after the first.
	assert.True(t, (*calls)[2].at.Equal(start.Add(10*day)), "third step at %s", (*calls)[2].at)
}

func TestContinueAsNewKeepsState(t *testing.T) {
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, berlin)
	env, calls := setup(t, threePartSeries(), start)
	env.RegisterDelayedCallback(func() { env.SetContinueAsNewSuggested(true) }, 4*day)
	// A capture that arrives in the same instant must survive the continue-as-new.
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalCapture, Capture{Segment: "analytics", TimeZone: "America/New_York"})
	}, 4*day)
	env.ExecuteWorkflow(Lead, LeadInput{LeadID: "3f1c0a3e-0000-4000-8000-000000000003"})
	require.True(t, env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can)
	var next LeadInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.NotNil(t, next.State)
	assert.Equal(t, []string{"intro", "deep-dive"}, stepsOf(*calls))
	assert.Equal(t, 2, next.State.NextStep)
	assert.Equal(t, "America/New_York", next.State.TimeZone)
	assert.Equal(t, 1, next.State.Captures)
	assert.Len(t, next.State.History, 2)
	assert.Equal(t, 1, next.State.Runs)

	// The next run picks up at the third step, keeping the original schedule.
	env2, calls2 := setup(t, threePartSeries(), start.Add(4*day))
	env2.RegisterDelayedCallback(func() { env2.CancelWorkflow() }, 30*day)
	env2.ExecuteWorkflow(Lead, next)
	requireCancelled(t, env2)
	require.Equal(t, []string{"case-study"}, stepsOf(*calls2))
	// Due 7 days after step two (day 3) = day 10, 10:00 Berlin = 04:00 in New York, outside the
	// window there: it waits for 09:00 New York, which is 15:00 Berlin.
	assert.True(t, (*calls2)[0].at.Equal(time.Date(2026, 12, 3, 15, 0, 0, 0, berlin)), "sent at %s", (*calls2)[0].at)
}

func TestReachingAnExitStageStopsTheSequence(t *testing.T) {
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, berlin)
	env, calls := setup(t, threePartSeries(), start)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalCapture, Capture{Stage: lifecycle.MQL})
	}, day)
	env.RegisterDelayedCallback(func() {
		st := queryState(t, env)
		assert.Equal(t, StatusExited, st.Status)
		assert.Equal(t, "stage mql reached", st.ExitReason)
		env.CancelWorkflow()
	}, 30*day)
	env.ExecuteWorkflow(Lead, LeadInput{LeadID: "3f1c0a3e-0000-4000-8000-000000000004"})
	requireCancelled(t, env)
	assert.Equal(t, []string{"intro"}, stepsOf(*calls))
}

func TestConditionSkipsAStepForOtherStages(t *testing.T) {
	seq := threePartSeries()
	seq.Steps[1].When = sequence.Condition{StageIn: []lifecycle.Stage{lifecycle.Subscriber}}
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, berlin)
	env, calls := setup(t, seq, start)
	env.RegisterDelayedCallback(func() {
		st := queryState(t, env)
		require.Len(t, st.History, 3)
		assert.Equal(t, "skipped", st.History[1].Outcome)
		env.CancelWorkflow()
	}, 30*day)
	env.ExecuteWorkflow(Lead, LeadInput{LeadID: "3f1c0a3e-0000-4000-8000-000000000005"})
	requireCancelled(t, env)
	assert.Equal(t, []string{"intro", "case-study"}, stepsOf(*calls))
}

func TestUnsubscribedLeadExits(t *testing.T) {
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, berlin)
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(Lead)
	env.SetStartTime(start)
	var leads *activities.Leads
	var email *activities.Email
	env.RegisterActivity(leads.Plan)
	env.RegisterActivity(email.SendStep)
	env.OnActivity(leads.Plan, mock.Anything, mock.Anything).Return(activities.Plan{Segment: "analytics", Stage: lifecycle.Lead, Sequence: threePartSeries()}, nil)
	n := 0
	env.OnActivity(email.SendStep, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
			n++
			if n == 2 {
				return activities.SendResult{Status: activities.StatusUnsubscribed}, nil
			}
			return activities.SendResult{Status: activities.StatusSent}, nil
		})
	env.RegisterDelayedCallback(func() {
		st := queryState(t, env)
		assert.Equal(t, StatusExited, st.Status)
		assert.Equal(t, "unsubscribed", st.ExitReason)
		env.CancelWorkflow()
	}, 30*day)
	env.ExecuteWorkflow(Lead, LeadInput{LeadID: "3f1c0a3e-0000-4000-8000-000000000006"})
	requireCancelled(t, env)
	assert.Equal(t, 2, n, "no step after the unsubscribe")
}

func TestHardBounceExitsAndPermanentRejectionMovesOn(t *testing.T) {
	for _, tc := range []struct {
		errType string
		sends   int
		status  string
	}{
		{activities.ErrTypeHardBounce, 1, StatusExited},
		{activities.ErrTypeRejected, 3, StatusCompleted},
	} {
		t.Run(tc.errType, func(t *testing.T) {
			start := time.Date(2026, 11, 23, 10, 0, 0, 0, berlin)
			var s testsuite.WorkflowTestSuite
			s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
			env := s.NewTestWorkflowEnvironment()
			env.RegisterWorkflow(Lead)
			env.SetStartTime(start)
			var leads *activities.Leads
			var email *activities.Email
			env.RegisterActivity(leads.Plan)
			env.RegisterActivity(email.SendStep)
			env.OnActivity(leads.Plan, mock.Anything, mock.Anything).Return(activities.Plan{Segment: "analytics", Stage: lifecycle.Lead, Sequence: threePartSeries()}, nil)
			n := 0
			env.OnActivity(email.SendStep, mock.Anything, mock.Anything).Return(
				func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
					n++
					return activities.SendResult{}, temporal.NewNonRetryableApplicationError("smtp rcpt to: 550 5.1.1", tc.errType, nil)
				})
			env.RegisterDelayedCallback(func() {
				st := queryState(t, env)
				assert.Equal(t, tc.status, st.Status)
				env.CancelWorkflow()
			}, 30*day)
			env.ExecuteWorkflow(Lead, LeadInput{LeadID: "3f1c0a3e-0000-4000-8000-000000000007"})
			requireCancelled(t, env)
			assert.Equal(t, tc.sends, n)
		})
	}
}

func TestCaptureForAnotherSegmentStartsItsSeriesAfterTheCurrentOne(t *testing.T) {
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, berlin)
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(Lead)
	env.SetStartTime(start)
	var leads *activities.Leads
	var email *activities.Email
	env.RegisterActivity(leads.Plan)
	env.RegisterActivity(email.SendStep)
	env.RegisterActivity(leads.Rescore)
	env.OnActivity(leads.Rescore, mock.Anything, mock.Anything).Return(activities.RescoreResult{}, nil)
	security := threePartSeries()
	security.ID = "security-series"
	env.OnActivity(leads.Plan, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PlanInput) (activities.Plan, error) {
			if in.Segment == "security" {
				return activities.Plan{Segment: "security", Sequence: security}, nil
			}
			return activities.Plan{Segment: "analytics", Stage: lifecycle.Lead, Sequence: threePartSeries()}, nil
		})
	var got []string
	env.OnActivity(email.SendStep, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
			got = append(got, in.SequenceID+"/"+in.StepID)
			return activities.SendResult{Status: activities.StatusSent}, nil
		})
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalCapture, Capture{Segment: "security", Stage: lifecycle.Lead})
	}, 2*day)
	env.RegisterDelayedCallback(func() { env.CancelWorkflow() }, 60*day)
	env.ExecuteWorkflow(Lead, LeadInput{LeadID: "3f1c0a3e-0000-4000-8000-000000000008"})
	requireCancelled(t, env)
	assert.Equal(t, []string{
		"analytics-series/intro", "analytics-series/deep-dive", "analytics-series/case-study",
		"security-series/intro", "security-series/deep-dive", "security-series/case-study",
	}, got)
}
