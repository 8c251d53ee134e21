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
	// EnrollmentID is the capture's outbox row. The reconciler may deliver a row whose first
	// delivery is still under way; the workflow counts each row once.
	EnrollmentID int64 `json:"enrollment_id,omitempty"`
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
	// Variant is the A/B variant the step was sent in, if it has variants.
	Variant string `json:"variant,omitempty"`
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
	// PendingRescore carries engagement that arrived too late for a rescore in the run that
	// continued as new.
	PendingRescore bool `json:"pending_rescore,omitempty"`
	// Replan is set when planning a series failed (the store was unreachable past the activity's
	// deadline): the plan of ReplanSegment is tried again after RetryAt.
	Replan        bool      `json:"replan,omitempty"`
	ReplanSegment string    `json:"replan_segment,omitempty"`
	RetryAt       time.Time `json:"retry_at,omitzero"`
	// Failures counts consecutive failed attempts of the thing being retried, for the backoff.
	Failures int `json:"failures,omitempty"`
	// LastError is the latest business error the workflow recorded and carried on from.
	LastError string `json:"last_error,omitempty"`
	// Enrollments are the latest captures' outbox rows, so that a capture delivered twice counts once.
	Enrollments []int64 `json:"enrollments,omitempty"`
	// ContentVersion is the published version of the sequences that Sequence comes from (0: a
	// file); FollowVersion a newer one the lead was told of and has not read yet.
	ContentVersion int `json:"content_version,omitempty"`
	FollowVersion  int `json:"follow_version,omitempty"`
	// Held is set while the lead's next send waits for its paused sequence or step to resume.
	Held *HeldStep `json:"held,omitempty"`
	// NotBefore is the lead's slot in a resume's ramp: its next send goes out no earlier.
	// Released says that the next send was held and resumed.
	NotBefore time.Time `json:"not_before,omitzero"`
	Released  bool      `json:"released,omitempty"`
	// ResumedAt is when the lead's last held send was resumed: its quiet spell counts from then,
	// for the time a pause kept it waiting is not the lead's silence.
	ResumedAt time.Time `json:"resumed_at,omitzero"`
	// Done are the steps of Sequence that an earlier enrollment in it finished (sent, failed,
	// suppressed): reached again — after an edit inserted a step before them, or a re-enrollment
	// that starts at a step they follow — they are passed over, not walked through.
	Done []string `json:"done,omitempty"`
}

// HeldStep is a step whose send fell due while it, or its sequence, was paused.
type HeldStep struct {
	SequenceID string    `json:"sequence_id"`
	StepID     string    `json:"step_id"`
	Since      time.Time `json:"since"`
}

// enrollmentsKept bounds LeadState.Enrollments: a redelivery comes within minutes of the first.
const enrollmentsKept = 20

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

// boundedLocalOptions give Plan and Rescore a deadline (promisesChange): past it the workflow
// records the failure and tries again later, handling signals meanwhile, instead of waiting
// without end inside one workflow task.
var boundedLocalOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout:    30 * time.Second,
	ScheduleToCloseTimeout: 10 * time.Minute,
	RetryPolicy:            planOptions.RetryPolicy,
}

// promisesChange marks the fixes that make the lead workflow keep its promises on every path
// (issue 8): cancelled timers are forgotten, sends run while signals are handled, business errors
// are recorded instead of failing the run, answers are stored before the rep is told, and more.
// Runs that started before it keep the old behaviour, so their histories replay.
const promisesChange = "promises"

