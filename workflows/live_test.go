package workflows

import (
	"context"
	"errors"
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

// liveStart is a Monday morning; the sequences here have no send window, so times are exact.
var liveStart = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// fourSteps is version 1 of the sequence the live-edit tests change.
func fourSteps() sequence.Sequence {
	return sequence.Sequence{
		ID: "analytics-series",
		Steps: []sequence.Step{
			{ID: "a", Template: "t-a", Subject: "A", Wait: 0},
			{ID: "b", Template: "t-b", Subject: "B", Wait: 3 * day},
			{ID: "c", Template: "t-c", Subject: "C", Wait: 7 * day},
			{ID: "d", Template: "t-d", Subject: "D", Wait: 7 * day},
		},
		Exit: sequence.Exit{Stages: []lifecycle.Stage{lifecycle.MQL}, Unsubscribed: true},
	}
}

// liveEnv runs one lead against published versions of its sequence.
type liveEnv struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment
	// versions[v] are the sequences of version v by id; current is the one Plan reads.
	versions map[int]map[string]sequence.Sequence
	current  int
	// segments maps a segment to its sequence id; a Follow of a sequence that is gone answers
	// the segment "general".
	segments map[string]string
	sends    []activities.SendInput
	sentAt   []time.Duration // since liveStart
	// paused holds "seq/step" or "seq/" while paused.
	paused   map[string]bool
	sendErr  func(in activities.SendInput) error
	rescore  func(n int, in activities.RescoreInput) activities.RescoreResult
	rescores []activities.RescoreInput
	reengage *sequence.Reengagement
	follows  int
	// done are the step ids Plan reports as finished by an earlier enrollment.
	done []string
}

func newLiveEnv(t *testing.T, v1 ...sequence.Sequence) *liveEnv {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	e := &liveEnv{t: t, env: s.NewTestWorkflowEnvironment(), versions: map[int]map[string]sequence.Sequence{}, current: 1,
		segments: map[string]string{"analytics": "analytics-series", "general": "general-series"}, paused: map[string]bool{}}
	e.publish(1, v1...)
	e.env.RegisterWorkflow(Lead)
	e.env.SetStartTime(liveStart)
	var leads *activities.Leads
	var email *activities.Email
	e.env.RegisterActivity(leads.Plan)
	e.env.RegisterActivity(leads.Rescore)
	e.env.RegisterActivity(leads.Follow)
	e.env.RegisterActivity(email.SendStep)
	e.env.OnActivity(leads.Plan, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PlanInput) (activities.Plan, error) {
			seg := in.Segment
			if seg == "" {
				seg = "analytics"
			}
			seq, ok := e.versions[e.current][e.segments[seg]]
			if !ok {
				seg, seq = "general", e.versions[e.current]["general-series"]
			}
			return activities.Plan{Segment: seg, Stage: lifecycle.Lead, Sequence: seq, Done: append([]string{}, e.done...), Version: e.current,
				Reengagement: e.reengage}, nil
		})
	e.env.OnActivity(leads.Follow, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FollowInput) (activities.FollowResult, error) {
			e.follows++
			seqs, ok := e.versions[in.Version]
			if !ok {
				return activities.FollowResult{}, fmt.Errorf("version %d is not loaded here yet", in.Version)
			}
			seq, found := seqs[in.SequenceID]
			res := activities.FollowResult{Version: in.Version, Found: found, Sequence: seq, Segment: "analytics", Reengagement: e.reengage}
			if !found {
				res.Segment = "general"
			}
			return res, nil
		})
	e.env.OnActivity(leads.Rescore, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RescoreInput) (activities.RescoreResult, error) {
			e.rescores = append(e.rescores, in)
			if e.rescore == nil {
				return activities.RescoreResult{Stage: lifecycle.Lead}, nil
			}
			return e.rescore(len(e.rescores), in), nil
		})
	e.env.OnActivity(email.SendStep, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
			if in.Pausable && (e.paused[in.SequenceID+"/"] || e.paused[in.SequenceID+"/"+in.StepID]) {
				return activities.SendResult{Status: activities.StatusPaused}, nil
			}
			if e.sendErr != nil {
				if err := e.sendErr(in); err != nil {
					return activities.SendResult{}, err
				}
			}
			e.sends = append(e.sends, in)
			e.sentAt = append(e.sentAt, e.env.Now().Sub(liveStart))
			if in.Holdout {
				return activities.SendResult{Status: activities.StatusHeldOut, SendID: "send-" + in.StepID}, nil
			}
			return activities.SendResult{Status: activities.StatusSent, SendID: "send-" + in.StepID}, nil
		})
	return e
}

