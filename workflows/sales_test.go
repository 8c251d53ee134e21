package workflows

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/lifecycle"
)

// salesEnv is a lead that becomes hand-off ready one hour after it starts, with a sales team.
type salesEnv struct {
	env       *testsuite.TestWorkflowEnvironment
	assigns   []activities.AssignInput
	lapses    []activities.LapseInput
	lapseAt   []time.Time
	responds  []activities.RespondInput
	reminders int
	plans     []string
	sent      []string
	due       time.Duration
	dueAt     func(at time.Time) time.Time
	respond   func(in activities.RespondInput) activities.RespondResult
	handoffs  int
	// Hooks a test may set to replace the default behaviour of an activity.
	assign  func(in activities.AssignInput) (activities.Assignment, error)
	send    func(in activities.SendInput) (activities.SendResult, error)
	rescore func(n int, in activities.RescoreInput) (activities.RescoreResult, error)
	// remindHook, when set, runs inside the Remind activity.
	remindHook func()
	// respondErr, when it returns an error, fails the Respond activity without storing anything.
	respondErr func(in activities.RespondInput) error

	// mu guards what the activities record; stopped is set once the run is over, so that an
	// activity the cancelled run left behind records nothing while the test reads the records.
	mu      sync.Mutex
	stopped bool
}

// note records what an activity did, unless the run is over.
func (e *salesEnv) note(record func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.stopped {
		record()
	}
}

func newSalesEnv(t *testing.T, start time.Time) *salesEnv {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	e := &salesEnv{env: s.NewTestWorkflowEnvironment(), due: 2 * time.Hour}
	e.env.RegisterWorkflow(Lead)
	e.env.SetStartTime(start)
	var leads *activities.Leads
	var email *activities.Email
	var sales *activities.Sales
	for _, a := range []any{leads.Plan, leads.Rescore, email.SendStep, sales.Assign, sales.Lapse, sales.Remind, sales.Respond} {
		e.env.RegisterActivity(a)
	}
	e.env.OnActivity(leads.Plan, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PlanInput) (activities.Plan, error) {
			e.note(func() { e.plans = append(e.plans, in.Segment) })
			seq := threePartSeries()
			if in.Segment == "general" {
				seq.ID = "general-series"
			}
			return activities.Plan{Segment: "analytics", Stage: lifecycle.Lead, Sequence: seq, SalesEnabled: true}, nil
		})
	e.env.OnActivity(leads.Rescore, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RescoreInput) (activities.RescoreResult, error) {
			e.note(func() { e.handoffs++ })
			if e.rescore != nil {
				return e.rescore(e.handoffs, in)
			}
			return activities.RescoreResult{Score: 55, Band: "warm", Stage: lifecycle.MQL,
				Handoff: &activities.Handoff{Reason: "score 55 ≥ MQL threshold 50", Score: 55}}, nil
		})
	e.env.OnActivity(email.SendStep, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
			if e.send != nil {
				return e.send(in)
			}
			e.note(func() { e.sent = append(e.sent, in.SequenceID+"/"+in.StepID) })
			return activities.SendResult{Status: activities.StatusSent}, nil
		})
	e.env.OnActivity(sales.Assign, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AssignInput) (activities.Assignment, error) {
			if e.assign != nil {
				return e.assign(in)
			}
			var n int
			e.note(func() { e.assigns = append(e.assigns, in); n = len(e.assigns) })
			rep := "rep-jonas"
			if in.Current != "" {
				rep = "rep-mia"
			}
			due := in.At.Add(e.due)
			if e.dueAt != nil {
				due = e.dueAt(in.At)
			}
			return activities.Assignment{HandoffID: int64(n), RepID: rep, ManagerID: "mgr-eva", Policy: "mql",
				DueAt: due, ReassignAfter: 2, RecycleSegment: "general"}, nil
		})
	e.env.OnActivity(sales.Lapse, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.LapseInput) (activities.LapseResult, error) {
			now := e.env.Now()
			e.note(func() { e.lapses, e.lapseAt = append(e.lapses, in), append(e.lapseAt, now) })
			return activities.LapseResult{NextDueAt: in.At.Add(e.due)}, nil
		})
	e.env.OnActivity(sales.Remind, mock.Anything, mock.Anything).Return(
		func(_ context.Context, id int64) error {
			if e.remindHook != nil {
				e.remindHook()
			}
			e.note(func() { e.reminders++ })
			return nil
		})
	e.respond = func(in activities.RespondInput) activities.RespondResult {
		return activities.RespondResult{Stage: lifecycle.SAL}
	}
	e.env.OnActivity(sales.Respond, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RespondInput) (activities.RespondResult, error) {
			if e.respondErr != nil {
				if err := e.respondErr(in); err != nil {
					return activities.RespondResult{}, err
				}
			}
			e.note(func() { e.responds = append(e.responds, in) })
			return e.respond(in), nil
		})
	// Engagement makes the lead hand-off ready an hour in.
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalEngaged, Engaged{}) }, time.Hour)
	return e
}

