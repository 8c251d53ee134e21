package workflows

import (
	"errors"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/sequence"
)

// LeadInput starts (or continues) a lead's workflow. State is set only on continue-as-new.
type LeadInput struct {
	LeadID string     `json:"lead_id"`
	State  *LeadState `json:"state,omitempty"`
}

// Capture is the payload of SignalCapture: what the capture changed, never personal data.
type Capture struct {
	Segment  string          `json:"segment,omitempty"`
	Stage    lifecycle.Stage `json:"stage,omitempty"`
	TimeZone string          `json:"time_zone,omitempty"`
}

// Engaged is the payload of SignalEngaged.
type Engaged struct {
	Events int `json:"events,omitempty"`
}

// HandoffRecord is the handoff event: the lead became hand-off ready (MQL threshold or a
// hand-raise) and marketing hands it to sales.
type HandoffRecord struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	Score  float64   `json:"score"`
}

// Lead workflow statuses.
const (
	StatusRunning   = "running"   // working through a sequence
	StatusCompleted = "completed" // the sequence has run to its end; waiting for new captures
	StatusExited    = "exited"    // an exit rule stopped the sequence
)

// StepRecord is what happened to one step.
type StepRecord struct {
	SequenceID string `json:"sequence_id"`
	StepID     string `json:"step_id"`
	// Outcome is sent, already_sent, skipped, suppressed, unsubscribed, bounced, rejected or failed.
	Outcome string    `json:"outcome"`
	At      time.Time `json:"at"`
	Detail  string    `json:"detail,omitempty"`
	SendID  string    `json:"send_id,omitempty"`
}

// LeadState is the workflow's small, PII-free state, returned by QueryState and carried across
// continue-as-new.
type LeadState struct {
	LeadID   string          `json:"lead_id"`
	Segment  string          `json:"segment"`
	Stage    lifecycle.Stage `json:"stage"`
	TimeZone string          `json:"time_zone"`
	Status   string          `json:"status"`
	// Sequence is the plan being run (the version of the sequence the lead was enrolled with).
	Sequence *sequence.Sequence `json:"sequence,omitempty"`
	// NextStep indexes Sequence.Steps.
	NextStep int `json:"next_step"`
	// StepBase is when the wait before NextStep started counting.
	StepBase time.Time `json:"step_base"`
	// NextSendAt is when NextStep is due, inside the send window.
	NextSendAt time.Time `json:"next_send_at,omitempty"`
	// PendingSegment is a different segment asked for by a later capture; its series starts when
	// the current one ends.
	PendingSegment string       `json:"pending_segment,omitempty"`
	ExitReason     string       `json:"exit_reason,omitempty"`
	Captures       int          `json:"captures"`
	History        []StepRecord `json:"history"`
	// Runs counts continue-as-new generations.
	Runs int `json:"runs"`
	// Score and Band are the lead's score as of the last rescore.
	Score float64 `json:"score"`
	Band  string  `json:"band,omitempty"`
	// Handoff is set once the lead became hand-off ready.
	Handoff *HandoffRecord `json:"handoff,omitempty"`
	// ClickedSends are the sends the lead clicked (human clicks), for behaviour branches.
	ClickedSends []string `json:"clicked_sends,omitempty"`
	// LastEventID is the newest event the workflow has scored.
	LastEventID int64 `json:"last_event_id,omitempty"`
	// Rescores counts rescore activities (one per coalesced burst of events).
	Rescores int `json:"rescores"`
	// SalesEnabled: hand-off ready leads go to a rep with an SLA clock (a team is configured).
	SalesEnabled bool `json:"sales_enabled,omitempty"`
	// Sales is the handoff to sales in progress, or the last one.
	Sales *SalesState `json:"sales,omitempty"`
	// The catalog's policies as of the last plan.
	FrequencyCap *sequence.FrequencyCap `json:"frequency_cap,omitempty"`
	QuietHours   *sequence.QuietHours   `json:"quiet_hours,omitempty"`
	Reengagement *sequence.Reengagement `json:"reengagement,omitempty"`
	// RecentSends are the times of the last marketing emails, for the frequency cap.
	RecentSends []time.Time `json:"recent_sends,omitempty"`
	// EnrolledAt is when the lead's first series was planned; LastEngagedAt its latest engagement.
	EnrolledAt    time.Time `json:"enrolled_at"`
	LastEngagedAt time.Time `json:"last_engaged_at,omitzero"`
	// Mode is "", reengaging or sunset; Saved is the nurture position a re-engagement returns to.
	Mode        string        `json:"mode,omitempty"`
	Saved       *SavedNurture `json:"saved,omitempty"`
	ReengagedAt time.Time     `json:"reengaged_at,omitzero"`
}

