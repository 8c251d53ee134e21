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
	// Note is the rep's free text in runs before promisesChange; it no longer travels in the
	// workflow's history: the server stores it and passes NoteID.
	Note   string `json:"note,omitempty"`
	NoteID string `json:"note_id,omitempty"`
	// HandoffID is the handoff the answer is about (the one an accept/reject link was made for);
	// 0 answers the current one.
	HandoffID int64 `json:"handoff_id,omitempty"`
}

// Decision outcomes.
const (
	OutcomeAccepted        = "accepted"
	OutcomeAlreadyAccepted = "already_accepted"
	OutcomeRejected        = "rejected"
	OutcomeNotYourLead     = "not_your_lead"
	OutcomeTooLate         = "too_late"
	OutcomeNotInSales      = "not_in_sales"
	// OutcomeStaleLink: the answer names an earlier handoff of the lead than the current one.
	OutcomeStaleLink = "stale_link"
)

// ErrTypeAnswerNotStored is the error type of a decide update whose answer could not be stored:
// nothing changed, and the rep may try again.
const ErrTypeAnswerNotStored = "AnswerNotStored"

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
	// PhaseClosed: the deal was lost after acceptance; the lead went back to nurture.
	PhaseClosed = "closed"
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
	// Answer is the stored answer's effect, for the main loop to act on (recycle, disqualify).
	Answer *activities.RespondResult `json:"answer,omitempty"`
	// AssignError is why the last assignment failed; RetryAt when it is tried again.
	AssignError string    `json:"assign_error,omitempty"`
	RetryAt     time.Time `json:"retry_at,omitzero"`
	Failures    int       `json:"failures,omitempty"`
	// OwedLapse: the answer came after the deadline, before the lapse was handled.
	OwedLapse bool `json:"owed_lapse,omitempty"`
	// Escalating: the lapse of the current deadline is being escalated.
	Escalating bool `json:"escalating,omitempty"`
	// RejectReason is the reason of the stored rejection.
	RejectReason string `json:"reject_reason,omitempty"`
	// Current is the rep being replaced by an assignment to be retried.
	Current string `json:"current,omitempty"`
}

// decide is the update handler: it settles the outcome at once, in workflow state, so that an
// accept racing the deadline yields exactly one outcome; the main loop stores it.
func (r *leadRun) decide(ctx workflow.Context, d Decision) (DecisionResult, error) {
	// The handoff notice goes out inside the Assign activity, so a quick rep can answer before the
	// workflow has recorded the assignment: wait for it.
	if err := workflow.Await(ctx, func() bool {
		s := r.st.Sales
		return s == nil || s.Phase != PhaseAssigning || (r.fixed() && s.AssignError != "")
	}); err != nil {
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
	if r.fixed() && d.HandoffID != 0 && d.HandoffID != s.HandoffID {
		// A link from an earlier handoff's email: it speaks for that handoff only.
		return DecisionResult{Outcome: OutcomeStaleLink, RepID: s.RepID}, nil
	}
	if s.Phase == PhaseAccepted {
		return DecisionResult{Outcome: OutcomeAlreadyAccepted, RepID: s.RepID}, nil
	}
	if r.fixed() && s.Phase == PhaseAwaiting && !s.Escalating && !workflow.Now(ctx).Before(s.DueAt) {
		// The deadline passed before this answer came (the worker was busy or down when it fell
		// due): the answer is taken, and the lapse is still escalated, once.
		s.OwedLapse = true
	}
	dd := d
	s.Pending = &dd
	s.RespondedAt = workflow.Now(ctx)
	r.stopTimer()
	outcome := DecisionResult{Outcome: OutcomeRejected, RepID: s.RepID}
	s.Phase = PhaseRejected
	if d.Action == "accept" {
		s.Phase = PhaseAccepted
		outcome.Outcome = OutcomeAccepted
	}
	if !r.fixed() {
		return outcome, nil
	}
	// Store the answer before the rep is told: the lead's new stage is visible when the answer
	// page shows. If it cannot be stored, nothing changed and the rep is asked to try again.
	res, err := r.respond(ctx, s, dd)
	if err != nil {
		s.Pending, s.RespondedAt, s.Phase = nil, time.Time{}, PhaseAwaiting
		r.noteError("store answer", err)
		return DecisionResult{}, temporal.NewApplicationError("the answer could not be recorded; try again", ErrTypeAnswerNotStored)
	}
	s.Pending, s.Answer, s.RejectReason = nil, &res, d.Reason
	return outcome, nil
}

// respondOptions bound the storing of an answer by the time a rep waits for the answer page.
var respondOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    5 * time.Second,
	ScheduleToCloseTimeout: 12 * time.Second,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 500 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 2 * time.Second},
}