func (e *salesEnv) decide(t *testing.T, after time.Duration, d Decision, got *string) {
	e.env.RegisterDelayedCallback(func() {
		e.env.UpdateWorkflow(UpdateDecide, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { t.Errorf("update rejected: %v", err) },
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				*got = v.(DecisionResult).Outcome
			},
		}, d)
	}, after)
}

func (e *salesEnv) run(t *testing.T, until time.Duration) LeadState {
	var st LeadState
	e.env.RegisterDelayedCallback(func() {
		st = queryState(t, e.env)
		e.env.CancelWorkflow()
	}, until)
	e.env.ExecuteWorkflow(Lead, LeadInput{LeadID: "3f1c0a3e-0000-4000-8000-0000000000aa"})
	e.mu.Lock()
	e.stopped = true
	e.mu.Unlock()
	requireCancelled(t, e.env)
	return st
}

var monday = time.Date(2026, 11, 23, 10, 0, 0, 0, berlin)

func TestAcceptedInTimeMeansNoEscalation(t *testing.T) {
	e := newSalesEnv(t, monday)
	var outcome string
	e.decide(t, time.Hour+30*time.Minute, Decision{Action: "accept", RepID: "rep-jonas"}, &outcome)
	st := e.run(t, 10*day)
	assert.Equal(t, OutcomeAccepted, outcome)
	require.Len(t, e.assigns, 1)
	assert.Empty(t, e.lapses, "no escalation")
	require.Len(t, e.responds, 1)
	assert.Equal(t, "accept", e.responds[0].Action)
	assert.Equal(t, monday.Add(90*time.Minute), e.responds[0].At.In(berlin))
	assert.Equal(t, lifecycle.SAL, st.Stage)
	assert.Equal(t, PhaseAccepted, st.Sales.Phase)
	assert.Equal(t, []string{"analytics-series/intro"}, e.sent, "drips stopped at the handoff")
}

func TestLapsesEscalateOnceEachThenReassign(t *testing.T) {
	e := newSalesEnv(t, monday)
	var late, fresh string
	// The first rep answers after the reassignment: too late. The new rep accepts.
	e.decide(t, 6*time.Hour, Decision{Action: "accept", RepID: "rep-jonas"}, &late)
	e.decide(t, 6*time.Hour+time.Minute, Decision{Action: "accept", RepID: "rep-mia"}, &fresh)
	st := e.run(t, 10*day)
	require.Len(t, e.lapses, 2, "exactly one escalation per lapse")
	assert.Equal(t, 1, e.lapses[0].Lapse)
	assert.Equal(t, 2, e.lapses[1].Lapse)
	// Handed off at 11:00, due 13:00; second clock due 15:00.
	assert.Equal(t, monday.Add(3*time.Hour), e.lapseAt[0].In(berlin), "escalated at the deadline")
	assert.Equal(t, monday.Add(5*time.Hour), e.lapseAt[1].In(berlin))
	require.Len(t, e.assigns, 2, "reassigned after the second lapse")
	assert.Equal(t, "rep-jonas", e.assigns[1].Current)
	assert.Equal(t, 2, e.assigns[1].Assignment)
	assert.Equal(t, OutcomeTooLate, late)
	assert.Equal(t, OutcomeAccepted, fresh)
	assert.Equal(t, "rep-mia", st.Sales.RepID)
	require.Len(t, e.responds, 1)
	assert.Equal(t, "rep-mia", e.responds[0].RepID)
}