// historyLimit bounds the step history carried in state; the sends table keeps the full record.
const historyLimit = 50

var planOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
	},
}

// localOptions run Plan and Rescore — short reads and writes of Postgres — as local activities:
// in the worker, inside the workflow task, recorded as one marker event instead of a trip through
// the server's task queues (six events and two workflow tasks). They retry like planOptions,
// without end, so a database outage delays a lead and never fails it.
var localOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy:         planOptions.RetryPolicy,
}

// localActivitiesChange marks the change from regular to local activities for Plan and Rescore.
// Runs that started before it keep scheduling regular activities, so their histories replay.
const localActivitiesChange = "local-plan-rescore"

// runLocal executes a Leads activity as a local activity, or as a regular one in a run whose
// history predates localActivitiesChange.
func (r *leadRun) runLocal(activity, input any) workflow.Future {
	if workflow.GetVersion(r.ctx, localActivitiesChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return workflow.ExecuteActivity(workflow.WithActivityOptions(r.ctx, planOptions), activity, input)
	}
	return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(r.ctx, localOptions), activity, input)
}

// sendOptions: temporary SMTP failures (4xx, connection trouble) retry with backoff for up to two
// days; permanent ones are non-retryable errors from the activity.
var sendOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    2 * time.Minute,
	ScheduleToCloseTimeout: 48 * time.Hour,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    5 * time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Minute,
	},
}

// Lead is the entity workflow of one lead: it runs the nurture sequence of the lead's segment,
// step by step, each after its wait and inside the send window, and then stays open for later
// captures. It continues as new when Temporal suggests it, after draining its signals.
func Lead(ctx workflow.Context, in LeadInput) error {
	r := &leadRun{ctx: ctx, captures: workflow.GetSignalChannel(ctx, SignalCapture),
		engaged: workflow.GetSignalChannel(ctx, SignalEngaged), cancelTimer: func() {}}
	if in.State != nil {
		r.st = *in.State
	} else {
		r.st = LeadState{LeadID: in.LeadID, Status: StatusRunning}
	}
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (LeadState, error) { return r.st, nil }); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateDecide, r.decide,
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d Decision) error { return validateDecision(d) }}); err != nil {
		return err
	}
	r.drain()
	if r.st.Sequence == nil && r.st.Status == StatusRunning {
		if err := r.plan(""); err != nil {
			return err
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			r.cancelTimer()
			return err // the lead's workflow was cancelled (e.g. the lead was erased)
		}
		if r.rescore {
			if err := r.doRescore(); err != nil {
				return err
			}
			continue
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			r.drain()
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return err
			}
			r.cancelTimer()
			r.st.Runs++
			st := r.st
			return workflow.NewContinueAsNewError(ctx, Lead, LeadInput{LeadID: st.LeadID, State: &st})
		}
		if r.st.Sales != nil && (r.st.Sales.Phase == PhaseAwaiting || r.st.Sales.Pending != nil) {
			if err := r.salesStep(); err != nil {
				return err
			}
			continue
		}
		if r.st.Status != StatusRunning {
			// Nothing to send: wait for the next capture, which may start a new series, or for the
			// lead to go quiet.
			if at := r.inactiveAt(); !at.IsZero() {
				if !r.waitUntil(at) {
					r.startReengagement()
				}
			} else {
				r.receive(ctx)
			}
			if err := r.maybeStartPending(); err != nil {
				return err
			}
			continue
		}
		if r.exitIfReached() {
			continue
		}
		step := r.st.Sequence.Steps[r.st.NextStep]
		wait := step.Wait
		if step.WaitIfClicked != nil && r.previousClicked() {
			wait = *step.WaitIfClicked
		}
		due := r.st.StepBase.Add(wait)
		r.st.NextSendAt = r.sendTime(due)
		if at := r.inactiveAt(); !at.IsZero() && at.Before(r.st.NextSendAt) {
			if !r.waitUntil(at) {
				r.startReengagement()
			}
			continue
		}
		if r.waitUntil(r.st.NextSendAt) {
			continue // a capture arrived: re-check exits and the send time
		}
		if err := r.runStep(step); err != nil {
			return err
		}
	}
}