func (r *leadRun) respond(ctx workflow.Context, s *SalesState, d Decision) (activities.RespondResult, error) {
	var a *activities.Sales
	var res activities.RespondResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, respondOptions), a.Respond, activities.RespondInput{
		HandoffID: s.HandoffID, LeadID: r.st.LeadID, RepID: d.RepID, Action: d.Action, Reason: d.Reason, Note: d.Note, NoteID: d.NoteID,
		At: s.RespondedAt}).Get(ctx, &res)
	return res, err
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

// boundedSalesOptions give every sales activity a deadline (promisesChange): past it the failure is
// recorded and the step is tried again later while the workflow handles signals.
var boundedSalesOptions = func() workflow.ActivityOptions {
	o := salesOptions
	o.ScheduleToCloseTimeout = 15 * time.Minute
	return o
}()

func (r *leadRun) salesCtx() workflow.Context {
	if r.fixed() {
		return workflow.WithActivityOptions(r.ctx, boundedSalesOptions)
	}
	return workflow.WithActivityOptions(r.ctx, salesOptions)
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
	ctx := r.salesCtx()
	var a *activities.Sales
	var as activities.Assignment
	err := workflow.ExecuteActivity(ctx, a.Assign, activities.AssignInput{LeadID: r.st.LeadID, Seq: s.Seq, Assignment: s.Assignment,
		Reason: s.Reason, HandRaiseEvent: s.HandRaise, At: workflow.Now(r.ctx), Current: current}).Get(ctx, &as)
	if err != nil {
		if !r.fixed() {
			return err
		}
		if r.ctx.Err() != nil {
			return nil
		}
		if errType(err) == activities.ErrTypeUnknownLead {
			r.st.Sales = nil
			r.exit("lead deleted")
			return nil
		}
		// An unknown rep, a notice that does not render, the store down past the deadline: the
		// lead stays hand-off ready and the assignment is tried again until it reaches a rep.
		r.noteError("assign", err)
		s.AssignError, s.Current = err.Error(), current
		s.Failures++
		s.RetryAt = workflow.Now(r.ctx).Add(retryBackoff(s.Failures))
		return nil
	}
	s.AssignError, s.Failures, s.RetryAt, s.Current = "", 0, time.Time{}, ""
	s.HandoffID, s.RepID, s.ManagerID, s.Policy = as.HandoffID, as.RepID, as.ManagerID, as.Policy
	s.DueAt, s.RemindAt, s.Reminded, s.Lapses = as.DueAt, as.RemindAt, false, 0
	s.ReassignAfter, s.RecycleSegment, s.Phase = as.ReassignAfter, as.RecycleSegment, PhaseAwaiting
	return nil
}

