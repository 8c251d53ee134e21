package workflows

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
	"pgregory.net/rapid"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/score"
	"github.com/tendhq/tend/internal/sequence"
)

// TestInvariants drives the lead workflow through scripts generated at random — captures, opens
// and clicks by people and machines, site visits, hand-raises, unsubscribes, bounces, SMTP
// trouble, rep answers (in time, late, by the wrong rep, from an old link), lost deals, long
// silences, continue-as-new, activities that fail after they committed, and the live sequences of
// issue 9: published edits (a wait changed, a step removed or inserted, a subject changed),
// pauses and resumes of a series or a step, and goals reached — under the
// time-skipping test environment, with the activities backed by the in-memory store of
// model_test.go. After every script it checks each invariant of invariants below; a failure names
// the invariant, prints the (shrunk) script and rapid prints the seed to reproduce it:
//
//	go test -count=1 -run TestInvariants ./workflows/ -rapid.seed=N
//
// -rapid.checks sets the number of scripts (default invariantChecks, chosen so the test takes
// about a minute on two busy cores); -tend.invariant=name,… checks only the named invariants,
// which is how to get the minimal script of each failing one.
func TestInvariants(t *testing.T) {
	setRapidDefaults()
	only := map[string]bool{}
	for _, n := range strings.Split(*onlyInvariants, ",") {
		if n = strings.TrimSpace(n); n != "" {
			only[n] = true
		}
	}
	for n := range only {
		if !slices.ContainsFunc(invariants, func(i invariant) bool { return i.name == n }) {
			t.Fatalf("-tend.invariant: no invariant %q", n)
		}
	}
	rapid.Check(t, func(t *rapid.T) {
		sc := rapid.Custom(genScript).Draw(t, "script")
		r := runScript(sc)
		// An activity of the cancelled run may still be finishing on its own goroutine.
		r.m.mu.Lock()
		defer r.m.mu.Unlock()
		for _, inv := range invariants {
			if (len(only) == 0 && knownBugs[inv.name] == "") || only[inv.name] {
				inv.check(t, r)
			}
		}
	})
}

// invariantChecks is the default number of scripts per run. A script costs about 6.5 ms of CPU
// (500 in 3.2 s user time); on this project's 2-core machine shared with six other jobs, 4,000
// took 21–52 s of wall time depending on the load. 3,000 keeps the test near 40 s at worst, with
// room under the 90 s budget for rapid's shrinking (at most 30 s) when a script fails.
const invariantChecks = 3000

// ciSeed is the seed of the scripts CI checks.
const ciSeed = 20261201

var onlyInvariants = flag.String("tend.invariant", "", "TestInvariants: check only these invariants (comma-separated names)")

// setRapidDefaults makes invariantChecks the default of -rapid.checks and leaves fail files out of
// testdata (the seed reproduces a failure), unless the flags or RAPID_CHECKS say otherwise.
func setRapidDefaults() {
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["rapid.checks"] && os.Getenv("RAPID_CHECKS") == "" {
		n := invariantChecks
		if raceEnabled {
			n /= 10 // the race detector makes a script about 5 times slower; make race checks the harness
		}
		_ = flag.Set("rapid.checks", fmt.Sprint(n))
	}
	if !set["rapid.seed"] && os.Getenv("CI") != "" {
		// CI's gate is reproducible: the same scripts on every run. Runs elsewhere draw a new seed
		// each time and so keep exploring; a failure there prints its seed.
		_ = flag.Set("rapid.seed", fmt.Sprint(ciSeed))
	}
	if !set["rapid.nofailfile"] {
		_ = flag.Set("rapid.nofailfile", "true")
	}
}

// --- scripts ---

// act is one thing that happens to the lead, Gap after the previous one.
type act struct {
	Gap  time.Duration
	Kind string
	// Interest of a capture or of the content clicked: analytics (the lead's), security (another
	// segment's) or newsletter (the default segment's).
	Interest string
	TimeZone string
	Machine  bool
	Pricing  bool
	// N temporary SMTP failures, or an outage of Outage.
	N      int
	Outage time.Duration
	// A rep's answer: Action, Reason; Who answers (assigned, stranger, previous) and whether it is
	// the link of an earlier handoff (Old).
	Action, Reason, Who string
	Old                 bool
	// Activity that fails after it committed.
	Activity string
	// Live sequences. Series is the series an edit or a pause is of ("current": the one the lead
	// runs when it happens); Edit what an edit does (wait, remove, insert, subject at step Index,
	// or drop the series' segment)
	// (modulo the steps; in the current series counted from the step before the lead's next, so
	// that edits around its position are common), Wait the new wait of a changed or inserted step;
	// Whole pauses the whole series; a resume resumes the pause that holds the lead (Index 0 or 1,
	// if one does) or the Index-th active pause, with a ramp slot Ramp after now.
	Series, Edit string
	Index        int
	Wait         time.Duration
	Whole        bool
	Ramp         time.Duration
}

const (
	kCapture  = "capture"
	kOpen     = "open"
	kClick    = "click"
	kPage     = "page_view"
	kDemo     = "demo_request"
	kUnsub    = "unsubscribe"
	kBounce   = "bounce_next"
	kTemp     = "smtp_4xx"
	kOutage   = "smtp_outage"
	kDecide   = "decide"
	kLost     = "deal_lost"
	kFault    = "fail_after_commit"
	kNotice   = "notice_template_broken"
	kCAN      = "continue_as_new"
	kSilence  = "silence" // nothing but time: long gaps are drawn for it
	kEdit     = "edit"
	kPause    = "pause"
	kResume   = "resume"
	kGoal     = "goal_pricing_view" // a human look at the pricing page: the analytics series' goal
	leadModel = "3f1c0a3e-0000-4000-8000-00000000cafe"
)

type script struct {
	Start time.Time
	// Interest and TimeZone of the first capture.
	Interest string
	TimeZone string
	Acts     []act
}

// actKinds are the kinds of act, as often as a script should draw them: rep answers and
// hand-raises often (sales paths need both), unsubscribes and broken templates rarely (either
// ends the interesting part).
var actKinds = weighted(map[string]int{
	kCapture: 2, kOpen: 3, kClick: 4, kPage: 3, kDemo: 3, kUnsub: 1, kBounce: 1, kTemp: 2, kOutage: 1,
	kDecide: 7, kLost: 2, kFault: 3, kNotice: 1, kCAN: 2, kSilence: 2,
})

// liveKinds are the acts of live sequences, drawn instead of actKinds for about one act in six,
// so that the paths without them stay as well explored as before: edits most often, pauses
// (most of which carry their own resume, see genScript), resumes of a pause left open, and a
// goal reached (rare: it ends the analytics series; a pricing page view, half of page_view,
// reaches it too).
var liveKinds = weighted(map[string]int{kEdit: 4, kPause: 3, kResume: 1, kGoal: 1})

// editsDropSegments lets edits drop a series' segment. It is off until the defect of the known
// script issue9-queued-segment-dropped-spins is fixed: with it on, TestInvariants finds that
// defect (never-fails) in most runs. The known script issue9-dropped-segment-finishes-then-follows
// checks the path that works.
var editsDropSegments = true

// editSeries are the series an edit or a pause may be of: most often the one the lead runs.
var editSeries = []string{"current", "current", "current", "analytics-series", "security-series", "general-series", "reengage-series"}

func weighted(w map[string]int) []string {
	var out []string
	for k, n := range w {
		for range n {
			out = append(out, k)
		}
	}
	slices.Sort(out) // a fixed order, so that a seed always draws the same script
	return out
}

func genAct(t *rapid.T) act {
	kinds := actKinds
	if rapid.IntRange(0, 4).Draw(t, "live") == 4 { // rapid shrinks toward 0: toward the old acts
		kinds = liveKinds
	}
	a := act{Kind: rapid.SampledFrom(kinds).Draw(t, "kind")}
	switch rapid.IntRange(0, 9).Draw(t, "gap_kind") {
	case 0:
		a.Gap = 0
	case 1, 2, 3:
		a.Gap = time.Duration(rapid.IntRange(1, 59).Draw(t, "minutes")) * time.Minute
	case 4, 5, 6:
		a.Gap = time.Duration(rapid.IntRange(1, 23).Draw(t, "hours")) * time.Hour
	case 7, 8:
		a.Gap = time.Duration(rapid.IntRange(1, 6).Draw(t, "days")) * day
	default:
		a.Gap = time.Duration(rapid.IntRange(7, 60).Draw(t, "long_days")) * day
	}
	interests := []string{"analytics", "security", "newsletter"}
	switch a.Kind {
	case kCapture:
		a.Interest = rapid.SampledFrom(interests).Draw(t, "interest")
		a.TimeZone = rapid.SampledFrom([]string{"", "", "Europe/Berlin", "America/New_York", "Asia/Tokyo"}).Draw(t, "tz")
	case kOpen:
		a.Machine = rapid.Bool().Draw(t, "machine")
	case kClick:
		a.Machine = rapid.IntRange(0, 3).Draw(t, "machine") == 3
		a.Interest = rapid.SampledFrom(interests).Draw(t, "interest")
	case kPage:
		a.Pricing = rapid.Bool().Draw(t, "pricing")
	case kTemp:
		a.N = rapid.IntRange(1, 6).Draw(t, "failures")
	case kOutage:
		a.Outage = time.Duration(rapid.SampledFrom([]int{5, 20, 40, 90, 6 * 60, 36 * 60}).Draw(t, "outage_minutes")) * time.Minute
	case kDecide:
		a.Action = rapid.SampledFrom([]string{"accept", "reject"}).Draw(t, "action")
		if a.Action == "reject" {
			a.Reason = rapid.SampledFrom(RejectReasons).Draw(t, "reason")
		}
		a.Who = rapid.SampledFrom([]string{"assigned", "assigned", "assigned", "assigned", "stranger", "previous"}).Draw(t, "who")
		a.Old = rapid.IntRange(0, 4).Draw(t, "old") == 4 // rapid shrinks toward 0: toward the current link
	case kFault:
		a.Activity = rapid.SampledFrom([]string{"Rescore", "SendStep", "Assign", "Lapse", "Respond"}).Draw(t, "activity")
	case kEdit:
		a.Series = rapid.SampledFrom(editSeries).Draw(t, "series")
		edits := []string{"wait", "remove", "insert", "subject"}
		if editsDropSegments {
			edits = append(edits, "drop") // the series' segment (the analytics or security one)
		}
		a.Edit = rapid.SampledFrom(edits).Draw(t, "edit")
		a.Index = rapid.IntRange(0, 3).Draw(t, "index")
		a.Wait = rapid.SampledFrom([]time.Duration{0, 2 * time.Hour, day, 2 * day, 4 * day, 9 * day}).Draw(t, "wait")
	case kPause:
		a.Series = rapid.SampledFrom(editSeries).Draw(t, "series")
		a.Whole = rapid.IntRange(0, 2).Draw(t, "whole") == 2
		a.Index = rapid.IntRange(0, 3).Draw(t, "index")
		a.Wait = rapid.SampledFrom([]time.Duration{0, 6 * time.Hour, day, 3 * day, 8 * day}).Draw(t, "pause_for")
		a.Ramp = time.Duration(rapid.IntRange(0, 60).Draw(t, "ramp_minutes")) * time.Minute
	case kResume:
		a.Index = rapid.IntRange(0, 3).Draw(t, "index")
		a.Ramp = time.Duration(rapid.IntRange(0, 60).Draw(t, "ramp_minutes")) * time.Minute
	}
	return a
}