type leadRun struct {
	ctx      workflow.Context
	st       LeadState
	captures workflow.ReceiveChannel
	engaged  workflow.ReceiveChannel
	// rescore is set when engagement arrived and the score must be computed again.
	rescore bool

	timerAt     time.Time
	timer       workflow.Future
	cancelTimer func()
}

func (r *leadRun) apply(c Capture) {
	r.st.Captures++
	// A capture may carry a behaviour event (a download, a demo registration) that changes the score.
	r.rescore = true
	if c.Stage != "" {
		r.st.Stage = c.Stage
	}
	if c.TimeZone != "" {
		r.st.TimeZone = c.TimeZone
	}
	if c.Segment != "" && r.st.Segment != "" && c.Segment != r.st.Segment {
		r.st.PendingSegment = c.Segment
	} else if c.Segment == r.st.Segment {
		r.st.PendingSegment = ""
	}
}

// drain applies every capture and engagement signal already delivered, without blocking.
func (r *leadRun) drain() {
	for {
		var c Capture
		if !r.captures.ReceiveAsync(&c) {
			break
		}
		r.apply(c)
	}
	for {
		var e Engaged
		if !r.engaged.ReceiveAsync(&e) {
			break
		}
		r.rescore = true
	}
}

// onSignals adds both signal channels to a selector; whichever fires, everything pending is drained.
func (r *leadRun) onSignals(sel workflow.Selector) {
	sel.AddReceive(r.captures, func(c workflow.ReceiveChannel, _ bool) {
		var cp Capture
		c.Receive(r.ctx, &cp)
		r.apply(cp)
		r.drain()
	})
	sel.AddReceive(r.engaged, func(c workflow.ReceiveChannel, _ bool) {
		var e Engaged
		c.Receive(r.ctx, &e)
		r.rescore = true
		r.drain()
	})
}

// receive blocks until one capture arrives, then drains the rest.
func (r *leadRun) receive(ctx workflow.Context) {
	sel := workflow.NewSelector(ctx)
	r.onSignals(sel)
	sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
	sel.Select(ctx)
}

func (r *leadRun) plan(segment string) error {
	var a *activities.Leads
	var p activities.Plan
	if err := r.runLocal(a.Plan, activities.PlanInput{LeadID: r.st.LeadID, Segment: segment}).Get(r.ctx, &p); err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeUnknownLead {
			r.st.Status, r.st.ExitReason = StatusExited, "lead deleted"
			return nil
		}
		return err
	}
	seq := p.Sequence
	r.st.SalesEnabled = p.SalesEnabled
	r.st.FrequencyCap, r.st.QuietHours, r.st.Reengagement = p.FrequencyCap, p.QuietHours, p.Reengagement
	if r.st.EnrolledAt.IsZero() {
		r.st.EnrolledAt = workflow.Now(r.ctx)
	}
	r.st.Mode, r.st.Saved = "", nil
	r.st.Segment = p.Segment
	if r.st.Stage == "" {
		r.st.Stage = p.Stage
	}
	if r.st.TimeZone == "" {
		r.st.TimeZone = p.TimeZone
	}
	if r.st.PendingSegment == p.Segment {
		r.st.PendingSegment = ""
	}
	r.st.Sequence = &seq
	r.st.NextStep = 0
	r.st.Status = StatusRunning
	r.st.ExitReason = ""
	r.st.StepBase = workflow.Now(r.ctx)
	r.st.NextSendAt = time.Time{}
	done := map[string]bool{}
	for _, id := range p.Done {
		done[id] = true
	}
	// Resume after the steps an earlier run already finished.
	for r.st.NextStep < len(seq.Steps) && done[seq.Steps[r.st.NextStep].ID] {
		r.st.NextStep++
	}
	if r.st.NextStep >= len(seq.Steps) {
		r.st.Status = StatusCompleted
	}
	return nil
}

