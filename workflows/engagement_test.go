package workflows

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/sequence"
)

// engagementEnv is a test environment whose Rescore returns what the test's function says.
type engagementEnv struct {
	env      *testsuite.TestWorkflowEnvironment
	sent     []string
	sentAt   []time.Time
	rescores int
	// alreadySent lists step ids whose SendStep answers already_sent.
	alreadySent map[string]bool
	// planErr, when it returns an error for the nth Plan, fails that Plan.
	planErr func(n int) error
	plans   int
}

func newEngagementEnv(t *testing.T, plan func(in activities.PlanInput) activities.Plan,
	rescore func(n int, in activities.RescoreInput) activities.RescoreResult) *engagementEnv {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	e := &engagementEnv{env: s.NewTestWorkflowEnvironment()}
	e.env.RegisterWorkflow(Lead)
	e.env.SetStartTime(time.Date(2026, 11, 23, 10, 0, 0, 0, berlin))
	var leads *activities.Leads
	var email *activities.Email
	e.env.RegisterActivity(leads.Plan)
	e.env.RegisterActivity(leads.Rescore)
	e.env.RegisterActivity(email.SendStep)
	e.env.OnActivity(leads.Plan, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PlanInput) (activities.Plan, error) {
			e.plans++
			if e.planErr != nil {
				if err := e.planErr(e.plans); err != nil {
					return activities.Plan{}, err
				}
			}
			return plan(in), nil
		})
	e.env.OnActivity(leads.Rescore, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RescoreInput) (activities.RescoreResult, error) {
			e.rescores++
			return rescore(e.rescores, in), nil
		})
	e.env.OnActivity(email.SendStep, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
			e.sent = append(e.sent, in.SequenceID+"/"+in.StepID)
			e.sentAt = append(e.sentAt, e.env.Now())
			if e.alreadySent[in.StepID] {
				return activities.SendResult{Status: activities.StatusAlreadySent, SendID: "send-" + in.StepID}, nil
			}
			return activities.SendResult{Status: activities.StatusSent, SendID: "send-" + in.StepID}, nil
		})
	return e
}

func analyticsPlan(in activities.PlanInput) activities.Plan {
	if in.Segment == "security" {
		s := threePartSeries()
		s.ID = "security-series"
		return activities.Plan{Segment: "security", Stage: lifecycle.Lead, Sequence: s}
	}
	return activities.Plan{Segment: "analytics", Stage: lifecycle.Lead, Sequence: threePartSeries()}
}

// A burst of engagement signals costs at most two rescores, not one per signal: signals that arrive
// while a rescore runs are drained and handled by the next one. (In production the server already
// coalesces a burst into one signal per lead; see e2e.)
func TestBurstOfEngagementCostsOneRescore(t *testing.T) {
	e := newEngagementEnv(t, analyticsPlan, func(n int, in activities.RescoreInput) activities.RescoreResult {
		return activities.RescoreResult{Score: 12, Band: "cold", Stage: lifecycle.Lead, LastEventID: 20}
	})
	e.env.RegisterDelayedCallback(func() {
		for range 20 {
			e.env.SignalWorkflow(SignalEngaged, Engaged{Events: 1})
		}
	}, time.Hour)
	e.env.RegisterDelayedCallback(func() {
		st := queryState(t, e.env)
		assert.LessOrEqual(t, st.Rescores, 2)
		assert.Equal(t, 12.0, st.Score)
		assert.Equal(t, int64(20), st.LastEventID)
		e.env.CancelWorkflow()
	}, 2*time.Hour)
	e.env.ExecuteWorkflow(Lead, LeadInput{LeadID: "lead-burst"})
	requireCancelled(t, e.env)
	assert.LessOrEqual(t, e.rescores, 2)
}