// retryBackoff is how long the workflow waits before trying again a plan, rescore, assignment or
// escalation that failed past its activity's deadline: doubling from a minute up to an hour.
func retryBackoff(failures int) time.Duration {
	d := time.Minute
	for i := 1; i < failures && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// liveChange marks live sequences (issue 9): the lead follows a newly published version of its
// sequence (SignalContent), is held at a paused step, exits on its sequence's goal, gets its A/B
// variant or holdout, and step conditions look at band and score. Runs that started before it
// keep the version they were enrolled with, so their histories replay.
const liveChange = "live-sequences"

// spreadChange marks send-window spread: a send that waited for its window to open goes out at
// the lead's own offset inside the window's spread instead of at the opening minute. Runs record
// it only when their sequence has a spread (leadRun.spreads); runs without the marker send at the
// opening, so their histories replay.
const spreadChange = "send-spread"

// localActivitiesChange marks the change from regular to local activities for Plan and Rescore.
// Runs that started before it keep scheduling regular activities, so their histories replay.
const localActivitiesChange = "local-plan-rescore"

// runLocal executes a Leads activity as a local activity, or as a regular one in a run whose
// history predates localActivitiesChange.
func (r *leadRun) runLocal(activity, input any) workflow.Future {
	if workflow.GetVersion(r.ctx, localActivitiesChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return workflow.ExecuteActivity(workflow.WithActivityOptions(r.ctx, planOptions), activity, input)
	}
	opts := localOptions
	if r.fixed() {
		opts = boundedLocalOptions
	}
	return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(r.ctx, opts), activity, input)
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
	r.version = workflow.GetVersion(ctx, promisesChange, workflow.DefaultVersion, 1)
	r.liveVersion = workflow.GetVersion(ctx, liveChange, workflow.DefaultVersion, 1)
	r.content = workflow.GetSignalChannel(ctx, SignalContent)
	if in.State != nil {
		r.st = *in.State
		if r.fixed() {
			r.rescore, r.st.PendingRescore = r.st.PendingRescore, false
		}
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
			r.stopTimer()
			return err // the lead's workflow was cancelled (e.g. the lead was erased)
		}
		if r.st.Replan && !r.st.RetryAt.After(workflow.Now(ctx)) {
			if err := r.plan(r.st.ReplanSegment); err != nil {
				return err
			}
			continue
		}
		if r.rescore && !r.st.RetryAt.After(workflow.Now(ctx)) {
			if err := r.doRescore(); err != nil {
				return err
			}
			continue
		}
		if r.following() && !r.st.RetryAt.After(workflow.Now(ctx)) {
			if err := r.follow(); err != nil {
				return err
			}
			continue
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			if r.fixed() {
				// Handlers first: a signal that arrives while an update finishes is drained too.
				if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
					return err
				}
				r.drain()
				r.st.PendingRescore = r.rescore
			} else {
				r.drain()
				if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
					return err
				}
			}
			r.stopTimer()
			r.st.Runs++
			st := r.st
			return workflow.NewContinueAsNewError(ctx, Lead, LeadInput{LeadID: st.LeadID, State: &st})
		}
		if r.fixed() && r.st.Replan {
			// Planning failed: try it again at RetryAt, handling signals meanwhile.
			r.waitUntil(r.st.RetryAt)
			continue
		}
		if r.st.Sales != nil && r.salesOwned() {
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
		if r.live() && r.st.Held != nil {
			// Paused: the lead holds its place — no send, no skip, no re-engagement — until a
			// resume (or a new version, an exit) arrives.
			if r.rescore && r.st.RetryAt.After(workflow.Now(ctx)) {
				r.waitUntil(r.st.RetryAt)
			} else {
				r.receive(ctx)
			}
			continue
		}
		step := r.st.Sequence.Steps[r.st.NextStep]
		if r.live() && slices.Contains(r.st.Done, step.ID) {
			r.advance() // finished by an earlier enrollment: nothing to wait for
			if err := r.maybeStartPendingIfDone(); err != nil {
				return err
			}
			continue
		}
		wait := step.Wait
		if step.WaitIfClicked != nil && r.previousClicked() {
			wait = *step.WaitIfClicked
		}
		due := r.st.StepBase.Add(wait)
		if now := workflow.Now(ctx); r.fixed() && due.Before(now) {
			// A step already due (its wait passed while it waited for the window, a handoff, a
			// retry): the window is looked up from now, or a time-zone change could pick a slot
			// in the past and send at once, outside the window.
			due = now
		}
		if r.live() && due.Before(r.st.NotBefore) {
			due = r.st.NotBefore // the lead's slot in a resume's ramp
		}
		if r.st.Sequence.Window.Spread > 0 && r.spreads() {
			r.st.NextSendAt = r.spreadTime(step.ID, r.st.StepBase.Add(wait), due)
		} else {
			r.st.NextSendAt = r.sendTime(due)
		}
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
	ctx workflow.Context
	// version is promisesChange's version for this run, liveVersion liveChange's.
	version     workflow.Version
	liveVersion workflow.Version
	st          LeadState
	captures    workflow.ReceiveChannel
	engaged     workflow.ReceiveChannel
	content     workflow.ReceiveChannel

	// spreadVersion is spreadChange's version for this run, read once spreadAsked (see spreads).
	spreadVersion workflow.Version
	spreadAsked   bool
	// rescore is set when engagement arrived and the score must be computed again.
	rescore bool

	timerAt     time.Time
	timer       workflow.Future
	cancelTimer func()
	// cancelSend, while a send runs, cancels it: the lead left the series it belongs to.
	cancelSend func()
	// resumeDuringSend is a resume that came while a send ran: if the send answers that its step
	// is paused, the resume that read its hold has come already.
	resumeDuringSend *ContentChange
	// resumed is set when a rescore returned the lead from re-engagement to its nurture.
	resumed bool
}

