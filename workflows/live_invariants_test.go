package workflows

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/sequence"
)

// The tests here are the rules of live sequences that TestInvariants' scripts reach too rarely,
// or that a script cannot time: each is a marketer-visible promise of the README's live-edit
// section, on one lead.

// A resume that reaches the lead while its paused send is still being answered (the held send is
// stored, the resume reads it and signals, and only then does the activity's result arrive)
// still releases the lead: its email goes out at its slot, it is not held for ever.
func TestResumeWhileThePausedSendIsAnsweredReleasesTheLead(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(liveStart)
	env.RegisterWorkflow(Lead)
	var leads *activities.Leads
	var email *activities.Email
	env.RegisterActivity(leads.Plan)
	env.RegisterActivity(leads.Rescore)
	env.RegisterActivity(email.SendStep)
	seq := fourSteps()
	env.OnActivity(leads.Plan, mock.Anything, mock.Anything).Return(activities.Plan{Segment: "analytics", Stage: lifecycle.Lead,
		Sequence: seq, Done: []string{}, Version: 1}, nil)
	env.OnActivity(leads.Rescore, mock.Anything, mock.Anything).Return(activities.RescoreResult{Stage: lifecycle.Lead}, nil)
	var mu sync.Mutex
	paused := true
	resumed := make(chan struct{})
	var sent []string
	var sentAt []time.Duration
	env.OnActivity(email.SendStep, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
			mu.Lock()
			p := paused && in.StepID == "b"
			mu.Unlock()
			if p {
				// The held send is stored; the resume reads it and signals before this answer
				// reaches the workflow. (While an activity runs, the test environment fires a due
				// callback once as much wall time has passed: this send waits for it, a second.)
				select {
				case <-resumed:
				case <-time.After(10 * time.Second):
				}
				return activities.SendResult{Status: activities.StatusPaused}, nil
			}
			mu.Lock()
			defer mu.Unlock()
			sent = append(sent, in.StepID)
			sentAt = append(sentAt, env.Now().Sub(liveStart))
			return activities.SendResult{Status: activities.StatusSent, SendID: "send-" + in.StepID}, nil
		})
	slot := liveStart.Add(3*day + 30*time.Minute)
	// b falls due at 3d; while its send runs (it waits for the resume), the resume comes.
	env.RegisterDelayedCallback(func() {
		mu.Lock()
		paused = false
		mu.Unlock()
		env.SignalWorkflow(SignalContent, ContentChange{Resume: true, NotBefore: slot})
		close(resumed)
	}, 3*day+time.Second)
	var st LeadState
	env.RegisterDelayedCallback(func() {
		st = queryState(t, env)
		env.CancelWorkflow()
	}, 20*day)
	env.ExecuteWorkflow(Lead, LeadInput{LeadID: "lead-resume-race"})
	requireCancelled(t, env)
	assert.Nil(t, st.Held, "released by the resume")
	assert.Equal(t, []string{"a", "b", "c", "d"}, sent)
	if len(sentAt) > 1 {
		assert.Equal(t, 3*day+30*time.Minute, sentAt[1], "b at its slot")
	}
}

// A lead that goes quiet keeps its nurture position while it gets the re-engagement series; a
// version of its nurture sequence published meanwhile is the one it continues with when it engages
// again: a changed subject is the next send's, as for a lead that was waiting in the sequence.
func TestLeadBackFromReengagementFollowsTheVersionPublishedMeanwhile(t *testing.T) {
	e := newLiveEnv(t, fourSteps())
	e.reengage = &sequence.Reengagement{After: 8 * day, Sequence: sequence.Sequence{ID: "reengagement",
		Steps: []sequence.Step{{ID: "still-there", Template: "r-1", Subject: "R", Wait: 0},
			{ID: "last-call", Template: "r-2", Subject: "R2", Wait: 10 * day}}}}
	v2 := fourSteps()
	v2.Steps[2].Subject = "C, new"
	e.tell(9*day, 2, v2) // re-engaging since day 8, its nurture saved before c
	var engagedAt time.Time
	e.at(10*day, func() {
		engagedAt = e.env.Now()
		e.env.SignalWorkflow(SignalEngaged, Engaged{Events: 1})
	})
	e.rescore = func(n int, in activities.RescoreInput) activities.RescoreResult {
		return activities.RescoreResult{Stage: lifecycle.Lead, LastEngagement: engagedAt}
	}
	e.run("lead-back-from-reengagement", 17*day+12*time.Hour)
	assert.Equal(t, []string{"a@0", "b@3d", "still-there@8d", "c@17d"}, e.sent(), "back at c, whose wait counts from the engagement")
	for _, s := range e.sends {
		if s.StepID == "c" {
			assert.Equal(t, "C, new", s.Subject, "the version published while the lead was re-engaging")
		}
	}
}

// A capture for another segment that arrives while the lead gets the re-engagement series after
// its nurture ended: the engagement returns the lead to its (finished) nurture, and the new
// segment's series starts at once, not at the next signal or when the lead goes quiet again.
func TestCaptureDuringReengagementOfAFinishedNurtureStartsTheNewSegment(t *testing.T) {
	one := fourSteps()
	one.Steps = one.Steps[:1]
	general := sequence.Sequence{ID: "general-series", Steps: []sequence.Step{{ID: "welcome", Template: "g-1", Subject: "G", Wait: 0}}}
	e := newLiveEnv(t, one, general)
	e.reengage = &sequence.Reengagement{After: 5 * day, Sequence: sequence.Sequence{ID: "reengagement",
		Steps: []sequence.Step{{ID: "still-there", Template: "r-1", Subject: "R", Wait: 0},
			{ID: "last-call", Template: "r-2", Subject: "R2", Wait: 10 * day}}}}
	var capturedAt time.Time
	e.at(6*day, func() {
		capturedAt = e.env.Now()
		e.env.SignalWorkflow(SignalCapture, Capture{Segment: "general"})
	})
	e.rescore = func(n int, in activities.RescoreInput) activities.RescoreResult {
		return activities.RescoreResult{Stage: lifecycle.Lead, LastEngagement: capturedAt}
	}
	e.run("lead-capture-while-reengaging", 9*day)
	assert.Equal(t, []string{"a@0", "still-there@5d", "welcome@6d"}, e.sent())
}
