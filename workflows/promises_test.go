package workflows

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/sequence"
)

// Tests of the promises of issue 8: each failed on the workflow code before its fix.

type sentAt struct {
	what string
	at   time.Time
}

// A click on another segment's content on Saturday starts that segment's series — at the window's
// next minute (Monday 09:00), not at once. The old series' timer for Monday 09:00 was cancelled by
// the switch and then reused, and its cancellation counted as a fire.
func TestSegmentSwitchAtTheWeekendWaitsForTheWindow(t *testing.T) {
	friday := time.Date(2026, 11, 20, 18, 0, 0, 0, berlin)
	e := newEngagementEnv(t, analyticsPlan, func(n int, in activities.RescoreInput) activities.RescoreResult {
		if n == 2 {
			return activities.RescoreResult{Stage: lifecycle.Lead, SwitchSegment: "security", LastEventID: 2}
		}
		return activities.RescoreResult{Stage: lifecycle.Lead, LastEventID: int64(n)}
	})
	e.env.SetStartTime(friday)
	// Saturday 11:00: a capture (rescore 1) then a click on security content (rescore 2).
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalCapture, Capture{}) }, 17*time.Hour)
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalEngaged, Engaged{Events: 1}) }, 17*time.Hour+time.Minute)
	e.env.RegisterDelayedCallback(func() { e.env.CancelWorkflow() }, 5*day)
	e.env.ExecuteWorkflow(Lead, LeadInput{LeadID: "3f1c0a3e-0000-4000-8000-000000000101"})
	requireCancelled(t, e.env)
	var got []sentAt
	for i, w := range e.sent {
		got = append(got, sentAt{w, e.sentAt[i].In(berlin)})
	}
	require.NotEmpty(t, got)
	assert.Equal(t, "security-series/intro", got[0].what)
	assert.Equal(t, time.Date(2026, 11, 23, 9, 0, 0, 0, berlin), got[0].at, "the new series' first email waits for Monday 09:00")
	for _, s := range got {
		wd := s.at.Weekday()
		assert.False(t, wd == time.Saturday || wd == time.Sunday || s.at.Hour() < 9 || s.at.Hour() > 16, "%s sent outside the window at %s", s.what, s.at)
	}
}

// While a send retries (an SMTP outage), a demo request is handed to sales at once, and the
// marketing email that was retrying is not sent after the handoff.
func TestHandRaiseDuringASendOutageIsHandedOffAtOnce(t *testing.T) {
	e := newSalesEnv(t, monday)
	outage := true
	e.send = func(in activities.SendInput) (activities.SendResult, error) {
		if outage {
			return activities.SendResult{}, errors.New("451 try again later")
		}
		e.sent = append(e.sent, in.SequenceID+"/"+in.StepID)
		return activities.SendResult{Status: activities.StatusSent}, nil
	}
	e.rescore = func(n int, in activities.RescoreInput) (activities.RescoreResult, error) {
		return activities.RescoreResult{Score: 40, Stage: lifecycle.MQL,
			Handoff: &activities.Handoff{Reason: "hand-raise: demo_request", Score: 40, HandRaise: "demo_request"}}, nil
	}
	var assignedAt time.Time
	e.assign = func(in activities.AssignInput) (activities.Assignment, error) {
		e.assigns = append(e.assigns, in)
		assignedAt = e.env.Now()
		return activities.Assignment{HandoffID: 1, RepID: "rep-jonas", ManagerID: "mgr-eva", Policy: "demo", DueAt: in.At.Add(time.Hour), ReassignAfter: 2}, nil
	}
	// The first step's send (due at once) is failing; a demo request comes 10 minutes in.
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalEngaged, Engaged{}) }, 10*time.Minute)
	e.env.RegisterDelayedCallback(func() { outage = false }, 30*time.Hour)
	e.due = 30 * day
	e.run(t, 3*day)
	require.Len(t, e.assigns, 1, "the hand-raise reached a rep")
	assert.Equal(t, monday.Add(10*time.Minute), assignedAt.In(berlin), "handed off when the demo request came, not after the outage")
	assert.Empty(t, e.sent, "the retrying marketing email is not sent after the handoff")
}