// fixed reports whether this run has the fixes of promisesChange.
func (r *leadRun) fixed() bool { return r.version >= 1 }

// live reports whether this run follows live sequences (liveChange).
func (r *leadRun) live() bool { return r.liveVersion >= 1 }

// following reports whether the lead was told of a version of the sequences it has not read.
func (r *leadRun) following() bool { return r.live() && r.st.FollowVersion > r.st.ContentVersion }

// salesOwned reports whether a handoff to sales needs the main loop: it is being assigned (or its
// assignment is to be retried), its SLA clock runs, or an answer is being stored.
func (r *leadRun) salesOwned() bool {
	s := r.st.Sales
	if s.Phase == PhaseAwaiting || s.Pending != nil {
		return true
	}
	return r.fixed() && (s.Phase == PhaseAssigning || s.Answer != nil)
}

// stopTimer cancels the timer the workflow waits on and forgets it, so that the next wait, even
// for the same instant, starts a new timer instead of taking the cancellation for a fire.
func (r *leadRun) stopTimer() {
	r.cancelTimer()
	if r.fixed() {
		r.timer, r.timerAt, r.cancelTimer = nil, time.Time{}, func() {}
	}
}

// carryOn decides what an activity's failure does to the run. Before promisesChange it fails the
// run (fail is err). After it, a run that is being cancelled just stops (fail nil, retry false),
// and any other failure is recorded (retry true) for the caller to try again later.
func (r *leadRun) carryOn(what string, err error) (fail error, retry bool) {
	if !r.fixed() {
		return err, false
	}
	if r.ctx.Err() != nil {
		return nil, false
	}
	r.noteError(what, err)
	return nil, true
}

// noteError records a business error the workflow carries on from, and logs it with ids only.
func (r *leadRun) noteError(what string, err error) {
	r.st.LastError = what + ": " + err.Error()
	workflow.GetLogger(r.ctx).Error("lead workflow carries on after a failure", "lead_id", r.st.LeadID, "what", what, "err", err)
}

// retryLater schedules the next attempt of something that failed, with a growing backoff.
func (r *leadRun) retryLater() {
	r.st.Failures++
	r.st.RetryAt = workflow.Now(r.ctx).Add(retryBackoff(r.st.Failures))
}