func genScript(t *rapid.T) script {
	base := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC) // a Friday
	sc := script{
		Start:    base.Add(time.Duration(rapid.IntRange(0, 7*24*60-1).Draw(t, "start_minute")) * time.Minute),
		Interest: rapid.SampledFrom([]string{"analytics", "security"}).Draw(t, "interest"),
		TimeZone: rapid.SampledFrom([]string{"", "", "Europe/Berlin", "America/New_York"}).Draw(t, "time_zone"),
	}
	acts := rapid.SliceOfN(rapid.Custom(genAct), 0, 24).Draw(t, "acts")
	for _, a := range acts {
		sc.Acts = append(sc.Acts, a)
		if a.Kind == kPause && a.Wait > 0 {
			// A pause for a while: its resume (of the pause holding the lead) follows at once.
			sc.Acts = append(sc.Acts, act{Gap: a.Wait, Kind: kResume, Ramp: a.Ramp})
		}
	}
	return sc
}

// actSpacing is the least virtual time between two acts (and after a run starts): acts "in the
// same instant" are this far apart.
const actSpacing = 5 * time.Second

// tail is how long the script's end is watched after its last act: long enough for every series,
// the re-engagement and sunset, and any SLA clock to run out.
const tail = 50 * day

func (sc script) times() []time.Time {
	out := make([]time.Time, len(sc.Acts))
	at := sc.Start
	for i, a := range sc.Acts {
		at = at.Add(a.Gap)
		out[i] = at
	}
	return out
}

func (sc script) end() time.Time {
	if ts := sc.times(); len(ts) > 0 {
		return ts[len(ts)-1].Add(tail)
	}
	return sc.Start.Add(tail)
}

func (sc script) interest() string {
	if sc.Interest == "" {
		return "analytics"
	}
	return sc.Interest
}

func clock(t time.Time) string {
	return t.In(berlin).Format("Mon 02 Jan 15:04") + " Berlin"
}

// GoString is what rapid prints for a drawn act.
func (a act) GoString() string { return "+" + shortDur(a.Gap) + " " + a.String() }

func (a act) String() string {
	s := a.Kind
	switch a.Kind {
	case kCapture:
		s += " " + a.Interest
		if a.TimeZone != "" {
			s += " tz=" + a.TimeZone
		}
	case kOpen:
		s += map[bool]string{true: " (machine)", false: " (human)"}[a.Machine]
	case kClick:
		s += " on " + a.Interest + " content" + map[bool]string{true: " (machine)", false: " (human)"}[a.Machine]
	case kPage:
		if a.Pricing {
			s += " pricing"
		}
	case kTemp:
		s += fmt.Sprintf(" ×%d", a.N)
	case kOutage:
		s += " for " + shortDur(a.Outage)
	case kDecide:
		s += " " + a.Action
		if a.Reason != "" {
			s += "/" + a.Reason
		}
		s += " by " + a.Who + " rep"
		if a.Old {
			s += " (old link: of the first earlier handoff, if any)"
		}
	case kFault:
		s += " " + a.Activity
	case kEdit:
		s += fmt.Sprintf(" %s: %s at step index %d", a.Series, a.Edit, a.Index)
		if a.Edit == "wait" || a.Edit == "insert" {
			s += " wait " + shortDur(a.Wait)
		}
	case kPause:
		if a.Whole {
			s += " " + a.Series + " (whole series)"
		} else {
			s += fmt.Sprintf(" %s step index %d", a.Series, a.Index)
		}
		if a.Wait > 0 {
			s += " for " + shortDur(a.Wait)
		}
	case kResume:
		s += fmt.Sprintf(" active pause %d (mod), slot +%s", a.Index, shortDur(a.Ramp))
	}
	return s
}

func (sc script) String() string {
	b := &strings.Builder{}
	tz := sc.TimeZone
	if tz == "" {
		tz = "none"
	}
	fmt.Fprintf(b, "  %s  start: capture %s (tz %s)\n", clock(sc.Start), sc.interest(), tz)
	for i, at := range sc.times() {
		fmt.Fprintf(b, "  %s  +%-8s %s\n", clock(at), shortDur(sc.Acts[i].Gap), sc.Acts[i])
	}
	fmt.Fprintf(b, "  %s  end\n", clock(sc.end()))
	return b.String()
}

// GoString is what rapid prints for the drawn script.
func (sc script) GoString() string { return "\n" + sc.String() }

func shortDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%day == 0:
		return fmt.Sprintf("%dd", d/day)
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return fmt.Sprintf("%dm", d/time.Minute)
}

// --- running a script ---

// runRec is one run (continue-as-new generation) of the workflow.
type runRec struct {
	start, end time.Time
	// seen is the latest virtual time the run was seen at (by an activity, a listener or an act):
	// when it ends, the test environment's clock may already have run on to its next timer.
	seenMu  sync.Mutex
	seen    time.Time
	err     error
	events  int // estimated history events
	signals int
	updates int
	// sends are the signals and updates the acts sent, with when.
	sends []sentRec
}

type sentRec struct {
	at   time.Time
	send func(*testsuite.TestWorkflowEnvironment)
}

// decisionRec is one rep answer the script sent through the decide update.
type decisionRec struct {
	at       time.Time
	d        Decision
	targetID int64 // the handoff row the answer is meant for (its link), 0 if none
	current  bool  // the target was the open row when the answer was sent
	outcome  string
	err      error
	done     bool
}

type runner struct {
	sc        script
	m         *model
	runs      []*runRec
	decisions []*decisionRec
	final     *LeadState
	canAsked  []time.Time
	// count records signals and updates sent to the current run.
	count func(signals, updates int)
}

// historySuggestAt is where the test's estimate of the history asks for continue-as-new, the
// server's 4,096 events scaled down so that long scripts exercise it; historyLimit is the server's
// hard limit (51,200) scaled alike.
const (
	historySuggestAt  = 150
	historyHardLimit  = historySuggestAt * 51200 / 4096
	maxRunsPerScript  = 60
	signalLimitPerRun = 10000
	updateLimitPerRun = 2000
)

// see notes that the run was at t and returns the latest time it was seen at.
func (rec *runRec) see(t time.Time) time.Time {
	rec.seenMu.Lock()
	defer rec.seenMu.Unlock()
	if t.After(rec.seen) {
		rec.seen = t
	}
	return rec.seen
}

func runScript(sc script) *runner {
	r := &runner{sc: sc}
	r.m = newModel(func() time.Time { return sc.Start }) // the API stores the lead before the workflow starts
	r.m.capture(sc.interest(), sc.TimeZone)
	times := sc.times()
	next := 0 // the next act to run
	in := LeadInput{LeadID: leadModel}
	start := sc.Start
	var resend []func(*testsuite.TestWorkflowEnvironment) // what the last run may not have seen
	for len(r.runs) < maxRunsPerScript {
		env := r.newEnv(start)
		rec := &runRec{start: start, seen: start}
		r.m.clock = func() time.Time { return rec.see(env.Now()) }
		r.listen(env, rec)
		// Each act schedules the next, so that acts in the same instant run in script order (the
		// test environment does not order callbacks due at the same time); and at least actSpacing
		// later: while an activity runs the test environment fires a due callback once as much
		// wall time has passed, so a shorter delay races with the workflow's own work.
		var schedule func(i int)
		schedule = func(i int) {
			if i >= len(sc.Acts) {
				return
			}
			env.RegisterDelayedCallback(func() {
				if env.IsWorkflowCompleted() {
					return // the run continued as new: the next run does this act
				}
				next = i + 1
				at := rec.see(env.Now())
				if send := r.do(env, sc.Acts[i]); send != nil {
					send(env)
					rec.sends = append(rec.sends, sentRec{at: at, send: send})
				}
				schedule(i + 1)
			}, max(actSpacing, times[i].Sub(env.Now())))
		}
		if len(r.runs) == 0 {
			// The capture that created the lead signals first (signal-with-start).
			env.RegisterDelayedCallback(func() {
				r.count(1, 0)
				env.SignalWorkflow(SignalCapture, Capture{Segment: r.m.cat.SegmentFor([]string{sc.interest()}).ID, TimeZone: sc.TimeZone})
				schedule(next)
			}, actSpacing)
		} else {
			env.RegisterDelayedCallback(func() {
				for _, send := range resend {
					send(env)
				}
				schedule(next)
			}, actSpacing)
		}
		env.RegisterDelayedCallback(func() {
			if env.IsWorkflowCompleted() {
				return
			}
			if v, err := env.QueryWorkflow(QueryState); err == nil {
				var st LeadState
				if v.Get(&st) == nil {
					r.final = &st
				}
			}
			env.CancelWorkflow()
		}, sc.end().Sub(start))
		env.ExecuteWorkflow(Lead, in)
		rec.end, rec.err = rec.see(time.Time{}), env.GetWorkflowError()
		r.runs = append(r.runs, rec)
		var can *workflow.ContinueAsNewError
		if !errors.As(rec.err, &can) {
			break
		}
		var nin LeadInput
		if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &nin); err != nil {
			r.runs[len(r.runs)-1].err = fmt.Errorf("continue-as-new input: %w", err)
			break
		}
		in, start = nin, rec.end
		resend = resend[:0]
		for _, sr := range rec.sends {
			if sr.at.Equal(rec.end) {
				resend = append(resend, sr.send)
			}
		}
	}
	return r
}

