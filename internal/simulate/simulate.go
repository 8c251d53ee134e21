// Package simulate runs the real lead workflow for one imaginary lead under Temporal's
// time-skipping test environment, with activities that touch nothing, and reports when each email
// would go out. Marketers use it (tend sequences simulate) to see a sequence's calendar — waits,
// send windows, quiet hours, the frequency cap, behaviour branches, re-engagement and sunset —
// before a real lead meets it. Because it is the workflow itself, the answer cannot drift from
// what production does.
package simulate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/stretchr/testify/mock"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/sequence"
	"github.com/tendhq/tend/workflows"
)

// Lead describes the imaginary lead and how it behaves.
type Lead struct {
	// Segment is the segment the lead is captured into.
	Segment string
	// TimeZone is the lead's own zone; empty uses the send window's.
	TimeZone string
	// Start is when the lead is captured.
	Start time.Time
	// Clicks lists step ids whose email the lead clicks, ClickDelay after it arrives. Each click
	// is engagement: it resets the inactivity clock and feeds behaviour branches.
	Clicks     []string
	ClickDelay time.Duration
	// For is how long to follow the lead.
	For time.Duration
}

// Result is what happened to the lead.
type Result struct {
	Segment string
	// Records are the workflow's step records (sent, skipped, …) in order, with their times.
	Records []workflows.StepRecord
	// Status, Mode and ExitReason are the lead's state at the end.
	Status, Mode, ExitReason string
}

// ErrNoSegment is returned for a segment the catalog does not have.
var ErrNoSegment = errors.New("no such segment")

// Run follows the lead through the catalog's sequences.
func Run(cat *sequence.Catalog, lead Lead) (Result, error) {
	if _, ok := cat.Segment(lead.Segment); !ok {
		return Result{}, fmt.Errorf("%w %q", ErrNoSegment, lead.Segment)
	}
	if lead.TimeZone != "" {
		if _, err := time.LoadLocation(lead.TimeZone); err != nil {
			return Result{}, fmt.Errorf("time zone %q: %w", lead.TimeZone, err)
		}
	}
	if lead.For <= 0 {
		return Result{}, errors.New("the simulated period must be positive")
	}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.Lead)
	env.RegisterActivity(&activities.Leads{})
	env.RegisterActivity(&activities.Email{})
	env.SetStartTime(lead.Start)

	var leads *activities.Leads
	var email *activities.Email
	var clicked []string
	var lastClick time.Time
	env.OnActivity(leads.Plan, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PlanInput) (activities.Plan, error) {
			seg := lead.Segment
			if in.Segment != "" {
				seg = in.Segment
			}
			return activities.PlanFor(cat, seg, lifecycle.Lead, lead.TimeZone), nil
		})
	env.OnActivity(leads.Rescore, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.RescoreInput) (activities.RescoreResult, error) {
			return activities.RescoreResult{Stage: lifecycle.Lead, ClickedSends: slices.Clone(clicked), LastEngagement: lastClick}, nil
		})
	env.OnActivity(email.SendStep, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SendInput) (activities.SendResult, error) {
			sendID := in.SequenceID + "/" + in.StepID
			if slices.Contains(lead.Clicks, in.StepID) {
				env.RegisterDelayedCallback(func() {
					clicked = append(clicked, sendID)
					lastClick = env.Now()
					env.SignalWorkflow(workflows.SignalEngaged, workflows.Engaged{Events: 1})
				}, lead.ClickDelay)
			}
			return activities.SendResult{Status: activities.StatusSent, SendID: sendID, MessageID: "<" + sendID + "@simulate>"}, nil
		})

	var st workflows.LeadState
	var queryErr error
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryState)
		if err == nil {
			err = v.Get(&st)
		}
		queryErr = err
		env.CancelWorkflow()
	}, lead.For)
	env.ExecuteWorkflow(workflows.Lead, workflows.LeadInput{LeadID: "00000000-0000-4000-8000-000000000000"})
	if queryErr != nil {
		return Result{}, fmt.Errorf("read the workflow's state: %w", queryErr)
	}
	if err := env.GetWorkflowError(); err != nil {
		var canceled *temporal.CanceledError
		if !errors.As(err, &canceled) {
			return Result{}, fmt.Errorf("the workflow failed: %w", err)
		}
	}
	if st.LeadID == "" {
		return Result{}, errors.New("the workflow ended before the simulated period did")
	}
	return Result{Segment: st.Segment, Records: st.History, Status: st.Status, Mode: st.Mode, ExitReason: st.ExitReason}, nil
}