func (r *leadRun) apply(c Capture) {
	if r.fixed() && c.EnrollmentID != 0 {
		if slices.Contains(r.st.Enrollments, c.EnrollmentID) {
			return // the same capture delivered again (reconciler): it changes nothing
		}
		r.st.Enrollments = append(r.st.Enrollments, c.EnrollmentID)
		if len(r.st.Enrollments) > enrollmentsKept {
			r.st.Enrollments = r.st.Enrollments[len(r.st.Enrollments)-enrollmentsKept:]
		}
	}
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
	for r.live() {
		var c ContentChange
		if !r.content.ReceiveAsync(&c) {
			break
		}
		r.applyContent(c)
	}
}

// applyContent notes a content change: a version to follow, or the resume of the lead's held step.
func (r *leadRun) applyContent(c ContentChange) {
	if c.Version > r.st.FollowVersion {
		r.st.FollowVersion = c.Version
	}
	if c.Resume && r.st.Held != nil {
		r.st.Held, r.st.NotBefore, r.st.Released = nil, c.NotBefore, true
		r.st.ResumedAt = workflow.Now(r.ctx)
	} else if c.Resume && r.cancelSend != nil {
		r.resumeDuringSend = &c
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
	if r.live() {
		sel.AddReceive(r.content, func(c workflow.ReceiveChannel, _ bool) {
			var cc ContentChange
			c.Receive(r.ctx, &cc)
			r.applyContent(cc)
			r.drain()
		})
	}
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
		if errType(err) == activities.ErrTypeUnknownLead {
			r.st.Status, r.st.ExitReason = StatusExited, "lead deleted"
			r.st.Replan = false
			return nil
		}
		if fail, retry := r.carryOn("plan", err); !retry {
			return fail
		}
		r.st.Replan, r.st.ReplanSegment = true, segment
		r.retryLater()
		return nil
	}
	if r.fixed() {
		r.detachSend()
		r.st.Replan, r.st.ReplanSegment, r.st.Failures, r.st.RetryAt = false, "", 0, time.Time{}
	}
	seq := p.Sequence
	if r.live() {
		r.st.ContentVersion = max(r.st.ContentVersion, p.Version)
		r.st.Held, r.st.NotBefore, r.st.Released = nil, time.Time{}, false
		r.st.Done = slices.Clone(p.Done)
	}
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
	if r.st.PendingSegment == p.Segment || (r.live() && segment != "" && segment == r.st.PendingSegment) {
		// The queued segment's series is planned, even if it now maps to another segment (the
		// queued one was removed): it is not queued again.
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
	r.st.Held, r.st.NotBefore, r.st.Released = nil, time.Time{}, false
	r.stopTimer()
	r.detachSend()
}

// detachSend cancels a send in flight: the lead left the series (or marketing) it belongs to.
func (r *leadRun) detachSend() {
	if r.cancelSend != nil {
		r.cancelSend()
		r.cancelSend = nil
	}
}

// waitUntil sleeps until t, and returns true early if a capture arrives. The timer survives an
// early return so that a capture that changes nothing costs no new timer.
func (r *leadRun) waitUntil(t time.Time) (interrupted bool) {
	if !t.After(workflow.Now(r.ctx)) {
		return false
	}
	if r.fixed() && (r.rescore || r.following()) && r.st.RetryAt.After(workflow.Now(r.ctx)) && r.st.RetryAt.Before(t) {
		// A failed rescore is due again before t: wake up for it, as if a signal had come.
		r.waitUntil(r.st.RetryAt)
		return true
	}
	if r.timer == nil || !r.timerAt.Equal(t) {
		r.cancelTimer()
		tctx, cancel := workflow.WithCancel(r.ctx)
		r.timer, r.timerAt, r.cancelTimer = workflow.NewTimer(tctx, t.Sub(workflow.Now(r.ctx))), t, cancel
	}
	fired, done := false, false
	sel := workflow.NewSelector(r.ctx)
	sel.AddFuture(r.timer, func(f workflow.Future) {
		done = true
		// A cancelled timer is ready too: only a timer that ran out is a fire.
		fired = !r.fixed() || f.Get(r.ctx, nil) == nil
	})
	r.onSignals(sel)
	sel.Select(r.ctx)
	if r.ctx.Err() != nil {
		return true
	}
	if fired || (done && r.fixed()) {
		r.timer, r.timerAt, r.cancelTimer = nil, time.Time{}, func() {}
	}
	return !fired
}

func (r *leadRun) record(step sequence.Step, outcome, detail string) {
	r.recordIn(r.st.Sequence.ID, step, outcome, detail, "")
}

// recordIn adds what happened to a step of sequence seqID to the bounded step history.
func (r *leadRun) recordIn(seqID string, step sequence.Step, outcome, detail, sendID string) {
	r.st.History = append(r.st.History, StepRecord{SequenceID: seqID, StepID: step.ID, Outcome: outcome,
		At: workflow.Now(r.ctx), Detail: detail, SendID: sendID})
	if len(r.st.History) > historyLimit {
		r.st.History = r.st.History[len(r.st.History)-historyLimit:]
	}
}

// stopMarketing stops marketing for good for reason (an unsubscribe, a bounce …): the running
// series exits, a series that already ended keeps its end but takes the reason, and no queued
// segment starts.
func (r *leadRun) stopMarketing(reason string) {
	if r.st.Status == StatusRunning {
		r.exit(reason)
	} else {
		r.st.ExitReason = reason
	}
	r.st.PendingSegment = ""
}

func (r *leadRun) advance() {
	r.st.NextStep++
	r.st.StepBase = workflow.Now(r.ctx)
	r.st.NextSendAt = time.Time{}
	r.st.NotBefore, r.st.Released = time.Time{}, false
	r.finishIfDone()
}

// finishIfDone completes the series when no step is left.
func (r *leadRun) finishIfDone() {
	if r.st.NextStep >= len(r.st.Sequence.Steps) {
		r.st.Status = StatusCompleted
		if r.st.Mode == ModeReengaging {
			// Silence to the end of the re-engagement series: stop marketing until it engages.
			r.st.Mode, r.st.Status, r.st.ExitReason = ModeSunset, StatusExited, "sunset: no engagement"
		}
	}
}

// previousClicked reports whether the lead clicked the last email sent in the current series.
func (r *leadRun) previousClicked() bool { return r.st.previousClicked() }

func (st *LeadState) previousClicked() bool {
	for i := len(st.History) - 1; i >= 0; i-- {
		h := st.History[i]
		if h.SequenceID != st.Sequence.ID {
			return false
		}
		if h.SendID != "" {
			return slices.Contains(st.ClickedSends, h.SendID)
		}
	}
	return false
}

// doRescore runs one Rescore activity for everything that arrived since the last one and acts on
// the result: stage and score, the handoff event, unsubscribe, a move to another segment.
func (r *leadRun) doRescore() error {
	r.rescore = false
	r.resumed = false
	var a *activities.Leads
	var res activities.RescoreResult
	in := activities.RescoreInput{LeadID: r.st.LeadID, SinceEventID: r.st.LastEventID}
	if r.live() && r.st.Status == StatusRunning && r.st.Sequence != nil && r.st.Sequence.Goal != nil {
		in.SequenceID, in.Goal, in.HeldOut = r.st.Sequence.ID, r.st.Sequence.Goal, r.st.Sequence.HeldOut(r.st.LeadID)
	}
	err := r.runLocal(a.Rescore, in).Get(r.ctx, &res)
	if err != nil {
		if errType(err) == activities.ErrTypeUnknownLead {
			r.exit("lead deleted")
			return nil
		}
		if fail, retry := r.carryOn("rescore", err); !retry {
			return fail
		}
		r.rescore = true
		r.retryLater()
		return nil
	}
	if r.fixed() {
		r.st.Failures, r.st.RetryAt = 0, time.Time{}
	}
	r.st.Rescores++
	before := r.st.Stage
	r.st.Score, r.st.Band, r.st.LastEventID = res.Score, res.Band, res.LastEventID
	if res.Stage != "" {
		r.st.Stage = res.Stage
	}
	r.st.ClickedSends = res.ClickedSends
	if r.fixed() {
		r.st.ClickedSends = r.recentClicks(res.ClickedSends)
	}
	if res.GoalReached && r.st.Status == StatusRunning && r.st.Sequence != nil && r.st.Sequence.ID == in.SequenceID {
		// The sequence did its job: the lead leaves it at once, and a send under way is cancelled.
		r.exit("goal reached")
	}
	if res.LastEngagement.After(r.st.LastEngagedAt) {
		r.st.LastEngagedAt = res.LastEngagement
		if (r.st.Mode == ModeReengaging || r.st.Mode == ModeSunset) && res.LastEngagement.After(r.st.ReengagedAt) && !res.Unsubscribed {
			r.resumeNurture() // engaged again: back to where it was
		}
	}
	if r.fixed() && res.Stage == lifecycle.Recycled && before != lifecycle.Recycled && r.st.Handoff != nil &&
		r.st.Sales != nil && r.st.Sales.Phase == PhaseAccepted && !res.Unsubscribed {
		// The deal was lost: like a rep's "not ready", the lead goes back to nurture and must
		// qualify anew before sales hears of it again.
		r.st.Sales.Phase = PhaseClosed
		return r.recycle(r.st.Sales.RecycleSegment)
	}
	if r.fixed() && res.Handoff != nil && r.st.Handoff != nil && before != lifecycle.MQL && r.st.Sales != nil &&
		(r.st.Sales.Phase == PhaseAccepted || r.st.Sales.Phase == PhaseClosed) {
		// Back at MQL after sales had it: the deal was lost and the lead qualified anew before this
		// workflow saw the recycle (both in one rescore). The stored stage decides: a new handoff.
		r.st.Sales.Phase = PhaseClosed
		r.st.Handoff = nil
		if r.st.Status == StatusRunning {
			r.exit("handed off to sales")
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
		r.stopMarketing("unsubscribed")
		return nil
	}
	if res.SwitchSegment != "" && res.SwitchSegment != r.st.Segment && (r.st.Sequence == nil || !r.st.Sequence.Exit.Reached(r.st.Stage)) {
		// The lead clicked content of another segment's interest: its series starts now.
		if r.st.Status == StatusRunning {
			r.exit("moved to segment " + res.SwitchSegment)
		}
		return r.plan(res.SwitchSegment)
	}
	if r.live() && r.resumed {
		// Back in a nurture that had ended: a segment a capture queued meanwhile starts now.
		return r.maybeStartPendingIfDone()
	}
	return nil
}

// recentClicks keeps, of the sends the lead clicked, those still in the step history: the only
// ones a branch can ask about. ClickedSends so stays bounded by historyLimit.
func (r *leadRun) recentClicks(clicked []string) []string {
	var keep []string
	for _, h := range r.st.History {
		if h.SendID != "" && slices.Contains(clicked, h.SendID) && !slices.Contains(keep, h.SendID) {
			keep = append(keep, h.SendID)
		}
	}
	return keep
}

// sendFixedOptions are sendOptions that wait for a cancelled send to end: the workflow then knows
// whether the email went out.
var sendFixedOptions = func() workflow.ActivityOptions {
	o := sendOptions
	o.WaitForCancellation = true
	// SendStep heartbeats every 2 s: a worker that dies mid-send is noticed in seconds.
	o.HeartbeatTimeout = 10 * time.Second
	return o
}()

// sendWhileListening runs the step's send and, while it runs (a temporary SMTP failure retries it
// for up to two days), handles signals: a hand-raise is handed off, an unsubscribe stops the lead,
// and either cancels the send.
func (r *leadRun) sendWhileListening(in activities.SendInput) (activities.SendResult, error) {
	sctx, cancel := workflow.WithCancel(r.ctx)
	var a *activities.Email
	fut := workflow.ExecuteActivity(workflow.WithActivityOptions(sctx, sendFixedOptions), a.SendStep, in)
	r.cancelSend = cancel
	for !fut.IsReady() && r.ctx.Err() == nil {
		sel := workflow.NewSelector(r.ctx)
		sel.AddFuture(fut, func(workflow.Future) {})
		r.onSignals(sel)
		sel.Select(r.ctx)
		if r.rescore && !fut.IsReady() && r.cancelSend != nil && !r.st.RetryAt.After(workflow.Now(r.ctx)) {
			if err := r.doRescore(); err != nil {
				cancel()
				r.cancelSend = nil
				_ = fut.Get(r.ctx, nil) // the send's own outcome no longer matters
				return activities.SendResult{}, err
			}
		}
	}
	r.cancelSend = nil
	var res activities.SendResult
	err := fut.Get(r.ctx, &res)
	return res, err
}

func (r *leadRun) runStep(step sequence.Step) error {
	holds := step.When.HoldsAfter(r.st.Stage, r.previousClicked())
	if r.live() {
		holds = step.When.HoldsFor(sequence.Facts{Stage: r.st.Stage, Band: r.st.Band, Score: r.st.Score, PreviousClicked: r.previousClicked()})
	}
	if !holds {
		r.record(step, "skipped", "stage "+string(r.st.Stage))
		r.advance()
		return r.maybeStartPendingIfDone()
	}
	// A step without variants is its own only variant; the choice is an input, not a command, so
	// runs from before variants existed take it too.
	v := step.VariantFor(r.st.LeadID, r.st.Sequence.ID)
	in := activities.SendInput{LeadID: r.st.LeadID, SequenceID: r.st.Sequence.ID, StepID: step.ID, Template: v.Template, Subject: v.Subject}
	r.resumeDuringSend = nil
	if r.live() {
		in.Variant = v.ID
		in.ContentVersion = r.st.ContentVersion
		in.Holdout = r.st.Sequence.HeldOut(r.st.LeadID)
		in.Attributes = step.When.Attributes
		in.Pausable, in.Released = true, r.st.Released
	}
	var res activities.SendResult
	var err error
	if r.fixed() {
		seq, at := r.st.Sequence, r.st.NextStep
		res, err = r.sendWhileListening(in)
		if r.st.Sequence != seq || r.st.NextStep != at || r.st.Status != StatusRunning {
			return r.detachedOutcome(in, step, res, err)
		}
	} else {
		ctx := workflow.WithActivityOptions(r.ctx, sendOptions)
		var a *activities.Email
		err = workflow.ExecuteActivity(ctx, a.SendStep, in).Get(ctx, &res)
	}
	if err != nil {
		var canceled *temporal.CanceledError
		if r.fixed() && errors.As(err, &canceled) {
			return nil // the workflow is being cancelled
		}
		switch errType(err) {
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
			// Retries ran out (two days of temporary failures): record it and move on. An attempt
			// may have reached the SMTP server before the last one failed, so the cap counts it:
			// uncertain, tend sends less, never more.
			if r.fixed() {
				r.noteSent()
			}
			r.record(step, "failed", "gave up after retries")
		}
		r.advance()
		return r.maybeStartPendingIfDone()
	}
	switch res.Status {
	case activities.StatusPaused:
		// Nothing was sent or skipped: the lead holds its place until the step resumes.
		r.st.Held = &HeldStep{SequenceID: in.SequenceID, StepID: step.ID, Since: workflow.Now(r.ctx)}
		r.st.NextSendAt = time.Time{}
		if c := r.resumeDuringSend; c != nil {
			// The resume read this hold and signalled before the send's answer came: it is this
			// lead's resume.
			r.applyContent(*c)
		}
		return nil
	case activities.StatusHeldOut, activities.StatusSkipped:
		r.record(step, res.Status, res.Reason)
		r.st.History[len(r.st.History)-1].SendID = res.SendID
		r.advance()
		return r.maybeStartPendingIfDone()
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
	r.st.History[len(r.st.History)-1].Variant = in.Variant
	if res.Status == activities.StatusSent || (r.fixed() && res.Status == activities.StatusAlreadySent) {
		r.noteSent()
	}
	r.advance()
	return r.maybeStartPendingIfDone()
}

// detachedOutcome records a send that ended after the lead had left its series (a handoff, an
// unsubscribe, a segment switch while it ran). The lead's position is not touched; what the send
// learnt about the address still counts.
func (r *leadRun) detachedOutcome(in activities.SendInput, step sequence.Step, res activities.SendResult, err error) error {
	rec := func(outcome, detail string) { r.recordIn(in.SequenceID, step, outcome, detail, res.SendID) }
	switch {
	case errType(err) == activities.ErrTypeHardBounce:
		rec("bounced", "")
		r.stopMarketing("bounced")
	case errType(err) == activities.ErrTypeUnknownLead:
		r.stopMarketing("lead deleted")
	case err != nil:
		rec("cancelled", "the lead left the series while the send ran")
	case res.Status == activities.StatusUnsubscribed:
		rec("unsubscribed", "")
		r.stopMarketing("unsubscribed")
	case res.Status == activities.StatusSuppressed:
		rec("suppressed", res.Reason)
		r.stopMarketing("suppressed")
	case res.Status == activities.StatusPaused, res.Status == activities.StatusHeldOut, res.Status == activities.StatusSkipped:
		// Nothing was mailed, and the lead has left the step.
	default:
		rec(res.Status, "sent while the lead left the series")
		if res.Status == activities.StatusSent || res.Status == activities.StatusAlreadySent {
			r.noteSent()
		}
	}
	return nil
}

func (r *leadRun) maybeStartPendingIfDone() error {
	if r.st.Status == StatusCompleted {
		return r.maybeStartPending()
	}
	return nil
}

// follow reads the lead's sequence from the version of the sequences it was told of and moves it
// there by Place: a changed wait counts from the start of the current wait, a removed step hands
// the lead to the next remaining one, a step inserted after its position is picked up, steps
// before it are never sent. Only a lead running the sequence moves; one whose sequence is gone
// finishes where it is and then follows its segment in the new version.
func (r *leadRun) follow() error {
	want := r.st.FollowVersion
	if r.st.Sequence == nil {
		r.st.ContentVersion = want
		return nil
	}
	var a *activities.Leads
	var res activities.FollowResult
	ctx := workflow.WithLocalActivityOptions(r.ctx, boundedLocalOptions)
	err := workflow.ExecuteLocalActivity(ctx, a.Follow, activities.FollowInput{LeadID: r.st.LeadID, SequenceID: r.st.Sequence.ID, Version: want}).Get(r.ctx, &res)
	if err != nil {
		if errType(err) == activities.ErrTypeUnknownLead {
			r.st.ContentVersion = want
			r.exit("lead deleted")
			return nil
		}
		if fail, retry := r.carryOn("follow", err); !retry {
			return fail
		}
		r.retryLater()
		return nil
	}
	r.st.Failures, r.st.RetryAt = 0, time.Time{}
	r.st.ContentVersion = max(res.Version, want)
	r.st.FrequencyCap, r.st.QuietHours, r.st.Reengagement = res.FrequencyCap, res.QuietHours, res.Reengagement
	if r.st.Status != StatusRunning {
		return nil // a lead that finished or left its sequence is not moved back into it
	}
	if !res.Found {
		if r.st.Mode == "" && res.Segment != r.st.Segment {
			r.st.PendingSegment = res.Segment
		}
		return nil
	}
	p := Place(&r.st, res.Sequence)
	seq := res.Sequence
	if r.st.Held != nil && p.StepID != r.st.Held.StepID {
		r.st.Held = nil // held at a step the lead no longer waits for: the new one is checked when due
	}
	r.st.Sequence, r.st.NextStep, r.st.NextSendAt = &seq, p.NextStep, time.Time{}
	r.finishIfDone()
	return r.maybeStartPendingIfDone()
}

// errType is the type of the activity's application error err ("" for none: nil, a timeout, a
// cancellation), which the workflow branches on.
func errType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}