// Business errors of an activity never fail the lead's workflow: an unknown rep is recorded and
// the assignment is tried again later, keeping the lead in sales' hands.
func TestUnknownRepDoesNotFailTheWorkflowAndIsRetried(t *testing.T) {
	e := newSalesEnv(t, monday)
	calls := 0
	e.assign = func(in activities.AssignInput) (activities.Assignment, error) {
		calls++
		if calls <= 2 {
			return activities.Assignment{}, temporal.NewNonRetryableApplicationError("rep rep-x is no longer in the team file", "UnknownRep", nil)
		}
		e.assigns = append(e.assigns, in)
		return activities.Assignment{HandoffID: 7, RepID: "rep-jonas", ManagerID: "mgr-eva", Policy: "mql", DueAt: in.At.Add(2 * time.Hour), ReassignAfter: 2}, nil
	}
	e.due = 30 * day
	st := e.run(t, 2*day)
	require.Len(t, e.assigns, 1, "assigned once the team was fixed")
	assert.Equal(t, 3, calls, "tried again after each failure")
	assert.Equal(t, PhaseAwaiting, st.Sales.Phase)
	assert.Equal(t, int64(7), st.Sales.HandoffID)
	assert.Equal(t, monday.Add(time.Hour+3*time.Minute), e.assigns[0].At.In(berlin), "retried after one minute, then two")
	require.NotEmpty(t, e.lapseAt, "its SLA clock runs")
	assert.True(t, e.assigns[0].At.Add(2*time.Hour).Equal(e.lapseAt[0]), "and lapses at its deadline")
}

// An accept link of an earlier handoff does not accept a later handoff of the same lead.
func TestOldLinkDoesNotActOnALaterHandoff(t *testing.T) {
	e := newSalesEnv(t, monday)
	e.respond = func(in activities.RespondInput) activities.RespondResult {
		if in.Action == "reject" {
			return activities.RespondResult{Stage: lifecycle.Recycled, RecycleSegment: "general"}
		}
		return activities.RespondResult{Stage: lifecycle.SAL}
	}
	e.due = 30 * day
	var first, old string
	e.decide(t, 90*time.Minute, Decision{Action: "reject", RepID: "rep-jonas", Reason: "not_ready", HandoffID: 1}, &first)
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalEngaged, Engaged{}) }, 20*day)
	// The rep finds the first handoff's accept link again, after the second handoff.
	e.decide(t, 20*day+time.Hour, Decision{Action: "accept", RepID: "rep-jonas", HandoffID: 1}, &old)
	st := e.run(t, 21*day)
	assert.Equal(t, OutcomeRejected, first)
	require.Len(t, e.assigns, 2)
	assert.Equal(t, OutcomeStaleLink, old)
	assert.Equal(t, PhaseAwaiting, st.Sales.Phase, "the second handoff still waits for its answer")
	assert.Len(t, e.responds, 1)
}

// An email found already sent (the activity ran before a restart) counts toward the frequency cap.
func TestAlreadySentCountsTowardTheCap(t *testing.T) {
	seq := sequence.Sequence{ID: "daily", Window: sequence.Window{Cron: "* * * * *"},
		Steps: []sequence.Step{{ID: "a", Wait: 0}, {ID: "b", Wait: time.Hour}, {ID: "c", Wait: time.Hour}}}
	e := newEngagementEnv(t, func(in activities.PlanInput) activities.Plan {
		return activities.Plan{Segment: "s", Stage: lifecycle.Lead, Sequence: seq, FrequencyCap: &sequence.FrequencyCap{Max: 2, Per: day}}
	}, func(n int, in activities.RescoreInput) activities.RescoreResult {
		return activities.RescoreResult{Stage: lifecycle.Lead}
	})
	e.alreadySent = map[string]bool{"a": true}
	e.env.RegisterDelayedCallback(func() { e.env.CancelWorkflow() }, 3*day)
	e.env.ExecuteWorkflow(Lead, LeadInput{LeadID: "3f1c0a3e-0000-4000-8000-000000000102"})
	requireCancelled(t, e.env)
	require.Len(t, e.sentAt, 3)
	assert.GreaterOrEqual(t, e.sentAt[2].Sub(e.sentAt[0]), day, "three emails in a day, one of them found already sent, break a cap of 2 a day")
}

