package workflows

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/sequence"
)

// weekendSeries sends its first email at once and its second a day later: captured on a Friday,
// the second falls due on Saturday and waits for Monday's window.
func weekendSeries(spread time.Duration) sequence.Sequence {
	return sequence.Sequence{
		ID:     "analytics-series",
		Window: sequence.Window{Cron: "* 9-16 * * MON-FRI", TimeZone: "Europe/Berlin", Spread: spread},
		Steps: []sequence.Step{
			{ID: "intro", Template: "analytics-1", Subject: "one", Wait: 0},
			{ID: "deep-dive", Template: "analytics-2", Subject: "two", Wait: day},
		},
		Exit: sequence.Exit{Stages: []lifecycle.Stage{lifecycle.MQL}, Unsubscribed: true},
	}
}

// friday10 is Friday 20 November 2026, 10:00 in Berlin: inside the window.
var friday10 = time.Date(2026, 11, 20, 10, 0, 0, 0, berlin)

// monday9 is the opening of the window after that weekend.
var monday9 = time.Date(2026, 11, 23, 9, 0, 0, 0, berlin)

// runLead runs leadID on seq from start for a week and returns its sends.
func runLead(t *testing.T, seq sequence.Sequence, start time.Time, leadID string, more ...func(*testsuite.TestWorkflowEnvironment)) []sent {
	t.Helper()
	env, calls := setup(t, seq, start)
	for _, f := range more {
		f(env)
	}
	env.RegisterDelayedCallback(env.CancelWorkflow, 7*day)
	env.ExecuteWorkflow(Lead, LeadInput{LeadID: leadID})
	requireCancelled(t, env)
	return *calls
}

// The weekend's steps all fall due on Monday 09:00; with a spread each lead goes out at its own
// second of the window's first two hours instead, never before 09:00, and the same lead always at
// the same second.
func TestSpreadSendsTheWeekendsStepAtTheLeadsOwnSlot(t *testing.T) {
	seq := weekendSeries(2 * time.Hour)
	leads := []string{"3f1c0a3e-0000-4000-8000-000000000001", "3f1c0a3e-0000-4000-8000-000000000002"}
	var at []time.Time
	for _, lead := range leads {
		calls := runLead(t, seq, friday10, lead)
		require.Equal(t, []string{"intro", "deep-dive"}, stepsOf(calls), lead)
		assert.True(t, friday10.Equal(calls[0].at), "%s: the intro is due inside the window and goes out on time, at %s", lead, calls[0].at)
		got := calls[1].at
		assert.False(t, got.Before(monday9), "%s: sent at %s, before the window opened", lead, got)
		assert.True(t, got.Before(monday9.Add(2*time.Hour)), "%s: sent at %s, after the spread", lead, got)
		assert.True(t, monday9.Add(seq.Window.SpreadOffset(lead, seq.ID, "deep-dive")).Equal(got), "%s: sent at %s, not at its slot", lead, got)
		at = append(at, got)
	}
	assert.False(t, at[0].Equal(at[1]), "two leads share the second %s", at[0])
	again := runLead(t, seq, friday10, leads[0])
	assert.True(t, at[0].Equal(again[1].at), "the same lead, run again, goes out at %s, not %s", again[1].at, at[0])
}

// Without a spread a weekend's step goes out at the window's first minute, as it always did, and
// the run asks nothing about the spread: its history has no marker for it.
func TestNoSpreadSendsAtTheOpeningAndRecordsNoMarker(t *testing.T) {
	asked := 0
	calls := runLead(t, weekendSeries(0), friday10, "3f1c0a3e-0000-4000-8000-000000000001", func(e *testsuite.TestWorkflowEnvironment) {
		e.OnGetVersion(spreadChange, workflow.DefaultVersion, workflow.Version(1)).Run(func(mock.Arguments) { asked++ }).Return(workflow.Version(1))
	})
	require.Equal(t, []string{"intro", "deep-dive"}, stepsOf(calls))
	assert.True(t, monday9.Equal(calls[1].at), "sent at %s, want Monday 09:00", calls[1].at)
	assert.Zero(t, asked, "a run without a spread must not record a %q marker", spreadChange)
}

// A run that recorded no spread marker (its history predates the spread) keeps sending at the
// opening even once its sequence has a spread: a replay must decide as the run did.
func TestSpreadWaitsForItsVersion(t *testing.T) {
	calls := runLead(t, weekendSeries(2*time.Hour), friday10, "3f1c0a3e-0000-4000-8000-000000000001", func(e *testsuite.TestWorkflowEnvironment) {
		e.OnGetVersion(spreadChange, workflow.DefaultVersion, workflow.Version(1)).Return(workflow.DefaultVersion)
	})
	require.Len(t, calls, 2)
	assert.True(t, monday9.Equal(calls[1].at), "sent at %s, want Monday 09:00", calls[1].at)
}

// A step due inside its window is sent when due, spread or not: only sends that waited for the
// window are spread.
func TestSpreadLeavesAStepDueInsideTheWindowOnTime(t *testing.T) {
	seq := weekendSeries(2 * time.Hour)
	seq.Steps[1].Wait = 3*time.Hour + 17*time.Minute + 5*time.Second
	calls := runLead(t, seq, friday10, "3f1c0a3e-0000-4000-8000-000000000001")
	require.Len(t, calls, 2)
	assert.True(t, friday10.Equal(calls[0].at), "intro at %s", calls[0].at)
	assert.True(t, friday10.Add(seq.Steps[1].Wait).Equal(calls[1].at), "deep-dive at %s, want Friday 13:17:05", calls[1].at)
}