// publish makes v a version holding seqs (and every sequence of the version before it that seqs
// does not replace or drop — pass drop to remove one).
func (e *liveEnv) publish(v int, seqs ...sequence.Sequence) {
	m := map[string]sequence.Sequence{}
	for _, s := range seqs {
		m[s.ID] = s
	}
	e.versions[v] = m
}

// at runs f at virtual time since liveStart.
func (e *liveEnv) at(since time.Duration, f func()) {
	e.env.RegisterDelayedCallback(f, since)
}

// tell publishes version v at since and signals the lead to follow it.
func (e *liveEnv) tell(since time.Duration, v int, seqs ...sequence.Sequence) {
	e.at(since, func() {
		e.publish(v, seqs...)
		e.current = v
		e.env.SignalWorkflow(SignalContent, ContentChange{Version: v})
	})
}

// run runs the lead's workflow until until (since liveStart) and returns its last state.
func (e *liveEnv) run(leadID string, until time.Duration) LeadState {
	var st LeadState
	e.at(until, func() {
		st = queryState(e.t, e.env)
		e.env.CancelWorkflow()
	})
	e.env.ExecuteWorkflow(Lead, LeadInput{LeadID: leadID})
	requireCancelled(e.t, e.env)
	return st
}

func (e *liveEnv) sent() []string {
	out := []string{}
	for i, s := range e.sends {
		out = append(out, fmt.Sprintf("%s@%s", s.StepID, shortDur(e.sentAt[i])))
	}
	return out
}

// A changed wait reschedules the waiting lead from the original start of that wait: b's wait
// shortened from 3 to 2 days on day 1 sends b on day 2, not day 3 and not day 1 + 2.
func TestChangedWaitReschedulesFromTheStartOfTheWait(t *testing.T) {
	e := newLiveEnv(t, fourSteps())
	v2 := fourSteps()
	v2.Steps[1].Wait = 2 * day
	v2.Steps[1].Subject = "B, shorter"
	e.tell(1*day, 2, v2)
	st := e.run("lead-wait", 20*day)
	assert.Equal(t, []string{"a@0", "b@2d", "c@9d", "d@16d"}, e.sent())
	assert.Equal(t, "B, shorter", e.sends[1].Subject, "a changed subject applies to the next send")
	assert.Equal(t, 2, e.sends[1].ContentVersion)
	assert.Equal(t, 2, st.ContentVersion)
	assert.Equal(t, 1, e.follows)
}

// A lead that is not told of a new version (it was published with --pin) keeps its own.
func TestLeadNotToldOfAVersionKeepsItsOwn(t *testing.T) {
	e := newLiveEnv(t, fourSteps())
	v2 := fourSteps()
	v2.Steps[1].Wait = 2 * day
	e.at(1*day, func() { e.publish(2, v2); e.current = 2 })
	st := e.run("lead-pinned", 20*day)
	assert.Equal(t, []string{"a@0", "b@3d", "c@10d", "d@17d"}, e.sent())
	assert.Equal(t, 1, st.ContentVersion)
	assert.Zero(t, e.follows)
}

// A removed step hands its waiting leads to the next remaining step, whose wait counts from the
// start of the wait they were in.
func TestRemovedStepMovesItsLeadsToTheNextOne(t *testing.T) {
	e := newLiveEnv(t, fourSteps())
	v2 := fourSteps()
	v2.Steps = append(v2.Steps[:1:1], v2.Steps[2:]...) // b removed
	e.tell(1*day, 2, v2)
	e.run("lead-removed", 20*day)
	assert.Equal(t, []string{"a@0", "c@7d", "d@14d"}, e.sent())
}