var discardLogger = tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))

// newEnv is a test environment whose activities are the model's. Rescore and Plan run as local
// activities, which the test environment does not retry: the glue retries them as the worker
// would, in place, so that a retry after commit happens as it does in production.
func (r *runner) newEnv(start time.Time) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(discardLogger)
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(start)
	env.RegisterWorkflow(Lead)
	var leads *activities.Leads
	var email *activities.Email
	var sales *activities.Sales
	for _, a := range []any{leads.Plan, leads.Rescore, leads.Follow, email.SendStep, sales.Assign, sales.Lapse, sales.Remind, sales.Respond} {
		env.RegisterActivity(a)
	}
	m := r.m
	env.OnActivity(leads.Plan, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PlanInput) (activities.Plan, error) {
			return localRetry(func() (activities.Plan, error) { return m.Plan(in) })
		})
	env.OnActivity(leads.Rescore, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RescoreInput) (activities.RescoreResult, error) {
			return localRetry(func() (activities.RescoreResult, error) { return m.Rescore(in) })
		})
	env.OnActivity(leads.Follow, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FollowInput) (activities.FollowResult, error) {
			return localRetry(func() (activities.FollowResult, error) { return m.Follow(in) })
		})
	env.OnActivity(email.SendStep, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SendInput) (activities.SendResult, error) { return m.SendStep(in) })
	env.OnActivity(sales.Assign, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AssignInput) (activities.Assignment, error) { return m.Assign(in) })
	env.OnActivity(sales.Lapse, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.LapseInput) (activities.LapseResult, error) { return m.Lapse(in) })
	env.OnActivity(sales.Remind, mock.Anything, mock.Anything).Return(
		func(_ context.Context, id int64) error { return m.Remind(id) })
	env.OnActivity(sales.Respond, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RespondInput) (activities.RespondResult, error) {
			return m.Respond(in)
		})
	return env
}

// localRetry retries a local activity's retryable errors, as the worker does.
func localRetry[T any](f func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := f()
		var appErr *temporal.ApplicationError
		if err == nil || (errors.As(err, &appErr) && appErr.NonRetryable()) || attempt == 10 {
			return v, err
		}
	}
}

// listen estimates the run's history (a workflow task is three events, a timer two or three, an
// activity three, a local activity's marker one) and asks for continue-as-new past
// historySuggestAt, as the server does past 4,096 events.
func (r *runner) listen(env *testsuite.TestWorkflowEnvironment, rec *runRec) {
	rec.events = 3 + 3 // started, first workflow task
	add := func(n int) {
		rec.see(env.Now())
		rec.events += n
		env.SetCurrentHistoryLength(rec.events)
		if rec.events >= historySuggestAt {
			env.SetContinueAsNewSuggested(true)
		}
	}
	env.SetOnTimerScheduledListener(func(string, time.Duration) { add(1) })
	env.SetOnTimerFiredListener(func(string) { add(1 + 3) })
	env.SetOnTimerCanceledListener(func(string) { add(1) })
	env.SetOnActivityCompletedListener(func(*activity.Info, converter.EncodedValue, error) { add(3 + 3) })
	env.SetOnLocalActivityCompletedListener(func(*activity.Info, converter.EncodedValue, error) { add(1) })
	r.count = func(signals, updates int) {
		rec.signals += signals
		rec.updates += updates
		add(signals*(1+3) + updates*(2+3))
	}
}

// do runs one act: what the API, the tracker, the SMTP server or the rep does, then the signal or
// update the server would send.
//
// It returns what it sent to the workflow, to be sent again to the next run when the run
// continued as new in the same instant: the server does not let a run continue as new over a
// signal it has not seen, the test environment does.
func (r *runner) do(env *testsuite.TestWorkflowEnvironment, a act) (send func(*testsuite.TestWorkflowEnvironment)) {
	m := r.m
	engaged := func(env *testsuite.TestWorkflowEnvironment) {
		r.count(1, 0)
		env.SignalWorkflow(SignalEngaged, Engaged{Events: 1})
	}
	switch a.Kind {
	case kCapture:
		m.capture(a.Interest, a.TimeZone)
		c := Capture{Segment: m.cat.SegmentFor([]string{a.Interest}).ID, TimeZone: a.TimeZone}
		return func(env *testsuite.TestWorkflowEnvironment) {
			r.count(1, 0)
			env.SignalWorkflow(SignalCapture, c)
		}
	case kOpen:
		m.addEvent(score.EventOpen, nil, a.Machine, m.lastSendID())
		return engaged
	case kClick:
		m.addEvent(score.EventClick, []string{a.Interest}, a.Machine, m.lastSendID())
		return engaged
	case kPage:
		tags := []string{"blog"}
		if a.Pricing {
			tags = []string{"pricing"}
		}
		m.addEvent(score.EventPageView, tags, false, "")
		return engaged
	case kDemo:
		m.addEvent(score.EventDemoRequest, nil, false, "")
		return engaged
	case kUnsub:
		m.unsubscribe()
		return engaged
	case kBounce:
		m.arm(func(f *mFaults) { f.bounceNext = true })
	case kTemp:
		m.arm(func(f *mFaults) { f.sendTemp += a.N })
	case kOutage:
		until := env.Now().Add(a.Outage)
		m.arm(func(f *mFaults) { f.outageUntil = until })
	case kFault:
		m.arm(func(f *mFaults) { f.commitThenFail[a.Activity]++ })
	case kNotice:
		m.arm(func(f *mFaults) { f.brokenNotice = true })
	case kLost:
		if m.lostDeal() {
			return engaged // the API notifies the workflow of the new stage
		}
	case kCAN:
		r.canAsked = append(r.canAsked, env.Now())
		env.SetContinueAsNewSuggested(true)
		return engaged // something must wake the workflow for it to notice, as on the server
	case kDecide:
		return r.decide(env, a)
	case kGoal:
		m.addEvent(score.EventPageView, []string{"pricing"}, false, "")
		return engaged
	case kEdit:
		return r.edit(env, a)
	case kPause:
		r.pause(env, a)
	case kResume:
		return r.resume(env, a)
	}
	return nil
}

// state is the workflow's state now, nil if the query fails.
func (r *runner) state(env *testsuite.TestWorkflowEnvironment) *LeadState {
	v, err := env.QueryWorkflow(QueryState)
	if err != nil {
		return nil
	}
	var st LeadState
	if v.Get(&st) != nil {
		return nil
	}
	return &st
}