// salesStep waits for the rep's answer, the reminder time or the deadline, and acts on whichever
// comes first.
func (r *leadRun) salesStep() error {
	s := r.st.Sales
	if r.fixed() && s.OwedLapse && s.Pending == nil {
		return r.owedLapse()
	}
	if r.fixed() {
		switch {
		case s.Answer != nil:
			return r.applyAnswer()
		case s.Pending != nil:
			// The update handler is storing the answer.
			return workflow.Await(r.ctx, func() bool { return s.Pending == nil })
		case s.Phase == PhaseAssigning:
			if r.waitUntil(s.RetryAt) {
				return nil
			}
			return r.assign(s.Current)
		}
	} else if s.Pending != nil {
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
	ctx := r.salesCtx()
	var a *activities.Sales
	if reminding {
		s.Reminded = true
		err := workflow.ExecuteActivity(ctx, a.Remind, s.HandoffID).Get(ctx, nil)
		if err != nil && r.fixed() {
			r.noteError("remind", err) // a missed reminder is not worth a second one later
			return nil
		}
		return err
	}
	// The deadline passed without an answer: escalate, once for this lapse.
	s.Lapses++
	var res activities.LapseResult
	s.Escalating = true
	err := workflow.ExecuteActivity(ctx, a.Lapse, activities.LapseInput{HandoffID: s.HandoffID, Lapse: s.Lapses,
		At: workflow.Now(r.ctx)}).Get(ctx, &res)
	s.Escalating = false
	if err != nil {
		// The escalation is tried again later under the same lapse number: the notices are keyed
		// by it, so the manager still gets exactly one.
		if fail, retry := r.carryOn("escalate", err); !retry {
			return fail
		}
		s.Lapses--
		s.Failures++
		if s.Phase == PhaseAwaiting && s.Pending == nil {
			s.DueAt = workflow.Now(r.ctx).Add(retryBackoff(s.Failures))
		}
		return nil
	}
	s.Failures = 0
	if s.Pending != nil || (r.fixed() && s.Phase != PhaseAwaiting) {
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

// owedLapse escalates the lapse of a deadline that passed before the rep's (late) answer was
// handled: the manager is told once; the rep, who answered, gets no copy.
func (r *leadRun) owedLapse() error {
	s := r.st.Sales
	ctx := r.salesCtx()
	var a *activities.Sales
	err := workflow.ExecuteActivity(ctx, a.Lapse, activities.LapseInput{HandoffID: s.HandoffID, Lapse: s.Lapses + 1,
		At: workflow.Now(r.ctx), Answered: true}).Get(ctx, nil)
	if err != nil {
		if _, retry := r.carryOn("escalate a late answer's lapse", err); !retry {
			return nil
		}
		s.Failures++
		r.waitUntil(workflow.Now(r.ctx).Add(retryBackoff(s.Failures))) // then try again, signals handled meanwhile
		return nil
	}
	s.Lapses++
	s.OwedLapse, s.Failures = false, 0
	return nil
}

// applyAnswer moves the lead on after its answer was stored: SAL stays with sales, recycled goes
// back to nurture, disqualified stops.
func (r *leadRun) applyAnswer() error {
	s := r.st.Sales
	res := *s.Answer
	s.Answer = nil
	return r.moveOn(res, s.RejectReason)
}

// moveOn takes the stage a stored answer gave the lead: recycled goes back to nurture (a later
// handoff starts a new clock), disqualified stops, SAL stays with sales.
func (r *leadRun) moveOn(res activities.RespondResult, rejectReason string) error {
	r.st.Stage = res.Stage
	switch res.Stage {
	case lifecycle.Recycled:
		return r.recycle(res.RecycleSegment)
	case lifecycle.Disqualified:
		r.st.Status, r.st.ExitReason = StatusExited, "disqualified: "+rejectReason
	}
	return nil
}

// recycle sends the lead back to nurture (a rep's "not ready", a lost deal): the segment's
// series, and a later handoff only once the lead qualifies anew.
func (r *leadRun) recycle(segment string) error {
	r.st.Handoff = nil
	if segment == "" {
		segment = r.st.Segment
	}
	return r.plan(segment)
}

// storeDecision stores the rep's answer and moves the lead on: SAL, or recycled into nurture, or
// disqualified.
func (r *leadRun) storeDecision() error {
	s := r.st.Sales
	d := *s.Pending
	ctx := r.salesCtx()
	var a *activities.Sales
	var res activities.RespondResult
	if err := workflow.ExecuteActivity(ctx, a.Respond, activities.RespondInput{HandoffID: s.HandoffID, LeadID: r.st.LeadID,
		RepID: d.RepID, Action: d.Action, Reason: d.Reason, Note: d.Note, At: s.RespondedAt}).Get(ctx, &res); err != nil {
		return err
	}
	s.Pending = nil
	return r.moveOn(res, d.Reason)
}