// A lost deal sends the lead back to nurture (the recycle series), and a later qualification
// hands it to sales again with a new clock.
func TestLostDealIsNurturedAgainAndCanComeBack(t *testing.T) {
	e := newSalesEnv(t, monday)
	e.due = 30 * day
	e.rescore = func(n int, in activities.RescoreInput) (activities.RescoreResult, error) {
		switch n {
		case 2:
			return activities.RescoreResult{Score: 60, Stage: lifecycle.Recycled}, nil // the deal was lost
		default:
			return activities.RescoreResult{Score: 60, Stage: lifecycle.MQL, Handoff: &activities.Handoff{Reason: "score 60", Score: 60}}, nil
		}
	}
	var outcome string
	e.decide(t, 90*time.Minute, Decision{Action: "accept", RepID: "rep-jonas"}, &outcome)
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalEngaged, Engaged{}) }, 5*day)
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalEngaged, Engaged{}) }, 20*day)
	st := e.run(t, 21*day)
	assert.Equal(t, OutcomeAccepted, outcome)
	assert.Contains(t, e.plans, "general", "the lost lead gets the recycle series")
	assert.Contains(t, e.sent, "general-series/intro", "and is nurtured again")
	require.Len(t, e.assigns, 2, "handed to sales again once it qualified anew")
	assert.Equal(t, 2, e.assigns[1].Seq)
	assert.Equal(t, PhaseAwaiting, st.Sales.Phase)
}

// When the rep's answer page says "Accepted", the answer is already stored: the update returns
// only after the Respond activity committed it.
func TestAnswerIsStoredBeforeTheRepIsTold(t *testing.T) {
	e := newSalesEnv(t, monday)
	storedAtAnswer := -1
	e.env.RegisterDelayedCallback(func() {
		e.env.UpdateWorkflow(UpdateDecide, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { t.Errorf("update rejected: %v", err) },
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				storedAtAnswer = len(e.responds)
			},
		}, Decision{Action: "accept", RepID: "rep-jonas"})
	}, 90*time.Minute)
	e.run(t, day)
	assert.Equal(t, 1, storedAtAnswer, "the answer was stored when the outcome was returned")
	assert.Len(t, e.responds, 1, "and stored once")
}

// An answer that cannot be stored changes nothing: the rep is told to try again and the clock
// keeps running.
func TestAnswerThatCannotBeStoredChangesNothing(t *testing.T) {
	e := newSalesEnv(t, monday)
	failing := true
	e.respond = func(in activities.RespondInput) activities.RespondResult {
		return activities.RespondResult{Stage: lifecycle.SAL}
	}
	var first error
	e.env.RegisterDelayedCallback(func() {
		e.env.UpdateWorkflow(UpdateDecide, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { first = err },
			OnComplete: func(v any, err error) { first = err },
		}, Decision{Action: "accept", RepID: "rep-jonas", NoteID: "fail"})
	}, 90*time.Minute)
	e.respondErr = func(in activities.RespondInput) error {
		if failing && in.NoteID == "fail" {
			return temporal.NewNonRetryableApplicationError("store down", "Store", nil)
		}
		return nil
	}
	var second string
	e.decide(t, 100*time.Minute, Decision{Action: "accept", RepID: "rep-jonas"}, &second)
	e.run(t, day)
	require.Error(t, first, "the first answer was refused")
	assert.Equal(t, OutcomeAccepted, second, "a second try works")
}

// A rescore that was pending when the run continued as new runs first in the new run.
func TestPendingRescoreIsCarriedAcrossContinueAsNew(t *testing.T) {
	e := newEngagementEnv(t, analyticsPlan, func(n int, in activities.RescoreInput) activities.RescoreResult {
		return activities.RescoreResult{Stage: lifecycle.Lead, Score: 7}
	})
	seq := threePartSeries()
	st := LeadState{LeadID: "3f1c0a3e-0000-4000-8000-000000000104", Segment: "analytics", Stage: lifecycle.Lead, Status: StatusRunning,
		Sequence: &seq, NextStep: 1, StepBase: monday, EnrolledAt: monday, PendingRescore: true}
	e.env.RegisterDelayedCallback(func() { e.env.CancelWorkflow() }, time.Hour)
	e.env.ExecuteWorkflow(Lead, LeadInput{LeadID: st.LeadID, State: &st})
	requireCancelled(t, e.env)
	assert.Equal(t, 1, e.rescores, "the carried rescore ran without a new signal")
}