// maybeStartPending starts the series of a segment asked for by a capture once the current series
// has ended (completed, or exited for a reason other than unsubscribe or suppression).
func (r *leadRun) maybeStartPending() error {
	if r.st.PendingSegment == "" || r.st.ExitReason == "unsubscribed" || r.st.ExitReason == "suppressed" || r.st.ExitReason == "no consent" ||
		r.st.ExitReason == "bounced" || r.st.ExitReason == "lead deleted" {
		return nil
	}
	if r.st.Sequence != nil && r.st.Sequence.Exit.Reached(r.st.Stage) {
		return nil
	}
	return r.plan(r.st.PendingSegment)
}

func (r *leadRun) exitIfReached() bool {
	if r.st.Sequence.Exit.Reached(r.st.Stage) {
		r.exit("stage " + string(r.st.Stage) + " reached")
		return true
	}
	return false
}

func (r *leadRun) exit(reason string) {
	r.st.Status, r.st.ExitReason = StatusExited, reason
	r.st.NextSendAt = time.Time{}
	r.cancelTimer()
}

// waitUntil sleeps until t, and returns true early if a capture arrives. The timer survives an
// early return so that a capture that changes nothing costs no new timer.
func (r *leadRun) waitUntil(t time.Time) (interrupted bool) {
	if !t.After(workflow.Now(r.ctx)) {
		return false
	}
	if r.timer == nil || !r.timerAt.Equal(t) {
		r.cancelTimer()
		tctx, cancel := workflow.WithCancel(r.ctx)
		r.timer, r.timerAt, r.cancelTimer = workflow.NewTimer(tctx, t.Sub(workflow.Now(r.ctx))), t, cancel
	}
	fired := false
	sel := workflow.NewSelector(r.ctx)
	sel.AddFuture(r.timer, func(workflow.Future) { fired = true })
	r.onSignals(sel)
	sel.Select(r.ctx)
	if r.ctx.Err() != nil {
		return true
	}
	if fired {
		r.timer, r.cancelTimer = nil, func() {}
	}
	return !fired
}

func (r *leadRun) record(step sequence.Step, outcome, detail string) {
	r.st.History = append(r.st.History, StepRecord{SequenceID: r.st.Sequence.ID, StepID: step.ID, Outcome: outcome,
		At: workflow.Now(r.ctx), Detail: detail})
	if len(r.st.History) > historyLimit {
		r.st.History = r.st.History[len(r.st.History)-historyLimit:]
	}
}

func (r *leadRun) advance() {
	r.st.NextStep++
	r.st.StepBase = workflow.Now(r.ctx)
	r.st.NextSendAt = time.Time{}
	if r.st.NextStep >= len(r.st.Sequence.Steps) {
		r.st.Status = StatusCompleted
		if r.st.Mode == ModeReengaging {
			// Silence to the end of the re-engagement series: stop marketing until it engages.
			r.st.Mode, r.st.Status, r.st.ExitReason = ModeSunset, StatusExited, "sunset: no engagement"
		}
	}
}

// previousClicked reports whether the lead clicked the last email sent in the current series.
func (r *leadRun) previousClicked() bool {
	for i := len(r.st.History) - 1; i >= 0; i-- {
		h := r.st.History[i]
		if h.SequenceID != r.st.Sequence.ID {
			return false
		}
		if h.SendID != "" {
			return slices.Contains(r.st.ClickedSends, h.SendID)
		}
	}
	return false
}