// Crossing the MQL threshold records the handoff event and ends the nurture series (MQL is an exit
// stage): sales owns the lead now.
func TestHandoffStopsTheSeriesAndIsRecorded(t *testing.T) {
	e := newEngagementEnv(t, analyticsPlan, func(n int, in activities.RescoreInput) activities.RescoreResult {
		return activities.RescoreResult{Score: 57, Band: "hot", Stage: lifecycle.MQL,
			Handoff: &activities.Handoff{Reason: "score 57 ≥ MQL threshold 50", Score: 57}}
	})
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalEngaged, Engaged{}) }, 24*time.Hour)
	e.env.RegisterDelayedCallback(func() {
		st := queryState(t, e.env)
		require.NotNil(t, st.Handoff)
		assert.Equal(t, "score 57 ≥ MQL threshold 50", st.Handoff.Reason)
		assert.Equal(t, lifecycle.MQL, st.Stage)
		assert.Equal(t, StatusExited, st.Status)
		assert.Equal(t, "stage mql reached", st.ExitReason)
		e.env.CancelWorkflow()
	}, 30*day)
	e.env.ExecuteWorkflow(Lead, LeadInput{LeadID: "lead-handoff"})
	requireCancelled(t, e.env)
	assert.Equal(t, []string{"analytics-series/intro"}, e.sent, "no drip after the handoff")
}

// An unsubscribe seen by the rescore stops the series at once, even with a step due.
func TestUnsubscribeThroughEngagementStops(t *testing.T) {
	e := newEngagementEnv(t, analyticsPlan, func(n int, in activities.RescoreInput) activities.RescoreResult {
		return activities.RescoreResult{Stage: lifecycle.Lead, Unsubscribed: true}
	})
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalEngaged, Engaged{}) }, day)
	e.env.RegisterDelayedCallback(func() {
		st := queryState(t, e.env)
		assert.Equal(t, "unsubscribed", st.ExitReason)
		e.env.CancelWorkflow()
	}, 30*day)
	e.env.ExecuteWorkflow(Lead, LeadInput{LeadID: "lead-unsub"})
	requireCancelled(t, e.env)
	assert.Equal(t, []string{"analytics-series/intro"}, e.sent)
}

// Clicking content tagged for another segment's interest moves the lead to that series now.
func TestClickOnAnotherSegmentsContentSwitchesSeries(t *testing.T) {
	e := newEngagementEnv(t, analyticsPlan, func(n int, in activities.RescoreInput) activities.RescoreResult {
		return activities.RescoreResult{Stage: lifecycle.Lead, SwitchSegment: "security", ClickedSends: []string{"send-intro"}}
	})
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalEngaged, Engaged{}) }, day)
	e.env.RegisterDelayedCallback(func() {
		st := queryState(t, e.env)
		assert.Equal(t, "security", st.Segment)
		e.env.CancelWorkflow()
	}, 60*day)
	e.env.ExecuteWorkflow(Lead, LeadInput{LeadID: "lead-switch"})
	requireCancelled(t, e.env)
	assert.Equal(t, []string{"analytics-series/intro", "security-series/intro", "security-series/deep-dive", "security-series/case-study"}, e.sent)
}

// Behaviour branches: a step only for leads who did not click the previous email is skipped after
// a click, and wait_if_clicked brings the next email forward.
func TestStepsBranchOnWhetherThePreviousEmailWasClicked(t *testing.T) {
	yes, no := true, false
	twoDays := 2 * day
	seq := threePartSeries()
	seq.Window = sequence.Window{}          // any time, to read the waits directly
	seq.Steps[1].When.PreviousClicked = &no // a nudge for those who did not click
	seq.Steps[2].When.PreviousClicked = nil
	seq.Steps[2].WaitIfClicked = &twoDays
	plan := func(activities.PlanInput) activities.Plan {
		return activities.Plan{Segment: "analytics", Stage: lifecycle.Lead, Sequence: seq}
	}
	e := newEngagementEnv(t, plan, func(n int, in activities.RescoreInput) activities.RescoreResult {
		return activities.RescoreResult{Stage: lifecycle.Lead, ClickedSends: []string{"send-intro"}}
	})
	var sentAt []time.Time
	e.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == "SendStep" {
			sentAt = append(sentAt, e.env.Now())
		}
	})
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalEngaged, Engaged{}) }, time.Hour)
	e.env.RegisterDelayedCallback(func() { e.env.CancelWorkflow() }, 30*day)
	e.env.ExecuteWorkflow(Lead, LeadInput{LeadID: "lead-branch"})
	requireCancelled(t, e.env)
	assert.Equal(t, []string{"analytics-series/intro", "analytics-series/case-study"}, e.sent, "the nudge is skipped after a click")
	require.Len(t, sentAt, 2)
	// deep-dive was skipped at day 3; case-study comes 2 days later instead of 7.
	assert.Equal(t, 5*day, sentAt[1].Sub(sentAt[0]))
	_ = yes
}