// series resolves an act's series: "current" is the one the lead runs (or was last enrolled in).
func (r *runner) series(st *LeadState, which string) string {
	if which != "current" {
		return which
	}
	if st != nil && st.Sequence != nil && st.Status == StatusRunning {
		return st.Sequence.ID
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	if n := len(r.m.enrolls); n > 0 {
		return r.m.enrolls[n-1].sequence.ID
	}
	return r.m.cat.SegmentFor([]string{r.sc.interest()}).Sequence.ID
}

// edit publishes a version of the catalog with one edit of a series, and tells the lead, as
// `tend apply` does for every lead running the series' segment (and the others: a lead follows
// only its own sequence).
func (r *runner) edit(env *testsuite.TestWorkflowEnvironment, a act) func(*testsuite.TestWorkflowEnvironment) {
	st := r.state(env)
	seqID := r.series(st, a.Series)
	m := r.m
	m.mu.Lock()
	defer m.mu.Unlock()
	old := sequenceIn(m.cat, seqID)
	if old == nil {
		return nil
	}
	e := mEdit{at: m.now(), seq: seqID, kind: a.Edit, state: st, old: *old}
	e.old.Steps = slices.Clone(old.Steps)
	next := m.version() + 1
	at := a.Index
	if runningAt(st, seqID) {
		at += st.NextStep - 1 + len(old.Steps)
	}
	e.version, e.found = m.publish(seqID, func(c *sequence.Catalog, s *sequence.Sequence) {
		n := len(s.Steps)
		i := at % n
		if e.kind == "remove" && n == 1 {
			e.kind = "subject" // a series keeps at least one step
		}
		if g, ok := c.SegmentOf(seqID); e.kind == "drop" && (!ok || g.ID == c.DefaultSegment) {
			e.kind = "subject" // only a segment's series, and not the default segment's, is dropped
		}
		switch e.kind {
		case "wait":
			s.Steps[i].Wait, e.stepID = a.Wait, s.Steps[i].ID
		case "remove":
			e.stepID = s.Steps[i].ID
			s.Steps = slices.Delete(s.Steps, i, i+1)
		case "insert":
			e.stepID = fmt.Sprintf("n%d", next)
			step := sequence.Step{ID: e.stepID, Template: seqID, Subject: seqID + " " + e.stepID, Wait: a.Wait}
			s.Steps = slices.Insert(s.Steps, at%(n+1), step)
		case "subject":
			e.stepID = s.Steps[i].ID
			s.Steps[i].Subject = fmt.Sprintf("%s %s as of version %d", seqID, e.stepID, next)
		case "drop":
			c.Segments = slices.DeleteFunc(c.Segments, func(g sequence.Segment) bool { return g.Sequence.ID == seqID })
		}
	})
	if s := sequenceIn(m.cat, seqID); s != nil {
		e.new = *s
	}
	e.ord = m.tick()
	m.edits = append(m.edits, e)
	c := ContentChange{Version: e.version}
	return func(env *testsuite.TestWorkflowEnvironment) {
		r.count(1, 0)
		env.SignalWorkflow(SignalContent, c)
	}
}

// pause pauses a series or one of its steps. Leads are not told: a send that falls due meets the
// pause and holds the lead.
func (r *runner) pause(env *testsuite.TestWorkflowEnvironment, a act) {
	st := r.state(env)
	seqID := r.series(st, a.Series)
	m := r.m
	m.mu.Lock()
	defer m.mu.Unlock()
	s := sequenceIn(m.cat, seqID)
	if s == nil {
		return
	}
	p := &mPause{seq: seqID, at: m.now()}
	if !a.Whole {
		at := a.Index
		if runningAt(st, seqID) {
			at = st.NextStep + max(a.Index-1, 0) // the lead's next step most often
		}
		p.step = s.Steps[at%len(s.Steps)].ID
	}
	if m.paused[p.seq+"/"+p.step] {
		return
	}
	m.paused[p.seq+"/"+p.step] = true
	p.ord = m.tick()
	m.pauses = append(m.pauses, p)
}

// resume resumes one of the active pauses and tells the lead, if its held send is paused no
// more, with its slot in the ramp.
func (r *runner) resume(env *testsuite.TestWorkflowEnvironment, a act) func(*testsuite.TestWorkflowEnvironment) {
	st := r.state(env)
	m := r.m
	m.mu.Lock()
	defer m.mu.Unlock()
	var active []*mPause
	for _, p := range m.pauses {
		if p.resumedAt.IsZero() {
			active = append(active, p)
		}
	}
	if len(active) == 0 {
		return nil
	}
	p := active[a.Index%len(active)]
	if a.Index < 2 {
		for _, q := range active {
			for k := range m.held {
				if q.seq == k.seq && (q.step == "" || q.step == k.step) {
					p = q
				}
			}
		}
	}
	delete(m.paused, p.seq+"/"+p.step)
	p.resumedAt, p.resumeOrd = m.now(), m.tick()
	var keys []sendKey
	for k := range m.held {
		if !m.isPaused(k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.SortFunc(keys, func(a, b sendKey) int { return strings.Compare(a.seq+"/"+a.step, b.seq+"/"+b.step) })
	nb := m.now().Add(a.Ramp)
	for _, k := range keys {
		m.resumes = append(m.resumes, mResume{key: k, at: m.now(), ord: m.tick(), notBefore: nb, state: st})
	}
	c := ContentChange{Resume: true, NotBefore: nb}
	return func(env *testsuite.TestWorkflowEnvironment) {
		r.count(1, 0)
		env.SignalWorkflow(SignalContent, c)
	}
}

// decide sends a rep's answer. The rep and the handoff it is meant for come from the model: the
// open handoff's rep, a stranger, or the rep the handoff was taken from (or who had an earlier
// handoff of the lead); an old link is meant for an earlier handoff.
func (r *runner) decide(env *testsuite.TestWorkflowEnvironment, a act) func(*testsuite.TestWorkflowEnvironment) {
	m := r.m
	m.mu.Lock()
	var target, prev *mHandoff
	if n := len(m.handoffs); n > 0 {
		target = m.handoffs[n-1]
		if n > 1 {
			prev = m.handoffs[n-2]
		}
	}
	current := target != nil && target.answer == nil
	if a.Old && target != nil {
		for _, h := range m.handoffs {
			if h.seq < target.seq {
				target, current = h, false
				break
			}
		}
	}
	rep := "rep-without-a-link" // no handoff yet: nobody has a link
	switch {
	case a.Who == "stranger":
		rep = "rep-nobody"
	case a.Who == "previous" && prev != nil:
		rep = prev.repID
	case target != nil:
		rep = target.repID
	}
	m.mu.Unlock()
	rec := &decisionRec{at: env.Now(), d: Decision{Action: a.Action, RepID: rep, Reason: a.Reason, Note: "from the script"}, current: current}
	if target != nil {
		rec.targetID = target.id
	}
	stampHandoff(&rec.d, target)
	r.decisions = append(r.decisions, rec)
	n, tries := len(r.decisions), 0
	return func(env *testsuite.TestWorkflowEnvironment) {
		if rec.done {
			return
		}
		tries++
		r.count(0, 1)
		env.UpdateWorkflow(UpdateDecide, fmt.Sprintf("decide-%d-%d", n, tries), &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { rec.err, rec.done = err, true },
			OnComplete: func(v any, err error) {
				rec.err, rec.done = err, true
				if res, ok := v.(DecisionResult); ok {
					rec.outcome = res.Outcome
				}
			},
		}, rec.d)
	}
}

// stampHandoff puts the handoff a rep's link is for into the decision, when Decision can carry it
// (a field HandoffID int64 or HandoffSeq/Seq int). Adapt it to the field the fix of issue 8 #8 adds.
func stampHandoff(d *Decision, h *mHandoff) {
	if h == nil {
		return
	}
	v := reflect.ValueOf(d).Elem()
	if f := v.FieldByName("HandoffID"); f.IsValid() && f.CanSet() && f.Kind() == reflect.Int64 {
		f.SetInt(h.id)
	}
	for _, name := range []string{"HandoffSeq", "Seq"} {
		if f := v.FieldByName(name); f.IsValid() && f.CanSet() && f.Kind() == reflect.Int {
			f.SetInt(int64(h.seq))
		}
	}
}

// --- the invariants ---

// failer is what a check reports to: a *rapid.T in TestInvariants, a *testing.T for a fixed script.
type failer interface {
	Helper()
	Fatalf(format string, args ...any)
}

type invariant struct {
	name  string
	check func(t failer, r *runner)
}

// knownBugs are the invariants a known, unfixed defect of the workflow breaks, with the defect:
// TestInvariants leaves them out unless -tend.invariant names them, and their scripts in
// knownScripts are skipped. Fixing the defect means deleting its line here.
var knownBugs = map[string]string{}

// invariants are checked in this order after every script; each reports from its own line, so
// that rapid shrinks a failure to a minimal script failing the same invariant.
var invariants = []invariant{
	{"never-fails", checkNeverFails},
	{"history-limits", checkHistoryLimits},
	{"send-window", checkSendWindow},
	{"quiet-hours", checkQuietHours},
	{"frequency-cap", checkFrequencyCap},
	{"no-mail-after-stop", checkNoMailAfterStop},
	{"due-steps-once", checkDueStepsOnce},
	{"handoff-reaches-rep", checkHandoffReachesRep},
	{"one-sla-clock", checkOneSLAClock},
	{"one-escalation-per-lapse", checkOneEscalationPerLapse},
	{"recycled-qualifies-anew", checkRecycledQualifiesAnew},
	{"answers-act-on-their-handoff", checkAnswersActOnTheirHandoff},
	{"paused-never-mailed", checkPausedNeverMailed},
	{"held-keeps-its-place", checkHeldKeepsItsPlace},
	{"goal-ends-the-series", checkGoalEndsTheSeries},
	{"goal-not-reenrolled", checkGoalNotReenrolled},
	{"edit-never-retroactive", checkEditNeverRetroactive},
	{"edited-steps-due", checkEditedStepsDue},
	{"resumed-at-slot", checkResumedAtSlot},
}

func report(t failer, r *runner, name string, violations []string) {
	t.Helper()
	if len(violations) > 0 {
		t.Fatalf("invariant %s violated:\n  %s\nscript:\n%s%s", name, strings.Join(violations, "\n  "), r.sc, r.summary())
	}
}

// summary is what happened, for a failure's report.
func (r *runner) summary() string {
	m := r.m
	b := &strings.Builder{}
	b.WriteString("what happened:\n")
	for i, run := range r.runs {
		fmt.Fprintf(b, "  run %d %s → %s: ~%d events, %v\n", i+1, clock(run.start), clock(run.end), run.events, run.err)
	}
	for _, e := range m.enrolls {
		kind := "enrolled"
		if e.expected {
			kind = "owed"
		}
		fmt.Fprintf(b, "  %s  %s %s (%s)\n", clock(e.at), kind, e.sequence.ID, e.why)
	}
	for _, ml := range m.mails {
		fmt.Fprintf(b, "  %s  mail %s/%s (decided %s)\n", clock(ml.at), ml.key.seq, ml.key.step, clock(ml.firstAttempt))
	}
	for _, s := range m.stages {
		fmt.Fprintf(b, "  %s  stage %s → %s (%s)\n", clock(s.at), s.from, s.to, s.why)
	}
	for _, h := range m.handoffs {
		fmt.Fprintf(b, "  %s  handoff %d seq %d assignment %d to %s, due %s, lapses %d", clock(h.openedAt), h.id, h.seq, h.assignment, h.repID,
			clock(h.dueAt), len(h.lapses))
		if h.answer != nil {
			fmt.Fprintf(b, ", answered %s by %s at %s", h.answer.action, h.answer.repID, clock(h.answer.at))
		}
		b.WriteString("\n")
	}
	for _, d := range r.decisions {
		fmt.Fprintf(b, "  %s  decide %s by %s for handoff %d → %s %v\n", clock(d.at), d.d.Action, d.d.RepID, d.targetID, d.outcome, d.err)
	}
	for _, e := range m.edits {
		fmt.Fprintf(b, "  %s  version %d: %s %s %s → steps %s", clock(e.at), e.version, e.seq, e.kind, e.stepID, stepIDs(e.new.Steps))
		if e.state != nil {
			fmt.Fprintf(b, " (lead: %s", e.state.Status)
			if e.state.Sequence != nil {
				fmt.Fprintf(b, " in %s at step %d of %s, wait from %s", e.state.Sequence.ID, e.state.NextStep, stepIDs(e.state.Sequence.Steps), clock(e.state.StepBase))
			}
			if e.state.Held != nil {
				fmt.Fprintf(b, ", held at %s", e.state.Held.StepID)
			}
			b.WriteString(")")
		}
		b.WriteString("\n")
	}
	for _, p := range m.pauses {
		fmt.Fprintf(b, "  %s  pause %s/%s", clock(p.at), p.seq, p.step)
		if !p.resumedAt.IsZero() {
			fmt.Fprintf(b, ", resumed %s", clock(p.resumedAt))
		}
		b.WriteString("\n")
	}
	for _, c := range m.calls {
		if c.paused {
			fmt.Fprintf(b, "  %s  send %s/%s paused: held\n", clock(c.at), c.key.seq, c.key.step)
		}
	}
	for _, rs := range m.resumes {
		fmt.Fprintf(b, "  %s  resume of held %s/%s, slot %s\n", clock(rs.at), rs.key.seq, rs.key.step, clock(rs.notBefore))
	}
	for _, c := range m.conversions {
		fmt.Fprintf(b, "  %s  goal of %s reached (event %d)\n", clock(c.at), c.seq, c.eventID)
	}
	for _, e := range m.errorsLog {
		fmt.Fprintf(b, "  fault: %s\n", e)
	}
	if r.final != nil {
		fmt.Fprintf(b, "  final: %s %s", r.final.Status, r.final.ExitReason)
		if r.final.Sequence != nil {
			fmt.Fprintf(b, " in %s at step %d of %s", r.final.Sequence.ID, r.final.NextStep, stepIDs(r.final.Sequence.Steps))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// The workflow never fails: a business error is recorded, not returned, and an update gets an
// answer, not an error.
func checkNeverFails(t failer, r *runner) {
	var v []string
	for i, run := range r.runs {
		var can *workflow.ContinueAsNewError
		var canceled *temporal.CanceledError
		switch {
		case errors.As(run.err, &can):
			if i == len(r.runs)-1 {
				v = append(v, fmt.Sprintf("still continuing as new after %d runs", len(r.runs)))
			}
		case errors.As(run.err, &canceled):
		case run.err == nil:
			v = append(v, fmt.Sprintf("run %d ended at %s; a lead's workflow never ends by itself", i+1, clock(run.end)))
		default:
			v = append(v, fmt.Sprintf("run %d failed at %s: %v", i+1, clock(run.end), run.err))
		}
	}
	for _, d := range r.decisions {
		if d.err != nil {
			v = append(v, fmt.Sprintf("decide %s by %s at %s: %v", d.d.Action, d.d.RepID, clock(d.at), d.err))
		}
	}
	report(t, r, "never-fails", v)
}

// Every run stays under the server's limits (scaled like the continue-as-new suggestion): it
// continues as new when asked, before the history grows too long.
func checkHistoryLimits(t failer, r *runner) {
	var v []string
	for i, run := range r.runs {
		if run.events > historyHardLimit {
			v = append(v, fmt.Sprintf("run %d: ~%d history events, over the limit %d (continue-as-new asked at %d)", i+1, run.events, historyHardLimit, historySuggestAt))
		}
		if run.signals > signalLimitPerRun || run.updates > updateLimitPerRun {
			v = append(v, fmt.Sprintf("run %d: %d signals, %d updates", i+1, run.signals, run.updates))
		}
	}
	report(t, r, "history-limits", v)
}

func mailLoc(tz string) *time.Location {
	if tz == "" {
		tz = modelWindowTZ
	}
	l, err := time.LoadLocation(tz)
	if err != nil {
		panic(err)
	}
	return l
}

// No marketing email is decided outside the send window (weekdays 9:00–16:59 in the lead's zone,
// or Berlin's): the first attempt is in it (a retry of a temporary failure may fall after it).
func checkSendWindow(t failer, r *runner) {
	var v []string
	for _, ml := range r.m.mails {
		outside := func(tz string) bool {
			lt := ml.firstAttempt.In(mailLoc(tz))
			return lt.Weekday() == time.Saturday || lt.Weekday() == time.Sunday || lt.Hour() < 9 || lt.Hour() > 16
		}
		if lt := ml.firstAttempt.In(mailLoc(ml.zones[len(ml.zones)-1])); !slices.ContainsFunc(ml.zones, func(tz string) bool { return !outside(tz) }) {
			v = append(v, fmt.Sprintf("%s/%s sent %s, outside the window (%s local)", ml.key.seq, ml.key.step, clock(ml.firstAttempt), lt.Format("Mon 15:04 MST")))
		}
	}
	report(t, r, "send-window", v)
}

// No marketing email in the quiet hours (12:00–13:00 in the lead's zone).
func checkQuietHours(t failer, r *runner) {
	var v []string
	for _, ml := range r.m.mails {
		quiet := func(tz string) bool {
			lt := ml.firstAttempt.In(mailLoc(tz))
			m := lt.Hour()*60 + lt.Minute()
			return m >= modelQuietFrom && m < modelQuietTo
		}
		if lt := ml.firstAttempt.In(mailLoc(ml.zones[len(ml.zones)-1])); !slices.ContainsFunc(ml.zones, func(tz string) bool { return !quiet(tz) }) {
			v = append(v, fmt.Sprintf("%s/%s sent %s, in the quiet hours (%s local)", ml.key.seq, ml.key.step, clock(ml.firstAttempt), lt.Format("15:04 MST")))
		}
	}
	report(t, r, "quiet-hours", v)
}

// At most modelCapMax marketing emails in any modelCapPer.
func checkFrequencyCap(t failer, r *runner) {
	var v []string
	mails := slices.DeleteFunc(slices.Clone(r.m.mails), func(ml mMail) bool { return r.unseen(ml) })
	slices.SortFunc(mails, func(a, b mMail) int { return a.firstAttempt.Compare(b.firstAttempt) })
	for i, ml := range mails {
		n := 0
		for _, o := range mails[:i+1] {
			if o.firstAttempt.After(ml.firstAttempt.Add(-modelCapPer)) {
				n++
			}
		}
		if n > modelCapMax {
			v = append(v, fmt.Sprintf("%s/%s sent %s is email %d in %s (cap %d)", ml.key.seq, ml.key.step, clock(ml.firstAttempt), n, modelCapPer, modelCapMax))
		}
	}
	report(t, r, "frequency-cap", v)
}

// No marketing email after an unsubscribe or suppression, in an exit stage (handed off, accepted,
// qualified, customer, disqualified) or while sales owns the lead.
func checkNoMailAfterStop(t failer, r *runner) {
	var v []string
	for _, ml := range r.m.mails {
		what := ""
		switch {
		case ml.unsubscribed:
			what = "the lead unsubscribed"
		case ml.suppressed:
			what = "the address is suppressed"
		case slices.Contains(modelStopStages, ml.stage):
			what = "the lead is at " + string(ml.stage)
		case ml.salesOpen:
			what = "a handoff is open"
		}
		// A send decided, or retried, in the same instant as the stop raced with it: the email was
		// already on its way (the one email the README allows through).
		raced := slices.ContainsFunc(r.m.stages, func(st mStage) bool {
			return st.to == ml.stage && (st.at.Equal(ml.firstAttempt) || st.at.Equal(ml.at))
		}) ||
			slices.ContainsFunc(r.m.handoffs, func(h *mHandoff) bool {
				return ml.salesOpen && (h.openedAt.Equal(ml.firstAttempt) || h.openedAt.Equal(ml.at))
			})
		if what != "" && !raced {
			v = append(v, fmt.Sprintf("%s/%s sent %s although %s", ml.key.seq, ml.key.step, clock(ml.at), what))
		}
	}
	report(t, r, "no-mail-after-stop", v)
}

// unseen reports whether the workflow was told that ml's send was cancelled although the model
// mailed it. The test environment answers a cancelled activity at once and drops its result
// (RequestCancelActivity), even with WaitForCancellation, so a send cancelled while it was
// mailing (a segment switch, a handoff in the same instant) is never counted by the workflow; on
// a server the workflow gets the send's real outcome. Such an email cannot count toward the cap.
func (r *runner) unseen(ml mMail) bool {
	return r.final != nil && slices.ContainsFunc(r.final.History, func(h StepRecord) bool {
		return h.SequenceID == ml.key.seq && h.StepID == ml.key.step && h.Outcome == "cancelled"
	})
}

// dueSlack is how much later than its wait a step may go out: the window (a weekend: 64 h), the
// frequency cap (a week), quiet hours, a time-zone change and an SMTP outage together.
const dueSlack = 14 * day

// stageAt is the lead's stage just before ordinal ord.
func (m *model) stageAt(ord int) lifecycle.Stage {
	st := lifecycle.Lead
	for _, s := range m.stages {
		if s.ord < ord {
			st = s.to
		}
	}
	return st
}

// quietFrom is when a lead enrolled at t counts as gone quiet (re-engagement pauses its series).
func (m *model) quietFrom(t time.Time) time.Time { return m.quietSince(m.enrolls[0].at, t) }

// Every step is sent at most once; and every step that fell due while its series ran undisturbed
// (no later series, unsubscribe, suppression, exit stage, handoff or silence, and no edit of the
// series, pause holding the lead or goal reached) was sent, or given up on after its retries. A
// lead recycled by a rep or a lost deal is owed the recycle series from then on.
func checkDueStepsOnce(t failer, r *runner) {
	var v []string
	m := r.m
	per := map[sendKey]int{}
	for _, ml := range m.mails {
		if per[ml.key]++; per[ml.key] == 2 {
			v = append(v, fmt.Sprintf("%s/%s sent more than once", ml.key.seq, ml.key.step))
		}
	}
	end := r.sc.end()
	enrolls := slices.Clone(m.enrolls)
	slices.SortStableFunc(enrolls, func(a, b mEnroll) int { return a.ord - b.ord })
	for i, e := range enrolls {
		h := end
		if i+1 < len(enrolls) {
			h = minTime(h, enrolls[i+1].at)
		}
		if m.unsubscribed {
			h = minTime(h, maxTime(e.at, m.unsubAt))
		}
		if m.suppressed != "" {
			h = minTime(h, maxTime(e.at, m.suppAt))
		}
		if slices.Contains(modelStopStages, m.stageAt(e.ord)) {
			h = e.at
		}
		for _, s := range m.stages {
			if s.ord > e.ord && slices.Contains(modelStopStages, s.to) {
				h = minTime(h, s.at)
				break
			}
		}
		for _, ho := range m.handoffs {
			if ho.ord > e.ord {
				h = minTime(h, ho.openedAt)
				break
			}
		}
		h = minTime(h, m.quietFrom(e.at))
		// Past the first edit, hold or goal of its series the enrolled version no longer tells
		// what is due: edited-steps-due and resumed-at-slot check from there.
		h = minTime(h, m.liveChangeAfter(e.ord, e.at, e.sequence.ID))
		base := e.at
		for _, step := range e.sequence.Steps {
			key := sendKey{e.sequence.ID, step.ID}
			if s, ok := m.sends[key]; ok {
				base = maxTime(base, s.resolvedAt)
				continue
			}
			if a, ok := m.attempts[key]; ok && a.failures >= testEnvMaxAttempts {
				base = maxTime(base, a.lastFailure)
				continue // given up after its retries
			}
			due := base.Add(step.Wait)
			if due.Add(dueSlack).Before(h) {
				what := "enrolled"
				if e.expected {
					what = "owed after " + e.why
				}
				v = append(v, fmt.Sprintf("%s/%s (%s %s) due about %s, still not sent at %s", key.seq, key.step, what, clock(e.at), clock(due), clock(h)))
			}
			break
		}
	}
	report(t, r, "due-steps-once", v)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// handoffLatency is how soon a hand-off ready lead must reach a rep. (A send retrying for 42
// minutes must not hold it up: see testEnvMaxAttempts.)
const handoffLatency = 10 * time.Minute

// testEnvMaxAttempts: the test environment gives an activity without MaximumAttempts ten attempts
// (production retries SendStep for two days); with SendStep's backoff that is about 42 minutes,
// after which the workflow records the step as failed.
const testEnvMaxAttempts = 10

// openAt reports whether a handoff row was open (assigned, unanswered, not reassigned) just before
// ordinal ord.
func (m *model) openAt(ord int) bool {
	for _, h := range m.handoffs {
		if h.ord >= ord || (h.answer != nil && h.answer.ord < ord) {
			continue
		}
		superseded := slices.ContainsFunc(m.handoffs, func(g *mHandoff) bool {
			return g.seq == h.seq && g.assignment > h.assignment && g.ord < ord
		})
		if !superseded {
			return true
		}
	}
	return false
}

func (m *model) assignedAfter(ord int, by time.Time) bool {
	return slices.ContainsFunc(m.handoffs, func(h *mHandoff) bool {
		return h.assignment == 1 && h.ord > ord && !h.openedAt.After(by)
	})
}

// A hand-off ready lead always reaches a rep, within handoffLatency: every move to MQL opens a
// handoff, and so does every hand-raise of a lead that sales does not own.
func checkHandoffReachesRep(t failer, r *runner) {
	var v []string
	m := r.m
	for _, s := range m.stages {
		if s.to == lifecycle.MQL && !m.assignedAfter(s.ord, s.at.Add(handoffLatency)) {
			v = append(v, fmt.Sprintf("moved to mql %s (%s), no rep assigned", clock(s.at), s.why))
		}
	}
	for _, e := range m.events {
		if e.typ != score.EventDemoRequest || e.machine {
			continue
		}
		ord := m.eventOrd(e)
		st := m.stageAt(ord)
		eligible := st == lifecycle.Subscriber || st == lifecycle.Lead || st == lifecycle.Recycled || st == lifecycle.MQL
		for _, s := range m.stages {
			if s.to == lifecycle.Recycled && s.ord < ord && e.at.Before(s.at.Add(modelCoolOff)) {
				eligible = false // a hand-raise in the cool-off after a recycle may wait
			}
		}
		if eligible && !m.openAt(ord) && !m.assignedAfter(ord, e.at.Add(handoffLatency)) {
			v = append(v, fmt.Sprintf("demo request %s at stage %s: no rep assigned within %s", clock(e.at), st, handoffLatency))
		}
	}
	report(t, r, "handoff-reaches-rep", v)
}

// eventOrd is the ordinal of an event (the model ticks once per event, in order).
func (m *model) eventOrd(e mEvent) int { return m.eventOrds[e.id] }

// Each handoff has one SLA clock until it is answered: no second handoff opens while one is open;
// a lapse comes only after its deadline and only when unanswered by then; a deadline that passes
// unanswered is escalated; after modelReassignAfter lapses the lead is reassigned.
func checkOneSLAClock(t failer, r *runner) {
	var v []string
	m := r.m
	end := r.sc.end()
	for _, h := range m.handoffs {
		for _, g := range m.handoffs {
			if g.ord < h.ord && g.seq < h.seq && (g.answer == nil || g.answer.ord > h.ord) && !m.supersededBefore(g, h.ord) {
				v = append(v, fmt.Sprintf("handoff %d opened %s while handoff %d was open: two clocks", h.id, clock(h.openedAt), g.id))
			}
		}
		d := h.dueAt
		for k, l := range h.lapses {
			if l.n != k+1 {
				v = append(v, fmt.Sprintf("handoff %d: lapse %d recorded as number %d", h.id, k+1, l.n))
			}
			if l.at.Before(d) {
				v = append(v, fmt.Sprintf("handoff %d: lapse %d at %s, before its deadline %s", h.id, l.n, clock(l.at), clock(d)))
			}
			if h.answer != nil && h.answer.at.Before(d) {
				v = append(v, fmt.Sprintf("handoff %d: escalated at %s although answered at %s, before the deadline %s", h.id, clock(l.at), clock(h.answer.at), clock(d)))
			}
			d = l.at.Add(h.response)
		}
		superseded := m.supersededBefore(h, int(^uint(0)>>1))
		switch {
		case superseded || (h.answer != nil && !h.answer.at.After(d.Add(time.Minute))):
		case len(h.lapses) >= modelReassignAfter:
			if last := h.lapses[len(h.lapses)-1]; last.at.Add(handoffLatency).Before(end) {
				v = append(v, fmt.Sprintf("handoff %d: %d lapses, never reassigned", h.id, len(h.lapses)))
			}
		case h.answer != nil:
			v = append(v, fmt.Sprintf("handoff %d: deadline %s passed without escalation (answered %s)", h.id, clock(d), clock(h.answer.at)))
		case d.Add(handoffLatency).Before(end):
			v = append(v, fmt.Sprintf("handoff %d: the SLA clock stopped: due %s, unanswered, not escalated", h.id, clock(d)))
		}
	}
	report(t, r, "one-sla-clock", v)
}

// supersededBefore reports whether h was reassigned (a later assignment of its handoff opened)
// before ordinal ord.
func (m *model) supersededBefore(h *mHandoff, ord int) bool {
	return slices.ContainsFunc(m.handoffs, func(g *mHandoff) bool {
		return g.seq == h.seq && g.assignment > h.assignment && g.ord < ord
	})
}

// Exactly one escalation per lapse (none only when its template failed: a business error,
// recorded and alerted).
func checkOneEscalationPerLapse(t failer, r *runner) {
	var v []string
	for _, h := range r.m.handoffs {
		for _, l := range h.lapses {
			key := fmt.Sprintf("escalation:%d:%d:manager", h.id, l.n)
			if n := r.m.notices[key]; n != 1 && !(n == 0 && r.m.brokenNotices[key]) {
				v = append(v, fmt.Sprintf("handoff %d lapse %d (%s): %d escalations", h.id, l.n, clock(l.at), n))
			}
		}
	}
	report(t, r, "one-escalation-per-lapse", v)
}

// A recycled lead (not_ready, or a lost deal) is handed off again only after it newly qualifies: a
// hand-raise after the recycle, or a score crossing the threshold after it.
func checkRecycledQualifiesAnew(t failer, r *runner) {
	var v []string
	m := r.m
	threshold := m.score.MQLThreshold
	for _, h := range m.handoffs {
		if h.assignment != 1 {
			continue
		}
		var rec *mStage
		for i := range m.stages {
			if s := &m.stages[i]; s.to == lifecycle.Recycled && s.ord < h.ord {
				rec = s
			}
		}
		if rec == nil {
			continue
		}
		earned := slices.ContainsFunc(m.events, func(e mEvent) bool {
			o := m.eventOrd(e)
			return e.typ == score.EventDemoRequest && !e.machine && o > rec.ord && o < h.ord
		})
		below := true // the score as of the recycle
		for _, s := range m.rescores {
			if s.ord < rec.ord {
				below = s.score < threshold
			}
		}
		for _, s := range m.rescores {
			if s.ord <= rec.ord || s.ord >= h.ord || earned {
				continue
			}
			if s.score < threshold {
				below = true
			} else if below {
				earned = true
			}
		}
		if !earned && !h.openedAt.Before(rec.at.Add(modelCoolOff)) {
			// tend's rule (README): after the cool-off, what the lead did since the recycle reaches
			// the threshold on its own.
			var since []score.Event
			for _, e := range m.events {
				if e.at.After(rec.at) && !e.at.After(h.openedAt) {
					since = append(since, score.Event{ID: fmt.Sprint(e.id), Type: e.typ, Tags: e.tags, At: e.at, Machine: e.machine})
				}
			}
			earned = m.score.Score(score.Lead{}, since, h.openedAt).HandoffReady
		}
		if !earned {
			v = append(v, fmt.Sprintf("handoff %d at %s: handed off again after the recycle at %s (%s) with no new hand-raise and no new crossing of %v",
				h.id, clock(h.openedAt), clock(rec.at), rec.why, threshold))
		}
	}
	report(t, r, "recycled-qualifies-anew", v)
}

// A rep's answer acts only on the handoff its link is for (a reassignment keeps the handoff), and
// an answer by the assigned rep to the open handoff is taken.
func checkAnswersActOnTheirHandoff(t failer, r *runner) {
	var v []string
	m := r.m
	for _, h := range m.handoffs {
		a := h.answer
		if a == nil {
			continue
		}
		if !slices.ContainsFunc(r.decisions, func(d *decisionRec) bool {
			t := m.findHandoff(d.targetID)
			return t != nil && t.seq == h.seq && d.d.RepID == a.repID && d.d.Action == a.action && d.d.Reason == a.reason
		}) {
			v = append(v, fmt.Sprintf("handoff %d (seq %d) got %s by %s at %s, from the link of another handoff", h.id, h.seq, a.action, a.repID, clock(a.at)))
		}
	}
	taken := map[int64]bool{}
	for _, d := range r.decisions {
		if !d.done || !d.current {
			continue
		}
		h := m.findHandoff(d.targetID)
		if h == nil || d.d.RepID != h.repID || len(h.lapses) >= modelReassignAfter {
			continue
		}
		switch d.outcome {
		case OutcomeAccepted, OutcomeRejected:
			taken[h.id] = true
		case OutcomeAlreadyAccepted, OutcomeNotInSales:
			if !taken[h.id] {
				v = append(v, fmt.Sprintf("%s by %s at %s for the open handoff %d: %s", d.d.Action, d.d.RepID, clock(d.at), h.id, d.outcome))
			}
		default:
			v = append(v, fmt.Sprintf("%s by %s at %s for the open handoff %d: %s", d.d.Action, d.d.RepID, clock(d.at), h.id, d.outcome))
		}
	}
	report(t, r, "answers-act-on-their-handoff", v)
}

// --- the invariants of live sequences (issue 9) ---

func stepIDs(steps []sequence.Step) string {
	ids := make([]string, len(steps))
	for i, s := range steps {
		ids[i] = s.ID
	}
	return "[" + strings.Join(ids, " ") + "]"
}

// liveChangeAfter is the first edit of seq, hold of one of its sends or its goal reached after
// ordinal ord (at), or the far future.
func (m *model) liveChangeAfter(ord int, at time.Time, seq string) time.Time {
	h := farFuture
	for _, e := range m.edits {
		if e.seq == seq && e.ord > ord {
			h = minTime(h, e.at)
			break
		}
	}
	for _, c := range m.calls {
		if c.paused && c.key.seq == seq && c.ord > ord {
			h = minTime(h, c.at)
			break
		}
	}
	if c := m.conversion(seq); c != nil {
		h = minTime(h, maxTime(at, c.at))
	}
	return h
}

var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// disturbedAfter is the first time after ordinal ord (at) that something besides time may move a
// lead running seq off its path: a new plan, an unsubscribe or suppression, an exit stage, a
// handoff, the goal of seq, an edit of seq; and, with holds, a send of seq held by a pause. A
// re-engagement series is also left at the lead's next human engagement.
func (m *model) disturbedAfter(ord int, at time.Time, seq string, holds bool) time.Time {
	h := m.disturbedBesidesPlans(ord, at, seq, holds)
	for _, e := range m.enrolls {
		if e.ord > ord {
			h = minTime(h, e.at)
		}
	}
	return h
}

// disturbedBesidesPlans is disturbedAfter without the new plans.
func (m *model) disturbedBesidesPlans(ord int, at time.Time, seq string, holds bool) time.Time {
	h := farFuture
	if m.unsubscribed {
		h = minTime(h, maxTime(at, m.unsubAt))
	}
	if m.suppressed != "" {
		h = minTime(h, maxTime(at, m.suppAt))
	}
	if slices.Contains(modelStopStages, m.stageAt(ord)) {
		h = at
	}
	for _, s := range m.stages {
		if s.ord > ord && slices.Contains(modelStopStages, s.to) {
			h = minTime(h, s.at)
		}
	}
	for _, ho := range m.handoffs {
		if ho.ord > ord {
			h = minTime(h, ho.openedAt)
		}
	}
	if c := m.conversion(seq); c != nil {
		h = minTime(h, maxTime(at, c.at))
	}
	for _, e := range m.edits {
		if e.seq == seq && e.ord > ord {
			h = minTime(h, e.at)
		}
	}
	if holds {
		for _, c := range m.calls {
			if c.paused && c.key.seq == seq && c.ord > ord {
				h = minTime(h, c.at)
			}
		}
	}
	if seq == modelCatalog().Reengagement.Sequence.ID {
		h = minTime(h, m.nextEngagement(ord))
	}
	return h
}

// nextEngagement is the time of the first human engagement after ordinal ord, or the far future.
func (m *model) nextEngagement(ord int) time.Time {
	for _, e := range m.events {
		if score.IsEngagement(e.typ) && !e.machine && m.eventOrd(e) > ord {
			return e.at
		}
	}
	return farFuture
}

// quietSince is when a lead whose quiet clock (re)started at start counts as gone quiet, as seen
// at t: the latest human engagement restarts it.
func (m *model) quietSince(start, t time.Time) time.Time {
	since := start
	var eng []time.Time
	for _, e := range m.events {
		if score.IsEngagement(e.typ) && !e.machine {
			eng = append(eng, e.at)
		}
	}
	for _, at := range eng {
		if !at.After(t) && at.After(since) {
			since = at
		}
	}
	for _, at := range eng {
		if !at.After(t) {
			continue
		}
		if !at.Before(since.Add(modelInactive)) {
			break
		}
		since = at
	}
	return maxTime(t, since.Add(modelInactive))
}

func (m *model) mail(k sendKey) *mMail {
	for i := range m.mails {
		if m.mails[i].key == k {
			return &m.mails[i]
		}
	}
	return nil
}

// leg is a stretch of a lead's path that the model can predict: from step index from of seq,
// the wait before it counting from base (and the step going out no earlier than notBefore), until
// end, when something may have moved the lead.
type leg struct {
	why       string
	seq       sequence.Sequence
	from      int
	base      time.Time
	notBefore time.Time
	// at is when the leg starts: sends decided after it follow its rules.
	at  time.Time
	end time.Time
	// tight: each step must also go out by its slot (see slotAfter), not just within dueSlack.
	tight bool
}

// slotMargin is how much later than slotAfter a send may be decided: the cap counts an
// already_sent retry a few seconds after the email itself.
const slotMargin = 10 * time.Minute

// slotAfter is the latest instant the workflow may choose for a send due at t: the first at or
// after t that is inside the send window and outside the quiet hours, in the worst of the time
// zones the lead had (a zone counted from when a capture set it: the workflow looks the slot up
// again then), and within the frequency cap as the model's emails fill it (with the sends given
// up after their retries and the already_sent answers, which the workflow counts too).
func (m *model) slotAfter(t time.Time) time.Time {
	sent := slices.Clone(m.alreadySent)
	for _, ml := range m.mails {
		sent = append(sent, ml.at)
	}
	for _, a := range m.attempts {
		if a.failures >= testEnvMaxAttempts {
			sent = append(sent, a.lastFailure)
		}
	}
	zones := slices.Clone(m.zones)
	if len(m.zones) == 0 || !m.zones[0].at.IsZero() {
		zones = append(zones, mZone{}) // the lead started without a zone: the window's
	}
	worst := t
	for _, z := range zones {
		loc := mailLoc(z.tz)
		at := maxTime(t, z.at)
		for range 3 * 24 * 60 * 14 {
			lt := at.In(loc)
			mins := lt.Hour()*60 + lt.Minute()
			n := 0
			for _, s := range sent {
				if s.After(at.Add(-modelCapPer)) && !s.After(at) {
					n++
				}
			}
			if lt.Weekday() != time.Saturday && lt.Weekday() != time.Sunday && lt.Hour() >= 9 && lt.Hour() <= 16 &&
				(mins < modelQuietFrom || mins >= modelQuietTo) && n < modelCapMax {
				break
			}
			at = at.Truncate(time.Minute).Add(time.Minute)
		}
		worst = maxTime(worst, at)
	}
	return worst
}

// walk checks a leg: every step decided in it goes out no earlier than its wait after the
// previous one (the first no earlier than notBefore), and every step that fell due well before
// the leg ends went out, or was given up on after its retries.
func (m *model) walk(l leg) (v []string) {
	base := l.base
	for i := l.from; i < len(l.seq.Steps); i++ {
		step := l.seq.Steps[i]
		key := sendKey{l.seq.ID, step.ID}
		due := base.Add(step.Wait)
		if i == l.from && l.notBefore.After(due) {
			due = l.notBefore
		}
		latest := due.Add(dueSlack)
		if l.tight {
			latest = m.slotAfter(maxTime(due, l.at)).Add(slotMargin)
		}
		if s, ok := m.sends[key]; ok {
			if ml := m.mail(key); ml != nil && ml.firstAttempt.After(l.at) && ml.firstAttempt.Before(l.end) {
				if ml.firstAttempt.Before(due) {
					v = append(v, fmt.Sprintf("%s/%s (%s) sent %s, before it was due %s", key.seq, key.step, l.why, clock(ml.firstAttempt), clock(due)))
				}
				if l.tight && ml.firstAttempt.After(latest) && latest.Before(l.end) {
					v = append(v, fmt.Sprintf("%s/%s (%s) due %s, sent %s, after its slot %s", key.seq, key.step, l.why, clock(due), clock(ml.firstAttempt), clock(latest.Add(-slotMargin))))
				}
			}
			base = maxTime(base, s.resolvedAt)
			continue
		}
		if a, ok := m.attempts[key]; ok && a.failures >= testEnvMaxAttempts {
			base = maxTime(base, a.lastFailure)
			continue
		}
		if latest.Before(l.end) {
			v = append(v, fmt.Sprintf("%s/%s (%s) due about %s, still not sent at %s", key.seq, key.step, l.why, clock(due), clock(l.end)))
		}
		break
	}
	return v
}

// runningAt reports whether the workflow state st (taken at an edit, a resume) runs seq.
func runningAt(st *LeadState, seq string) bool {
	return st != nil && st.Sequence != nil && st.Sequence.ID == seq && st.Status == StatusRunning
}

// No marketing email is mailed while its step or its series is paused.
func checkPausedNeverMailed(t failer, r *runner) {
	var v []string
	for _, ml := range r.m.mails {
		for _, p := range r.m.pauses {
			if p.seq == ml.key.seq && (p.step == "" || p.step == ml.key.step) && p.ord < ml.ord && (p.resumeOrd == 0 || p.resumeOrd > ml.ord) {
				v = append(v, fmt.Sprintf("%s/%s mailed %s while %s/%s was paused (since %s)", ml.key.seq, ml.key.step, clock(ml.at), p.seq, p.step, clock(p.at)))
			}
		}
	}
	report(t, r, "paused-never-mailed", v)
}

// A lead whose send met a pause holds its place until the resume tells it (or to the end): still
// running the series, held at that step, not re-engaged or sunset, the step not recorded as
// skipped, and no re-engagement email meanwhile — unless something besides the pause moved it (a
// new plan, an exit, a handoff, the goal, an edit of the series).
func checkHeldKeepsItsPlace(t failer, r *runner) {
	var v []string
	m := r.m
	reengage := modelCatalog().Reengagement.Sequence.ID
	for _, c := range m.calls {
		if !c.paused {
			continue
		}
		obs, obsAt, obsOrd, what := r.final, r.sc.end(), int(^uint(0)>>1), "at the end"
		for _, rs := range m.resumes {
			if rs.key == c.key && rs.ord > c.ord {
				obs, obsAt, obsOrd, what = rs.state, rs.at, rs.ord, "at the resume "+clock(rs.at)
				break
			}
		}
		if obs == nil || m.disturbedAfter(c.ord, c.at, c.key.seq, false).Before(obsAt) {
			continue
		}
		held := fmt.Sprintf("held at %s/%s since %s", c.key.seq, c.key.step, clock(c.at))
		switch {
		case obs.Held == nil || obs.Held.SequenceID != c.key.seq || obs.Held.StepID != c.key.step:
			v = append(v, fmt.Sprintf("%s, %s no longer held there (held %+v)", held, what, obs.Held))
		case obs.Status != StatusRunning:
			v = append(v, fmt.Sprintf("%s, %s %s: %s", held, what, obs.Status, obs.ExitReason))
		case c.key.seq != reengage && obs.Mode != "":
			v = append(v, fmt.Sprintf("%s, %s in mode %s", held, what, obs.Mode))
		}
		for _, h := range obs.History {
			if h.SequenceID == c.key.seq && h.StepID == c.key.step && h.Outcome == "skipped" && !h.At.Before(c.at) {
				v = append(v, fmt.Sprintf("%s: recorded as skipped %s", held, clock(h.At)))
			}
		}
		for _, ml := range m.mails {
			if c.key.seq != reengage && ml.key.seq == reengage && ml.ord > c.ord && ml.ord < obsOrd {
				v = append(v, fmt.Sprintf("%s: re-engagement email %s mailed %s", held, ml.key.step, clock(ml.at)))
			}
		}
	}
	report(t, r, "held-keeps-its-place", v)
}

// Reaching a series' goal ends it at once: no email of the series is mailed after the conversion
// was recorded, a pending send included, while the lead keeps the enrollment that reached it.
func checkGoalEndsTheSeries(t failer, r *runner) {
	report(t, r, "goal-ends-the-series", r.m.mailsAfterGoal(true))
}

// A lead that reached a series' goal gets none of its emails ever again: a later capture or
// recycle does not plan it into the series anew.
func checkGoalNotReenrolled(t failer, r *runner) {
	report(t, r, "goal-not-reenrolled", r.m.mailsAfterGoal(false))
}

// mailsAfterGoal lists the emails of a series mailed after its goal was reached: those before its
// next enrollment (sameEnrollment), or all.
func (m *model) mailsAfterGoal(sameEnrollment bool) (v []string) {
	for _, c := range m.conversions {
		end := farFuture
		for _, e := range m.enrolls {
			if sameEnrollment && e.ord > c.ord && e.sequence.ID == c.seq {
				end = minTime(end, e.at)
			}
		}
		for _, ml := range m.mails {
			// A retry that went out in the very instant of the goal was already on its way.
			if ml.key.seq == c.seq && ml.ord > c.ord && ml.firstAttempt.Before(end) && !ml.at.Equal(c.at) {
				v = append(v, fmt.Sprintf("%s/%s mailed %s (decided %s) after the goal was reached %s", ml.key.seq, ml.key.step, clock(ml.at), clock(ml.firstAttempt), clock(c.at)))
			}
		}
	}
	return v
}

// After an edit, a lead running the series never gets a step of the new version that precedes
// its position (inserted before it), nor a step the edit removed, for as long as it keeps the
// enrollment (a new plan starts the series afresh).
func checkEditNeverRetroactive(t failer, r *runner) {
	var v []string
	m := r.m
	for _, e := range m.edits {
		st := e.state
		if !runningAt(st, e.seq) || !e.found {
			continue
		}
		var passed []string
		for _, s := range st.Sequence.Steps[:min(st.NextStep, len(st.Sequence.Steps))] {
			passed = append(passed, s.ID)
		}
		never := map[string]string{}
		for _, s := range e.new.Steps[:sequence.Position(e.new, passed)] {
			if !slices.Contains(passed, s.ID) {
				never[s.ID] = "inserted before the lead's position"
			}
		}
		for _, s := range st.Sequence.Steps[min(st.NextStep, len(st.Sequence.Steps)):] {
			if !slices.ContainsFunc(e.new.Steps, func(n sequence.Step) bool { return n.ID == s.ID }) {
				never[s.ID] = "removed"
			}
		}
		end := r.sc.end()
		for _, en := range m.enrolls {
			if en.ord > e.ord {
				end = minTime(end, en.at)
			}
		}
		if e.seq == modelCatalog().Reengagement.Sequence.ID {
			end = minTime(end, m.nextEngagement(e.ord)) // which ends the re-engagement
		}
		for _, ml := range m.mails {
			if why, ok := never[ml.key.step]; ok && ml.key.seq == e.seq && ml.firstAttempt.After(e.at) && ml.firstAttempt.Before(end) {
				v = append(v, fmt.Sprintf("%s/%s sent %s: version %d (%s) %s", ml.key.seq, ml.key.step, clock(ml.firstAttempt), e.version, clock(e.at), why))
			}
		}
	}
	report(t, r, "edit-never-retroactive", v)
}

// A lead running a series when it is edited follows the new version from its position: each
// step's wait counts from the start of the wait it was in (a changed wait reschedules it, a
// removed step hands it to the next, an inserted one is picked up), no step goes out before that,
// every step due well before something else moves the lead goes out, and a changed subject is
// the next send's.
func checkEditedStepsDue(t failer, r *runner) {
	var v []string
	m := r.m
	for _, e := range m.edits {
		st := e.state
		if !runningAt(st, e.seq) || st.Held != nil {
			continue
		}
		// A resume's ramp slot (NotBefore) still holds for the lead's next send after an edit.
		l := leg{why: fmt.Sprintf("version %d of %s", e.version, clock(e.at)), at: e.at, base: st.StepBase,
			seq: *st.Sequence, from: st.NextStep, tight: true, notBefore: st.NotBefore}
		if e.found {
			var passed []string
			for _, s := range st.Sequence.Steps[:min(st.NextStep, len(st.Sequence.Steps))] {
				passed = append(passed, s.ID)
			}
			if st.NextStep < len(st.Sequence.Steps) {
				// The step the lead waited for may have been on its way (a send in flight, or due
				// in the very instant): the lead passes it before it follows the new version.
				key := sendKey{e.seq, st.Sequence.Steps[st.NextStep].ID}
				if a, ok := m.attempts[key]; ok && !a.first.After(e.at) && a.first.After(st.StepBase) {
					if s, ok := m.sends[key]; ok {
						passed, l.base = append(passed, key.step), maxTime(l.base, s.resolvedAt)
					} else if a.failures >= testEnvMaxAttempts {
						passed, l.base = append(passed, key.step), maxTime(l.base, a.lastFailure)
					}
				}
			}
			l.seq, l.from = e.new, sequence.Position(e.new, passed)
		} else {
			l.why += ", its series gone: the lead finishes where it is"
		}
		l.end = minTime(r.sc.end(), m.disturbedAfter(e.ord, e.at, e.seq, true))
		if st.Mode == "" {
			l.end = minTime(l.end, m.quietFrom(e.at))
		}
		v = append(v, m.walk(l)...)
		if !e.found && st.Mode == "" {
			v = append(v, m.followsNewSegment(e, l, r.sc.end())...)
		}
	}
	for _, c := range m.calls {
		if c.paused || !c.firstAttempt.Equal(c.at) {
			continue // a held send, or a retry of an earlier decision
		}
		var last *mEdit
		for i := range m.edits {
			if m.edits[i].ord < c.ord {
				last = &m.edits[i]
			}
		}
		if last == nil || !runningAt(last.state, c.key.seq) || !c.at.After(last.at) {
			continue
		}
		if s := sequenceIn(m.versions[last.version-1], c.key.seq); s != nil {
			for _, step := range s.Steps {
				if step.ID == c.key.step && step.Subject != c.subject {
					v = append(v, fmt.Sprintf("%s/%s sent %s with subject %q; version %d (%s) has %q", c.key.seq, c.key.step, clock(c.at), c.subject, last.version, clock(last.at), step.Subject))
				}
			}
		}
	}
	report(t, r, "edited-steps-due", v)
}

// followsNewSegment checks that a lead whose series' segment was dropped while it ran it (leg l)
// is planned into a segment again as soon as it has finished where it was.
func (m *model) followsNewSegment(e mEdit, l leg, end time.Time) []string {
	var done time.Time
	for _, step := range l.seq.Steps[min(l.from, len(l.seq.Steps)):] {
		key := sendKey{l.seq.ID, step.ID}
		if s, ok := m.sends[key]; ok {
			done = maxTime(done, s.resolvedAt)
		} else if a, ok := m.attempts[key]; ok && a.failures >= testEnvMaxAttempts {
			done = maxTime(done, a.lastFailure)
		} else {
			return nil // not finished (yet, or ever: what moved it is checked by walk)
		}
	}
	by := done.Add(slotMargin)
	quiet := minTime(end, minTime(m.quietFrom(e.at), m.disturbedBesidesPlans(e.ord, e.at, e.seq, true)))
	if !by.Before(quiet) {
		return nil
	}
	for _, en := range m.enrolls {
		if en.ord > e.ord && !en.at.Before(done) && !en.at.After(by) && en.sequence.ID != e.seq {
			return nil
		}
	}
	return []string{fmt.Sprintf("%s (version %d of %s dropped its segment) finished %s; no other segment's series planned by %s",
		e.seq, e.version, clock(e.at), clock(done), clock(by))}
}

// On resume a held lead's send goes out at its slot in the ramp: not before NotBefore, and soon
// after it (the window, quiet hours and the cap allowing) unless something moved the lead; and
// its quiet clock restarts at the resume, so no re-engagement starts within modelInactive of it.
func checkResumedAtSlot(t failer, r *runner) {
	var v []string
	m := r.m
	reengage := modelCatalog().Reengagement.Sequence.ID
	for _, rs := range m.resumes {
		st := rs.state
		if !runningAt(st, rs.key.seq) || st.Held == nil || st.Held.StepID != rs.key.step || st.NextStep >= len(st.Sequence.Steps) {
			continue
		}
		// A held lead sends nothing before the resume tells it, so a send in the resume's instant
		// is already the resumed one (at is just before it).
		l := leg{why: "resumed " + clock(rs.at), at: rs.at.Add(-time.Nanosecond), base: st.StepBase, notBefore: rs.notBefore,
			seq: *st.Sequence, from: st.NextStep, tight: true}
		l.end = minTime(r.sc.end(), m.disturbedAfter(rs.ord, rs.at, rs.key.seq, true))
		if st.Mode == "" {
			l.end = minTime(l.end, m.quietSince(rs.at, rs.at))
			for _, ml := range m.mails {
				if ml.key.seq == reengage && ml.ord > rs.ord && ml.firstAttempt.Before(rs.at.Add(modelInactive)) {
					v = append(v, fmt.Sprintf("re-engagement %s sent %s, within %s of the resume %s", ml.key.step, clock(ml.firstAttempt), shortDur(modelInactive), clock(rs.at)))
				}
			}
		}
		v = append(v, m.walk(l)...)
	}
	report(t, r, "resumed-at-slot", v)
}