// doRescore runs one Rescore activity for everything that arrived since the last one and acts on
// the result: stage and score, the handoff event, unsubscribe, a move to another segment.
func (r *leadRun) doRescore() error {
	r.rescore = false
	var a *activities.Leads
	var res activities.RescoreResult
	err := r.runLocal(a.Rescore, activities.RescoreInput{LeadID: r.st.LeadID, SinceEventID: r.st.LastEventID}).Get(r.ctx, &res)
	if err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeUnknownLead {
			r.exit("lead deleted")
			return nil
		}
		return err
	}
	r.st.Rescores++
	r.st.Score, r.st.Band, r.st.LastEventID = res.Score, res.Band, res.LastEventID
	if res.Stage != "" {
		r.st.Stage = res.Stage
	}
	r.st.ClickedSends = res.ClickedSends
	if res.LastEngagement.After(r.st.LastEngagedAt) {
		r.st.LastEngagedAt = res.LastEngagement
		if (r.st.Mode == ModeReengaging || r.st.Mode == ModeSunset) && res.LastEngagement.After(r.st.ReengagedAt) && !res.Unsubscribed {
			r.resumeNurture() // engaged again: back to where it was
		}
	}
	if res.Handoff != nil && r.st.Handoff == nil {
		r.st.Handoff = &HandoffRecord{At: workflow.Now(r.ctx), Reason: res.Handoff.Reason, Score: res.Handoff.Score}
		if r.st.SalesEnabled {
			if r.st.Status == StatusRunning {
				r.exit("handed off to sales")
			}
			if err := r.startHandoff(res.Handoff.Reason, res.Handoff.HandRaise); err != nil {
				return err
			}
		}
	}
	if res.Unsubscribed {
		if r.st.Status == StatusRunning {
			r.exit("unsubscribed")
		} else {
			r.st.ExitReason = "unsubscribed"
		}
		r.st.PendingSegment = ""
		return nil
	}
	if res.SwitchSegment != "" && res.SwitchSegment != r.st.Segment && (r.st.Sequence == nil || !r.st.Sequence.Exit.Reached(r.st.Stage)) {
		// The lead clicked content of another segment's interest: its series starts now.
		if r.st.Status == StatusRunning {
			r.exit("moved to segment " + res.SwitchSegment)
		}
		return r.plan(res.SwitchSegment)
	}
	return nil
}

func (r *leadRun) runStep(step sequence.Step) error {
	if !step.When.HoldsAfter(r.st.Stage, r.previousClicked()) {
		r.record(step, "skipped", "stage "+string(r.st.Stage))
		r.advance()
		return r.maybeStartPendingIfDone()
	}
	ctx := workflow.WithActivityOptions(r.ctx, sendOptions)
	var a *activities.Email
	var res activities.SendResult
	err := workflow.ExecuteActivity(ctx, a.SendStep, activities.SendInput{
		LeadID: r.st.LeadID, SequenceID: r.st.Sequence.ID, StepID: step.ID, Template: step.Template, Subject: step.Subject,
	}).Get(ctx, &res)
	if err != nil {
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) {
			// Retries ran out (two days of temporary failures): record it and move on.
			r.record(step, "failed", "gave up after retries")
			r.advance()
			return r.maybeStartPendingIfDone()
		}
		switch appErr.Type() {
		case activities.ErrTypeHardBounce:
			r.record(step, "bounced", "")
			r.exit("bounced")
			return nil
		case activities.ErrTypeUnknownLead:
			r.exit("lead deleted")
			return nil
		case activities.ErrTypeRejected:
			r.record(step, "rejected", "")
		case activities.ErrTypeBadTemplate:
			r.record(step, "failed", "template error")
		default:
			r.record(step, "failed", "gave up after retries")
		}
		r.advance()
		return r.maybeStartPendingIfDone()
	}
	switch res.Status {
	case activities.StatusUnsubscribed:
		r.record(step, "unsubscribed", "")
		r.exit("unsubscribed")
		return nil
	case activities.StatusSuppressed:
		r.record(step, "suppressed", res.Reason)
		if res.Reason == "consent refused" {
			r.exit("no consent")
		} else {
			r.exit("suppressed")
		}
		return nil
	}
	r.record(step, res.Status, "")
	r.st.History[len(r.st.History)-1].SendID = res.SendID
	if res.Status == activities.StatusSent {
		r.noteSent()
	}
	r.advance()
	return r.maybeStartPendingIfDone()
}

func (r *leadRun) maybeStartPendingIfDone() error {
	if r.st.Status == StatusCompleted {
		return r.maybeStartPending()
	}
	return nil
}