func TestFridayEveningHandoffWaitsForTheDeadlineTheTeamComputed(t *testing.T) {
	friday := time.Date(2026, 11, 27, 16, 30, 0, 0, berlin) // handoff at 17:30
	e := newSalesEnv(t, friday)
	// The business-hours deadline (Monday 10:30) comes from the team calendar in the activity.
	e.dueAt = func(at time.Time) time.Time { return time.Date(2026, 11, 30, 10, 30, 0, 0, berlin) }
	e.run(t, 4*day)
	require.NotEmpty(t, e.lapseAt)
	assert.Equal(t, time.Date(2026, 11, 30, 10, 30, 0, 0, berlin), e.lapseAt[0].In(berlin), "escalated Monday 10:30, not over the weekend")
}

func TestAcceptRacingTheDeadlineHasOneOutcome(t *testing.T) {
	e := newSalesEnv(t, monday)
	var outcome string
	e.decide(t, 3*time.Hour, Decision{Action: "accept", RepID: "rep-jonas"}, &outcome) // exactly at the deadline
	st := e.run(t, 10*day)
	assert.Equal(t, OutcomeAccepted, outcome)
	assert.LessOrEqual(t, len(e.lapses), 1, "at most the one escalation that was already due")
	assert.Len(t, e.assigns, 1, "never reassigned once accepted")
	assert.Len(t, e.responds, 1)
	assert.Equal(t, PhaseAccepted, st.Sales.Phase)
}

func TestRejectNotReadyRecyclesIntoNurtureAndCanComeBack(t *testing.T) {
	e := newSalesEnv(t, monday)
	e.respond = func(in activities.RespondInput) activities.RespondResult {
		return activities.RespondResult{Stage: lifecycle.Recycled, RecycleSegment: "general"}
	}
	var outcome string
	e.decide(t, 90*time.Minute, Decision{Action: "reject", RepID: "rep-jonas", Reason: "not_ready", Note: "budget next year"}, &outcome)
	// Later engagement makes it hand-off ready again.
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalEngaged, Engaged{}) }, 20*day)
	st := e.run(t, 25*day)
	assert.Equal(t, OutcomeRejected, outcome)
	assert.Contains(t, e.plans, "general", "recycled into the configured nurture series")
	assert.Contains(t, e.sent, "general-series/intro", "nurture resumed")
	require.GreaterOrEqual(t, len(e.assigns), 2, "handed off again later")
	assert.Equal(t, 2, e.assigns[1].Seq)
	assert.Equal(t, 2, st.Sales.Seq)
	require.Len(t, e.responds, 1)
	assert.Equal(t, "not_ready", e.responds[0].Reason)
}

func TestNotYourLeadAndAlreadyAccepted(t *testing.T) {
	e := newSalesEnv(t, monday)
	var stranger, first, again string
	e.decide(t, 70*time.Minute, Decision{Action: "accept", RepID: "rep-nobody"}, &stranger)
	e.decide(t, 80*time.Minute, Decision{Action: "accept", RepID: "rep-jonas"}, &first)
	e.decide(t, 90*time.Minute, Decision{Action: "accept", RepID: "rep-jonas"}, &again)
	e.run(t, 10*day)
	assert.Equal(t, OutcomeNotYourLead, stranger)
	assert.Equal(t, OutcomeAccepted, first)
	assert.Equal(t, OutcomeAlreadyAccepted, again)
	assert.Len(t, e.responds, 1)
}