// A step inserted after the lead's position is picked up; one inserted before it is never sent.
func TestInsertedStepsAfterThePositionArePickedUpAndNeverBefore(t *testing.T) {
	e := newLiveEnv(t, fourSteps())
	v2 := fourSteps()
	x := sequence.Step{ID: "x", Template: "t-x", Subject: "X", Wait: day}
	y := sequence.Step{ID: "y", Template: "t-y", Subject: "Y", Wait: 0}
	v2.Steps = []sequence.Step{y, v2.Steps[0], x, v2.Steps[1], v2.Steps[2], v2.Steps[3]}
	e.tell(12*time.Hour, 2, v2)
	e.run("lead-inserted", 25*day)
	assert.Equal(t, []string{"a@0", "x@1d", "b@4d", "c@11d", "d@18d"}, e.sent(), "x is picked up, y (before a) never sent")
}

// A removed segment lets its leads finish where they are, then follow the segment their interests
// map to now.
func TestRemovedSegmentFinishesThenFollowsItsNewSegment(t *testing.T) {
	general := sequence.Sequence{ID: "general-series", Steps: []sequence.Step{{ID: "welcome", Template: "g-1", Subject: "G", Wait: 0}}}
	e := newLiveEnv(t, fourSteps(), general)
	e.tell(1*day, 2, general) // analytics-series is gone
	st := e.run("lead-segment-gone", 25*day)
	assert.Equal(t, []string{"a@0", "b@3d", "c@10d", "d@17d", "welcome@17d"}, e.sent())
	assert.Equal(t, "general", st.Segment)
}

// A paused step holds its leads: nothing is skipped, nobody exits or goes into re-engagement
// while paused, and on resume the send goes out at the lead's slot in the ramp.
func TestPausedStepHoldsItsLeadsAndResumesAtTheirSlot(t *testing.T) {
	e := newLiveEnv(t, fourSteps())
	e.reengage = &sequence.Reengagement{After: 5 * day, Sequence: sequence.Sequence{ID: "reengagement",
		Steps: []sequence.Step{{ID: "still-there", Template: "r-1", Subject: "R", Wait: 0}}}}
	e.paused["analytics-series/b"] = true
	var held LeadState
	e.at(9*day, func() { held = queryState(t, e.env) })
	e.at(10*day, func() {
		delete(e.paused, "analytics-series/b")
		e.env.SignalWorkflow(SignalContent, ContentChange{Resume: true, NotBefore: liveStart.Add(10*day + 20*time.Minute)})
	})
	e.run("lead-paused", 16*day)
	require.NotNil(t, held.Held, "held at the paused step")
	assert.Equal(t, "b", held.Held.StepID)
	assert.Equal(t, StatusRunning, held.Status)
	assert.Empty(t, held.Mode, "no re-engagement while held, though quiet for longer than 5 days")
	for _, h := range held.History {
		assert.NotEqual(t, "skipped", h.Outcome)
	}
	assert.Equal(t, []string{"a@0", "b@14420m", "still-there@15d"}, e.sent(), "b goes out at its slot; the quiet spell counts from then")
	assert.True(t, e.sends[1].Released)
}

// Reaching the goal exits the lead at once, and a send under way (retrying through an SMTP
// outage) is cancelled: the email never goes out.
func TestGoalReachedWithASendPendingExitsAndCancelsIt(t *testing.T) {
	seq := fourSteps()
	seq.Goal = &sequence.Goal{Event: "demo_request"}
	e := newLiveEnv(t, seq)
	e.sendErr = func(in activities.SendInput) error {
		if in.StepID == "b" {
			return errors.New("451 try again later")
		}
		return nil
	}
	e.rescore = func(n int, in activities.RescoreInput) activities.RescoreResult {
		return activities.RescoreResult{Stage: lifecycle.Lead, GoalReached: in.Goal != nil}
	}
	e.at(3*day+10*time.Minute, func() { e.env.SignalWorkflow(SignalEngaged, Engaged{}) })
	st := e.run("lead-goal", 20*day)
	assert.Equal(t, []string{"a@0"}, e.sent())
	assert.Equal(t, StatusExited, st.Status)
	assert.Equal(t, "goal reached", st.ExitReason)
	last := e.rescores[len(e.rescores)-1]
	assert.Equal(t, "analytics-series", last.SequenceID)
	require.NotNil(t, last.Goal)
	assert.Equal(t, "demo_request", last.Goal.Event)
}