// The clicked sends the workflow carries stay bounded by its step history.
func TestClickedSendsStayBounded(t *testing.T) {
	var clicked []string
	for i := range 500 {
		clicked = append(clicked, "old-send-"+string(rune('a'+i%26))+time.Duration(i).String())
	}
	clicked = append(clicked, "send-intro")
	e := newEngagementEnv(t, analyticsPlan, func(n int, in activities.RescoreInput) activities.RescoreResult {
		return activities.RescoreResult{Stage: lifecycle.Lead, ClickedSends: clicked}
	})
	var st LeadState
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalEngaged, Engaged{}) }, 2*time.Hour)
	e.env.RegisterDelayedCallback(func() { st = queryState(t, e.env); e.env.CancelWorkflow() }, 3*time.Hour)
	e.env.ExecuteWorkflow(Lead, LeadInput{LeadID: "3f1c0a3e-0000-4000-8000-000000000105"})
	requireCancelled(t, e.env)
	assert.Equal(t, []string{"send-intro"}, st.ClickedSends)
}

// A rescore that fails for good (a business error) is recorded and tried again later; the lead
// still reaches a rep and the workflow never fails.
func TestFailedRescoreIsRetriedAndTheLeadStillReachesARep(t *testing.T) {
	e := newSalesEnv(t, monday)
	e.due = 30 * day
	e.rescore = func(n int, in activities.RescoreInput) (activities.RescoreResult, error) {
		if n == 1 {
			return activities.RescoreResult{}, temporal.NewNonRetryableApplicationError("scoring model failed", "ScoreFailed", nil)
		}
		return activities.RescoreResult{Score: 55, Stage: lifecycle.MQL, Handoff: &activities.Handoff{Reason: "score 55", Score: 55}}, nil
	}
	st := e.run(t, day)
	require.Len(t, e.assigns, 1, "handed off once the rescore worked")
	assert.Equal(t, monday.Add(time.Hour+time.Minute), e.assigns[0].At.In(berlin), "tried again a minute later")
	assert.Contains(t, st.LastError, "scoring model failed", "the failure is recorded")
}

// A plan that fails for good is recorded and tried again later: the lead still gets its series.
func TestFailedPlanIsRetried(t *testing.T) {
	e := newEngagementEnv(t, analyticsPlan, func(n int, in activities.RescoreInput) activities.RescoreResult {
		return activities.RescoreResult{Stage: lifecycle.Lead}
	})
	e.planErr = func(n int) error {
		if n == 1 {
			return temporal.NewNonRetryableApplicationError("catalog unreadable", "Plan", nil)
		}
		return nil
	}
	e.env.RegisterDelayedCallback(func() { e.env.CancelWorkflow() }, day)
	e.env.ExecuteWorkflow(Lead, LeadInput{LeadID: "3f1c0a3e-0000-4000-8000-000000000106"})
	requireCancelled(t, e.env)
	assert.Equal(t, 2, e.plans)
	require.NotEmpty(t, e.sent, "the series started after the retry")
	assert.Equal(t, "analytics-series/intro", e.sent[0])
}

// The reconciler may deliver a capture whose first delivery is still under way: the workflow
// counts it once and spends no rescore on it.
func TestCaptureDeliveredTwiceCountsOnce(t *testing.T) {
	e := newEngagementEnv(t, analyticsPlan, func(n int, in activities.RescoreInput) activities.RescoreResult {
		return activities.RescoreResult{Stage: lifecycle.Lead}
	})
	var st LeadState
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalCapture, Capture{EnrollmentID: 7}) }, time.Hour)
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalCapture, Capture{EnrollmentID: 7}) }, 2*time.Hour)
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalCapture, Capture{EnrollmentID: 8}) }, 3*time.Hour)
	e.env.RegisterDelayedCallback(func() { st = queryState(t, e.env); e.env.CancelWorkflow() }, 4*time.Hour)
	e.env.ExecuteWorkflow(Lead, LeadInput{LeadID: "3f1c0a3e-0000-4000-8000-000000000107"})
	requireCancelled(t, e.env)
	assert.Equal(t, 2, st.Captures)
	assert.Equal(t, 2, e.rescores, "no rescore for the repeat")
}

