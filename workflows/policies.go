package workflows

import (
	"slices"
	"time"

	"github.com/tendhq/tend/internal/schedule"
	"github.com/tendhq/tend/internal/sequence"
	"go.temporal.io/sdk/workflow"
)

// Lead modes outside the ordinary nurture.
const (
	ModeReengaging = "reengaging" // the lead went quiet and gets the re-engagement series
	ModeSunset     = "sunset"     // it stayed quiet to the end: no marketing email until it engages
)

// SavedNurture is where a lead was in its nurture when it went quiet.
type SavedNurture struct {
	Sequence   *sequence.Sequence `json:"sequence"`
	NextStep   int                `json:"next_step"`
	Status     string             `json:"status"`
	ExitReason string             `json:"exit_reason,omitempty"`
	// ContentVersion is the version of the sequences Sequence comes from: a newer one published
	// while the lead re-engaged is followed when it returns.
	ContentVersion int `json:"content_version,omitempty"`
}

// sendTime is the first instant at or after due that is inside the sequence's send window (in the
// lead's time zone when known), outside quiet hours, and within the frequency cap.
func (r *leadRun) sendTime(due time.Time) time.Time {
	w, err := schedule.Compile(r.st.Sequence.Window.Cron, r.st.Sequence.Window.TimeZone)
	if err != nil {
		// The catalog was validated when loaded; sending on time beats never sending.
		return due
	}
	return r.settle(w, due)
}

// settle is sendTime with the window compiled. Each rule can only move the time later, so a few
// rounds settle it.
func (r *leadRun) settle(w *schedule.Window, due time.Time) time.Time {
	t := w.Next(due, r.st.TimeZone)
	for range 20 {
		next := w.Next(r.quietNext(r.capNext(t)), r.st.TimeZone)
		if next.Equal(t) {
			break
		}
		t = next
	}
	return t
}

// spreadTime is sendTime for a sequence whose window has a spread (spreadChange): a send that
// had to wait — for the window to open, quiet hours to end, the cap — goes out at the lead's own
// offset after the instant it waited for, so that the leads that waited together (every lead
// whose step fell due over the weekend, at Monday 09:00) do not all fire in the same second. A
// step that is due inside the window goes out on time. planned is the step's due time before the
// workflow moved it to now: the slot counts from the opening after it, so a signal that wakes the
// lead while it waits for its slot leaves the slot where it was.
func (r *leadRun) spreadTime(stepID string, planned, due time.Time) time.Time {
	win := r.st.Sequence.Window
	w, err := schedule.Compile(win.Cron, win.TimeZone)
	if err != nil {
		return due
	}
	off := win.SpreadOffset(r.st.LeadID, r.st.Sequence.ID, stepID)
	// slot returns, for a step due at from, the instant the rules move it to, that instant plus
	// the offset, and whether the step had to wait and the offset kept it where the rules allow.
	slot := func(from time.Time) (time.Time, time.Time, bool) {
		at := r.settle(w, from)
		if at.Equal(from) || off == 0 {
			return at, at, false
		}
		s := at.Add(off)
		return at, s, r.settle(w, s).Equal(s)
	}
	if planned.Before(due) {
		if _, s, ok := slot(planned); ok && !s.Before(due) {
			return s
		}
	}
	at, s, ok := slot(due)
	if !ok {
		// On time, or the offset would leave the window (a short window, quiet hours, the cap):
		// the instant it waited for, as without a spread.
		return at
	}
	return s
}

// spreads reports whether this run spreads sends over the window's spread (spreadChange). It
// asks Temporal only once a sequence with a spread is run, so that the histories of leads
// without one carry no marker for it.
func (r *leadRun) spreads() bool {
	if !r.spreadAsked {
		r.spreadVersion = workflow.GetVersion(r.ctx, spreadChange, workflow.DefaultVersion, 1)
		r.spreadAsked = true
	}
	return r.spreadVersion >= 1
}

// capNext postpones t until the lead has had fewer than Max marketing emails in the Per before it.
func (r *leadRun) capNext(t time.Time) time.Time {
	c := r.st.FrequencyCap
	if c == nil || c.Max < 1 {
		return t
	}
	var in []time.Time
	for _, s := range r.st.RecentSends {
		if s.After(t.Add(-c.Per)) && !s.After(t) {
			in = append(in, s)
		}
	}
	if len(in) < c.Max {
		return t
	}
	slices.SortFunc(in, func(a, b time.Time) int { return a.Compare(b) })
	// Sending is allowed once the oldest sends that keep the count at Max have left the window.
	return in[len(in)-c.Max].Add(c.Per)
}

