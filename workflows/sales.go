package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/lifecycle"
)

// UpdateDecide is the Temporal update through which a rep answers a handoff: the caller gets a
// definite outcome.
const UpdateDecide = "decide"

// Decision is a rep's answer to a handoff.
type Decision struct {
	// Action is accept or reject.
	Action string `json:"action"`
	RepID  string `json:"rep_id"`
	// Reason of a rejection: not_a_fit, no_budget, not_ready, bad_data or other.
	Reason string `json:"reason,omitempty"`
	Note   string `json:"note,omitempty"`
}

// Decision outcomes.
const (
	OutcomeAccepted        = "accepted"
	OutcomeAlreadyAccepted = "already_accepted"
	OutcomeRejected        = "rejected"
	OutcomeNotYourLead     = "not_your_lead"
	OutcomeTooLate         = "too_late"
	OutcomeNotInSales      = "not_in_sales"
)

// RejectReasons are the reasons a rep may give; not_ready recycles the lead into nurture, the
// others disqualify it.
var RejectReasons = []string{"not_a_fit", "no_budget", "not_ready", "bad_data", "other"}

// DecisionResult is the answer to a Decision.
type DecisionResult struct {
	Outcome string `json:"outcome"`
	RepID   string `json:"rep_id,omitempty"`
}

// Sales phases.
const (
	PhaseAssigning = "assigning" // a rep is being assigned (the notice may already be out)
	PhaseAwaiting  = "awaiting"  // the SLA clock runs
	PhaseAccepted  = "accepted"
	PhaseRejected  = "rejected"
)

// SalesState is the handoff in progress (or the last one).
type SalesState struct {
	Seq            int       `json:"seq"`
	Assignment     int       `json:"assignment"`
	HandoffID      int64     `json:"handoff_id"`
	RepID          string    `json:"rep_id"`
	ManagerID      string    `json:"manager_id,omitempty"`
	Policy         string    `json:"policy"`
	Reason         string    `json:"reason"`
	HandRaise      string    `json:"hand_raise,omitempty"`
	Phase          string    `json:"phase"`
	HandedOffAt    time.Time `json:"handed_off_at"`
	DueAt          time.Time `json:"due_at"`
	RemindAt       time.Time `json:"remind_at,omitzero"`
	Reminded       bool      `json:"reminded,omitempty"`
	Lapses         int       `json:"lapses"`
	ReassignAfter  int       `json:"reassign_after"`
	PreviousReps   []string  `json:"previous_reps,omitempty"`
	RecycleSegment string    `json:"recycle_segment,omitempty"`
	// Pending is an answer accepted by the update handler and not yet stored.
	Pending     *Decision `json:"pending,omitempty"`
	RespondedAt time.Time `json:"responded_at,omitzero"`
}

// decide is the update handler: it settles the outcome at once, in workflow state, so that an
// accept racing the deadline yields exactly one outcome; the main loop stores it.
func (r *leadRun) decide(ctx workflow.Context, d Decision) (DecisionResult, error) {
	// The handoff notice goes out inside the Assign activity, so a quick rep can answer before the
	// workflow has recorded the assignment: wait for it.
	if err := workflow.Await(ctx, func() bool { return r.st.Sales == nil || r.st.Sales.Phase != PhaseAssigning }); err != nil {
		return DecisionResult{}, err
	}
	s := r.st.Sales
	if s == nil || (s.Phase != PhaseAwaiting && s.Phase != PhaseAccepted) {
		return DecisionResult{Outcome: OutcomeNotInSales}, nil
	}
	if d.RepID != s.RepID {
		if slices.Contains(s.PreviousReps, d.RepID) {
			return DecisionResult{Outcome: OutcomeTooLate, RepID: s.RepID}, nil
		}
		return DecisionResult{Outcome: OutcomeNotYourLead}, nil
	}
	if s.Phase == PhaseAccepted {
		if d.Action == "accept" {
			return DecisionResult{Outcome: OutcomeAlreadyAccepted, RepID: s.RepID}, nil
		}
		return DecisionResult{Outcome: OutcomeAlreadyAccepted, RepID: s.RepID}, nil
	}
	dd := d
	s.Pending = &dd
	s.RespondedAt = workflow.Now(ctx)
	r.cancelTimer()
	if d.Action == "accept" {
		s.Phase = PhaseAccepted
		return DecisionResult{Outcome: OutcomeAccepted, RepID: s.RepID}, nil
	}
	s.Phase = PhaseRejected
	return DecisionResult{Outcome: OutcomeRejected, RepID: s.RepID}, nil
}