// Each lead gets the variant VariantFor chooses, with that variant's template and subject, and
// the same one in every run; a holdout lead's steps are recorded, never mailed, and do not count
// toward the frequency cap.
func TestVariantsAndHoldout(t *testing.T) {
	seq := fourSteps()
	seq.Steps = seq.Steps[:1]
	seq.Steps[0].Variants = []sequence.Variant{{ID: "plain", Template: "t-a", Subject: "Plain", Weight: 1},
		{ID: "bold", Template: "t-a2", Subject: "Bold!", Weight: 1}}
	seen := map[string]bool{}
	for i := range 8 {
		lead := fmt.Sprintf("lead-variant-%d", i)
		e := newLiveEnv(t, seq)
		e.run(lead, day)
		require.Len(t, e.sends, 1)
		want := seq.Steps[0].VariantFor(lead, seq.ID)
		assert.Equal(t, want.ID, e.sends[0].Variant)
		assert.Equal(t, want.Template, e.sends[0].Template)
		assert.Equal(t, want.Subject, e.sends[0].Subject)
		seen[want.ID] = true
	}
	assert.Len(t, seen, 2, "both variants are used")

	seq.Holdout = 0.5
	lead := ""
	for i := 0; lead == ""; i++ {
		if id := fmt.Sprintf("lead-holdout-%d", i); seq.HeldOut(id) {
			lead = id
		}
	}
	e := newLiveEnv(t, seq)
	st := e.run(lead, day)
	require.Len(t, e.sends, 1)
	assert.True(t, e.sends[0].Holdout)
	assert.Equal(t, "held_out", st.History[0].Outcome)
	assert.Empty(t, st.RecentSends, "a holdout step is not an email")
}

// Step conditions on band and score: a cold lead skips the step meant for warm leads.
func TestStepConditionsOnBandAndScore(t *testing.T) {
	seq := fourSteps()
	seq.Steps[1].When = sequence.Condition{BandIn: []string{"warm", "hot"}}
	lo := 30.0
	seq.Steps[2].When = sequence.Condition{Score: &sequence.Range{Min: &lo}}
	e := newLiveEnv(t, seq)
	e.rescore = func(n int, in activities.RescoreInput) activities.RescoreResult {
		return activities.RescoreResult{Stage: lifecycle.Lead, Band: "cold", Score: 35}
	}
	e.at(time.Hour, func() { e.env.SignalWorkflow(SignalEngaged, Engaged{}) })
	st := e.run("lead-cold", 20*day)
	assert.Equal(t, []string{"a@0", "c@10d", "d@17d"}, e.sent(), "b is for warm and hot leads; c for a score of 30 or more")
	assert.Equal(t, "skipped", st.History[1].Outcome)
}

// Steps an earlier enrollment finished are passed over wherever they stand, not walked through
// with their waits: a lead re-enrolled in a series of which it only lacks the first email gets
// that email and is done, at once.
func TestStepsFinishedEarlierArePassedOver(t *testing.T) {
	e := newLiveEnv(t, fourSteps())
	e.done = []string{"b", "c", "d"}
	var st LeadState
	e.at(time.Hour, func() { st = queryState(t, e.env) })
	e.run("lead-done-steps", 2*day)
	assert.Equal(t, []string{"a@0"}, e.sent())
	assert.Equal(t, StatusCompleted, st.Status, "finished an hour in, not 17 days later")
}