// quietNext moves t out of the quiet hours, to their end, in the lead's time zone (or the send
// window's).
func (r *leadRun) quietNext(t time.Time) time.Time {
	q := r.st.QuietHours
	if q == nil {
		return t
	}
	from, ok1 := sequence.ClockMinutes(q.From)
	to, ok2 := sequence.ClockMinutes(q.To)
	if !ok1 || !ok2 || from == to {
		return t
	}
	loc := time.UTC
	if tz := r.st.TimeZone; tz != "" {
		if l, err := time.LoadLocation(tz); err == nil {
			loc = l
		}
	} else if tz := r.st.Sequence.Window.TimeZone; tz != "" {
		if l, err := time.LoadLocation(tz); err == nil {
			loc = l
		}
	}
	lt := t.In(loc)
	m := lt.Hour()*60 + lt.Minute()
	at := func(day time.Time, minutes int) time.Time {
		return time.Date(day.Year(), day.Month(), day.Day(), minutes/60, minutes%60, 0, 0, loc)
	}
	if from < to {
		if m >= from && m < to {
			return at(lt, to)
		}
		return t
	}
	// Wraps midnight, e.g. 20:00-08:00.
	if m >= from {
		return at(lt.AddDate(0, 0, 1), to)
	}
	if m < to {
		return at(lt, to)
	}
	return t
}

func (r *leadRun) noteSent() {
	c := r.st.FrequencyCap
	if c == nil {
		return
	}
	r.st.RecentSends = append(r.st.RecentSends, workflow.Now(r.ctx))
	if len(r.st.RecentSends) > c.Max {
		r.st.RecentSends = r.st.RecentSends[len(r.st.RecentSends)-c.Max:]
	}
}

// inactiveAt is when the lead counts as gone quiet, or zero when re-engagement does not apply:
// none is configured, the lead is already re-engaging or sunset, sales owns it, or its marketing
// stopped for good (unsubscribed, bounced, …).
func (r *leadRun) inactiveAt() time.Time {
	re := r.st.Reengagement
	if re == nil || r.st.Mode != "" || r.st.Status == StatusExited || r.st.Sequence == nil {
		return time.Time{}
	}
	if r.st.Sales != nil && (r.st.Sales.Phase == PhaseAwaiting || r.st.Sales.Phase == PhaseAccepted) {
		return time.Time{}
	}
	if r.live() && r.st.Mode == "" && r.st.Sequence.HeldOut(r.st.LeadID) {
		// A control group is mailed nothing: its silence is the sequence's doing, not the lead's.
		return time.Time{}
	}
	since := r.st.EnrolledAt
	if r.st.LastEngagedAt.After(since) {
		since = r.st.LastEngagedAt
	}
	if r.st.ResumedAt.After(since) {
		since = r.st.ResumedAt
	}
	return since.Add(re.After)
}

// startReengagement pauses the nurture where it is and starts the re-engagement series; the
// score is computed again so that decay for the quiet time shows.
func (r *leadRun) startReengagement() {
	r.stopTimer()
	r.st.Saved = &SavedNurture{Sequence: r.st.Sequence, NextStep: r.st.NextStep, Status: r.st.Status, ExitReason: r.st.ExitReason,
		ContentVersion: r.st.ContentVersion}
	seq := r.st.Reengagement.Sequence
	r.st.Sequence, r.st.NextStep, r.st.Status, r.st.ExitReason = &seq, 0, StatusRunning, ""
	r.st.Mode, r.st.StepBase, r.st.NextSendAt = ModeReengaging, workflow.Now(r.ctx), time.Time{}
	r.st.ReengagedAt = workflow.Now(r.ctx)
	r.rescore = true
}

// resumeNurture returns a lead that engaged again to where it was in its nurture.
func (r *leadRun) resumeNurture() {
	r.stopTimer()
	if r.fixed() {
		r.detachSend()
	}
	if s := r.st.Saved; s != nil {
		r.st.Sequence, r.st.NextStep, r.st.Status, r.st.ExitReason = s.Sequence, s.NextStep, s.Status, s.ExitReason
		if r.live() && s.ContentVersion < r.st.ContentVersion {
			// A version published while it re-engaged: its nurture follows that version now.
			r.st.FollowVersion = max(r.st.FollowVersion, r.st.ContentVersion)
			r.st.ContentVersion = s.ContentVersion
		}
	}
	r.resumed = true
	r.st.Saved, r.st.Mode = nil, ""
	r.st.StepBase, r.st.NextSendAt = workflow.Now(r.ctx), time.Time{}
}