// A capture that wakes the lead while it waits for its slot leaves the slot where it was: it is
// not sent at once because it is now inside the window.
func TestSpreadSlotSurvivesASignal(t *testing.T) {
	seq := weekendSeries(2 * time.Hour)
	lead := ""
	for i := range 100 {
		// A lead whose slot is late enough to be woken inside the window before it.
		if id := fmt.Sprintf("3f1c0a3e-0000-4000-8000-%012d", i); seq.Window.SpreadOffset(id, seq.ID, "deep-dive") > 30*time.Minute {
			lead = id
			break
		}
	}
	require.NotEmpty(t, lead)
	slot := monday9.Add(seq.Window.SpreadOffset(lead, seq.ID, "deep-dive"))
	calls := runLead(t, seq, friday10, lead, func(e *testsuite.TestWorkflowEnvironment) {
		e.RegisterDelayedCallback(func() {
			e.SignalWorkflow(SignalCapture, Capture{Segment: "analytics", Stage: lifecycle.Lead})
		}, monday9.Add(15*time.Minute).Sub(friday10))
	})
	require.Equal(t, []string{"intro", "deep-dive"}, stepsOf(calls))
	assert.True(t, slot.Equal(calls[1].at), "sent at %s, want its slot %s", calls[1].at, slot)
}

// Over a few hundred leads and due times, with a window of one hour and a spread of two: a send
// is never before it is due, never outside the window, on time when due inside the window, and
// otherwise at the opening plus the lead's offset — or at the opening itself when the offset
// would leave the window.
func TestSpreadNeverLeavesTheWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 2026))
	seq := sequence.Sequence{
		ID:     "general-series",
		Window: sequence.Window{Cron: "* 9 * * MON-FRI", TimeZone: "Europe/Berlin", Spread: 2 * time.Hour},
		Steps:  []sequence.Step{{ID: "only", Template: "general-1", Subject: "one"}},
		Exit:   sequence.Exit{Unsubscribed: true},
	}
	first := time.Date(2026, 11, 2, 0, 0, 0, 0, berlin) // no change of daylight saving time in the month after
	inWindow := func(t time.Time) bool {
		t = t.In(berlin)
		return t.Hour() == 9 && t.Weekday() != time.Saturday && t.Weekday() != time.Sunday
	}
	// opening is the first minute of the window at or after t (t itself when inside).
	opening := func(t time.Time) time.Time {
		if inWindow(t) {
			return t
		}
		t = t.In(berlin)
		d := time.Date(t.Year(), t.Month(), t.Day(), 9, 0, 0, 0, berlin)
		for !d.After(t) || !inWindow(d) {
			d = d.AddDate(0, 0, 1)
		}
		return d
	}
	var spread, fallback, onTime int
	for i := range 300 {
		lead := fmt.Sprintf("lead-%04d-%08x", i, rng.Uint32())
		start := first.Add(time.Duration(rng.Int64N(int64(14 * day))).Truncate(time.Second))
		s := seq
		s.Steps = []sequence.Step{seq.Steps[0]}
		s.Steps[0].Wait = time.Duration(rng.Int64N(int64(3 * day))).Truncate(time.Second)
		due := start.Add(s.Steps[0].Wait)

		calls := runLead(t, s, start, lead)
		require.Len(t, calls, 1, "%s due %s", lead, due)
		got := calls[0].at
		require.True(t, inWindow(got), "%s due %s: sent at %s, outside the window", lead, due, got)
		require.False(t, got.Before(due), "%s due %s: sent early, at %s", lead, due, got)
		open := opening(due)
		want := open
		switch off := seq.Window.SpreadOffset(lead, seq.ID, "only"); {
		case open.Equal(due):
			onTime++
		case inWindow(open.Add(off)):
			want = open.Add(off)
			spread++
		default:
			fallback++
		}
		require.True(t, want.Equal(got), "%s due %s: sent at %s, want %s", lead, due, got, want)
	}
	// The draw exercised every case: on time, spread, and the fallback to the opening.
	assert.Positive(t, onTime)
	assert.Positive(t, spread)
	assert.Positive(t, fallback)
}

// The end of quiet hours is an opening too: a lead captured at night is mailed at 08:00 plus its
// offset, not with every other night's lead at 08:00 sharp.
func TestSpreadSpreadsTheEndOfQuietHours(t *testing.T) {
	seq := series("general-series", 1, 0)
	seq.Window.Spread = 2 * time.Hour
	start := time.Date(2026, 11, 24, 23, 0, 0, 0, berlin)
	e := newPolicyEnv(t, start, func(activities.PlanInput) activities.Plan {
		return activities.Plan{Segment: "general", Stage: lifecycle.Lead, Sequence: seq,
			QuietHours: &sequence.QuietHours{From: "20:00", To: "08:00"}}
	})
	e.run(t, 2*day)
	require.Equal(t, []string{"general-series/s1"}, e.sent)
	off := seq.Window.SpreadOffset("3f1c0a3e-0000-4000-8000-0000000000bb", seq.ID, "s1")
	require.NotZero(t, off, "this lead's offset must not be 0, or the test shows nothing")
	want := time.Date(2026, 11, 25, 8, 0, 0, 0, berlin).Add(off)
	assert.True(t, want.Equal(e.sentAt[0]), "sent at %s, want %s", e.sentAt[0].In(berlin), want)
}