// A lead whose step is due but waits for Monday's window, and whose time zone changes at the
// weekend, gets the email at the next window minute in its new zone — not at once from a window
// slot that is already past.
func TestTimeZoneChangeDoesNotSendAPastSlotAtOnce(t *testing.T) {
	friday := time.Date(2026, 11, 20, 18, 0, 0, 0, berlin) // 12:00 in New York, inside its window
	e := newEngagementEnv(t, analyticsPlan, func(n int, in activities.RescoreInput) activities.RescoreResult {
		return activities.RescoreResult{Stage: lifecycle.Lead}
	})
	e.env.SetStartTime(friday)
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalCapture, Capture{TimeZone: "America/New_York"}) }, 16*time.Hour)
	e.env.RegisterDelayedCallback(func() { e.env.CancelWorkflow() }, 4*day)
	e.env.ExecuteWorkflow(Lead, LeadInput{LeadID: "3f1c0a3e-0000-4000-8000-000000000108"})
	requireCancelled(t, e.env)
	require.NotEmpty(t, e.sentAt)
	newYork := mustLoc("America/New_York")
	assert.Equal(t, time.Date(2026, 11, 23, 9, 0, 0, 0, newYork), e.sentAt[0].In(newYork), "Monday 09:00 in the lead's new zone")
}

// A lost deal and a new hand-raise that reach the workflow in one rescore (the stored stage went
// opportunity → recycled → MQL meanwhile) still hand the lead to sales again.
func TestLostDealAndNewHandRaiseInOneRescoreIsHandedOff(t *testing.T) {
	e := newSalesEnv(t, monday)
	e.due = 30 * day
	e.rescore = func(n int, in activities.RescoreInput) (activities.RescoreResult, error) {
		return activities.RescoreResult{Score: 60, Stage: lifecycle.MQL, Handoff: &activities.Handoff{Reason: "hand-raise: demo_request", Score: 60}}, nil
	}
	var outcome string
	e.decide(t, 90*time.Minute, Decision{Action: "accept", RepID: "rep-jonas"}, &outcome)
	e.env.RegisterDelayedCallback(func() { e.env.SignalWorkflow(SignalEngaged, Engaged{}) }, 5*day)
	st := e.run(t, 6*day)
	assert.Equal(t, OutcomeAccepted, outcome)
	require.Len(t, e.assigns, 2, "the re-qualified lead reached a rep")
	assert.Equal(t, 2, e.assigns[1].Seq)
	assert.Equal(t, PhaseAwaiting, st.Sales.Phase)
}

// An answer that comes when the deadline has already passed (the worker was busy or down when it
// fell due, and the answer is handled before the deadline's timer) is taken — and the lapse still
// reaches the manager, once, without a copy to the rep who answered.
func TestAnswerAfterTheDeadlineStillEscalatesOnce(t *testing.T) {
	e := newSalesEnv(t, monday)
	e.assign = func(in activities.AssignInput) (activities.Assignment, error) {
		e.assigns = append(e.assigns, in)
		due := in.At.Add(2 * time.Hour)
		return activities.Assignment{HandoffID: 1, RepID: "rep-jonas", ManagerID: "mgr-eva", Policy: "mql", DueAt: due,
			RemindAt: due.Add(-time.Second), ReassignAfter: 2}, nil
	}
	// The reminder, a second before the deadline, takes the worker two seconds: the deadline
	// passes while it runs, and the rep's answer arrives meanwhile.
	e.remindHook = func() { time.Sleep(2 * time.Second) }
	var outcome string
	e.decide(t, 3*time.Hour+500*time.Millisecond, Decision{Action: "accept", RepID: "rep-jonas"}, &outcome)
	st := e.run(t, 10*day)
	assert.Equal(t, OutcomeAccepted, outcome)
	require.Len(t, e.lapses, 1, "the lapse that fell due is escalated")
	assert.True(t, e.lapses[0].Answered, "the manager is told; the rep, who answered, gets no copy")
	assert.Len(t, e.assigns, 1)
	assert.Equal(t, PhaseAccepted, st.Sales.Phase)
}