func validateDecision(d Decision) error {
	switch d.Action {
	case "accept":
	case "reject":
		if !slices.Contains(RejectReasons, d.Reason) {
			return fmt.Errorf("reason must be one of %v", RejectReasons)
		}
	default:
		return errors.New("action must be accept or reject")
	}
	if d.RepID == "" {
		return errors.New("rep_id is required")
	}
	return nil
}

var salesOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 2 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    2 * time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    5 * time.Minute,
	},
}

// startHandoff assigns a rep and starts the SLA clock. Sales owns the lead from now: the marketing
// series has already stopped (MQL is an exit stage).
func (r *leadRun) startHandoff(reason, handRaise string) error {
	seq := 1
	if r.st.Sales != nil {
		seq = r.st.Sales.Seq + 1
	}
	r.st.Sales = &SalesState{Seq: seq, Assignment: 1, Reason: reason, HandRaise: handRaise, HandedOffAt: workflow.Now(r.ctx),
		Phase: PhaseAssigning}
	return r.assign("")
}

func (r *leadRun) assign(current string) error {
	s := r.st.Sales
	ctx := workflow.WithActivityOptions(r.ctx, salesOptions)
	var a *activities.Sales
	var as activities.Assignment
	err := workflow.ExecuteActivity(ctx, a.Assign, activities.AssignInput{LeadID: r.st.LeadID, Seq: s.Seq, Assignment: s.Assignment,
		Reason: s.Reason, HandRaiseEvent: s.HandRaise, At: workflow.Now(r.ctx), Current: current}).Get(ctx, &as)
	if err != nil {
		return err
	}
	s.HandoffID, s.RepID, s.ManagerID, s.Policy = as.HandoffID, as.RepID, as.ManagerID, as.Policy
	s.DueAt, s.RemindAt, s.Reminded, s.Lapses = as.DueAt, as.RemindAt, false, 0
	s.ReassignAfter, s.RecycleSegment, s.Phase = as.ReassignAfter, as.RecycleSegment, PhaseAwaiting
	return nil
}

// salesStep waits for the rep's answer, the reminder time or the deadline, and acts on whichever
// comes first.
func (r *leadRun) salesStep() error {
	s := r.st.Sales
	if s.Pending != nil {
		return r.storeDecision()
	}
	target := s.DueAt
	reminding := !s.RemindAt.IsZero() && !s.Reminded && s.RemindAt.Before(s.DueAt)
	if reminding {
		target = s.RemindAt
	}
	if r.waitUntil(target) {
		return nil // a signal or the answer came first
	}
	if s.Pending != nil || s.Phase != PhaseAwaiting {
		return nil
	}
	ctx := workflow.WithActivityOptions(r.ctx, salesOptions)
	var a *activities.Sales
	if reminding {
		s.Reminded = true
		return workflow.ExecuteActivity(ctx, a.Remind, s.HandoffID).Get(ctx, nil)
	}
	// The deadline passed without an answer: escalate, once for this lapse.
	s.Lapses++
	var res activities.LapseResult
	if err := workflow.ExecuteActivity(ctx, a.Lapse, activities.LapseInput{HandoffID: s.HandoffID, Lapse: s.Lapses,
		At: workflow.Now(r.ctx)}).Get(ctx, &res); err != nil {
		return err
	}
	if s.Pending != nil {
		return nil // the rep answered while the escalation went out: late, but answered
	}
	if s.Lapses >= s.ReassignAfter {
		s.PreviousReps = append(s.PreviousReps, s.RepID)
		s.Assignment++
		s.Phase = PhaseAssigning
		return r.assign(s.RepID)
	}
	s.DueAt, s.Reminded = res.NextDueAt, true
	return nil
}

// storeDecision stores the rep's answer and moves the lead on: SAL, or recycled into nurture, or
// disqualified.
func (r *leadRun) storeDecision() error {
	s := r.st.Sales
	d := *s.Pending
	ctx := workflow.WithActivityOptions(r.ctx, salesOptions)
	var a *activities.Sales
	var res activities.RespondResult
	if err := workflow.ExecuteActivity(ctx, a.Respond, activities.RespondInput{HandoffID: s.HandoffID, LeadID: r.st.LeadID,
		RepID: d.RepID, Action: d.Action, Reason: d.Reason, Note: d.Note, At: s.RespondedAt}).Get(ctx, &res); err != nil {
		return err
	}
	s.Pending = nil
	r.st.Stage = res.Stage
	switch res.Stage {
	case lifecycle.Recycled:
		// Back to nurture; a later handoff starts a new clock.
		r.st.Handoff = nil
		segment := res.RecycleSegment
		if segment == "" {
			segment = r.st.Segment
		}
		return r.plan(segment)
	case lifecycle.Disqualified:
		r.st.Status, r.st.ExitReason = StatusExited, "disqualified: "+d.Reason
	}
	return nil
}
