package workflows

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/score"
	"github.com/tendhq/tend/internal/sequence"
)

// This file is an in-memory model of tend's store and side effects, for the property test in
// invariants_test.go. It behaves like activities/ on Postgres: sends are exactly-once per (lead,
// sequence, step) and a repeat is already_sent; an unsubscribed or suppressed lead gets nothing;
// Rescore scores the stored events with the real score package and moves a hand-off ready lead to
// MQL; Assign finds or opens the handoff row of (lead, seq, assignment) and sends its notice once.
// Its methods take and return the activities' own types, so the glue in invariants_test.go that
// registers them with the test environment is one line per activity; when an activity's signature
// changes, adapt the method here and the glue there.
//
// Besides behaving, the model keeps a log of everything that happened, in one logical order (ord),
// which the invariant checks read: every email handed to SMTP with the lead's state at that
// moment, every stage change, enrollment, rescore, handoff row, lapse, notice and stored answer.
//
// The catalog is live, as in issue 9: it has published versions (the first is modelCatalog), and
// Follow reads a sequence from the current one as activities.Leads.Follow does; sequences or
// single steps can be paused, and a Pausable send of a paused step holds the lead (a held send
// row, released by the Released send after the resume), as activities.Email.beforeClaim does;
// the analytics and security series have goals, which Rescore checks like activities' reachGoal
// and records as a conversion once. The log adds every published edit, pause, resume, SendStep
// call and conversion.

// The model's scoring rules: a small version of examples/scoring.yaml, decay included, so that a
// score can fall below the threshold and cross it again.
const modelScoring = `version: 1
bands: { warm: 25, hot: 50 }
mql_threshold: 50
hand_raise: [demo_request]
decay: { per_week: 5, after: 14d }
behaviour:
  - { id: open, event: open, points: 1, cap: { points: 5, per: 7d } }
  - { id: click, event: click, points: 3, cap: { points: 15, per: 7d } }
  - { id: page, event: page_view, points: 2, cap: { points: 10, per: 7d } }
  - { id: pricing, event: page_view, tag: pricing, points: 15 }
  - { id: download, event: content_download, points: 5 }
  - { id: demo, event: demo_request, points: 30 }
`

// The model's catalog: every series runs in weekday business hours in Berlin (or the lead's zone),
// outside a lunch-time quiet hour, at most two marketing emails a week; a lead quiet for 40 days
// gets the re-engagement series, and is sunset at its end.
const (
	modelWindowCron = "* 9-16 * * MON-FRI"
	modelWindowTZ   = "Europe/Berlin"
	modelQuietFrom  = 12 * 60 // 12:00
	modelQuietTo    = 13 * 60 // 13:00
	modelCapMax     = 2
	modelCapPer     = 7 * day
	modelInactive   = 40 * day
	// The recycle series' segment and the SLA of each handoff policy.
	modelRecycleSegment = "general"
	modelMQLResponse    = 2 * day
	modelDemoResponse   = day
	modelRemindBefore   = 4 * time.Hour
	modelReassignAfter  = 2
	// modelCoolOff is the team's recycle.cool_off (issue 8 #3).
	modelCoolOff = 7 * day
)

// modelStopStages are the stages in which no marketing email may go out: sales owns the lead, or it
// is done (every series' exit stages).
var modelStopStages = []lifecycle.Stage{lifecycle.MQL, lifecycle.SAL, lifecycle.SQL, lifecycle.Opportunity,
	lifecycle.Customer, lifecycle.Evangelist, lifecycle.Disqualified}

func modelSeries(id string, waits ...time.Duration) sequence.Sequence {
	s := sequence.Sequence{ID: id, Window: sequence.Window{Cron: modelWindowCron, TimeZone: modelWindowTZ},
		Exit: sequence.Exit{Stages: modelStopStages, Unsubscribed: true}}
	for i, w := range waits {
		s.Steps = append(s.Steps, sequence.Step{ID: fmt.Sprintf("s%d", i+1), Template: id, Subject: id, Wait: w})
	}
	return s
}

// The goals of the model's series: an analytics lead that looks at the pricing page has what the
// series is for (a human event, so a goal can be reached while a send is pending or the lead is
// held); a security lead's series is done once the lead is marketing qualified (a stage, reached
// with the handoff in the same rescore).
var (
	modelAnalyticsGoal = &sequence.Goal{Event: score.EventPageView, Tag: "pricing"}
	modelSecurityGoal  = &sequence.Goal{Stage: lifecycle.MQL}
)

func modelCatalog() *sequence.Catalog {
	analytics := modelSeries("analytics-series", 0, 3*day, 7*day)
	analytics.Goal = modelAnalyticsGoal
	security := modelSeries("security-series", 0, 2*day, 4*day)
	security.Goal = modelSecurityGoal
	return &sequence.Catalog{
		DefaultSegment: modelRecycleSegment,
		Window:         sequence.Window{Cron: modelWindowCron, TimeZone: modelWindowTZ},
		Segments: []sequence.Segment{
			{ID: "analytics", Interests: []string{"analytics"}, Sequence: analytics},
			{ID: "security", Interests: []string{"security"}, Sequence: security},
			{ID: modelRecycleSegment, Interests: []string{"newsletter"}, Sequence: modelSeries("general-series", 0, 5*day)},
		},
		FrequencyCap: &sequence.FrequencyCap{Max: modelCapMax, Per: modelCapPer},
		QuietHours:   &sequence.QuietHours{From: "12:00", To: "13:00"},
		Reengagement: &sequence.Reengagement{After: modelInactive, Sequence: modelSeries("reengage-series", 0, 5*day)},
	}
}

// modelTeam: reps per segment (round robin; a reassignment goes to the next rep, or the same rep
// when it is alone), and the manager every lapse escalates to.
var modelTeam = map[string][]string{
	"analytics":         {"rep-a", "rep-b"},
	"security":          {"rep-a"},
	modelRecycleSegment: {"rep-a"},
}

type sendKey struct{ seq, step string }

type mSend struct {
	key        sendKey
	id         string
	status     string // sent, suppressed, failed
	resolvedAt time.Time
}

// mMail is one marketing email handed to SMTP, with the lead's state when it went.
type mMail struct {
	key          sendKey
	sendID       string
	firstAttempt time.Time // the first SendStep call for the key: when the workflow decided to send
	at           time.Time
	ord          int
	subject      string
	zones        []string // the lead's time zones around the first attempt (see zonesAround)
	stage        lifecycle.Stage
	unsubscribed bool
	suppressed   bool
	salesOpen    bool // a handoff was open (assigned, unanswered)
}

// mAttempt is the SendStep calls for one key: the first (when the workflow decided to send, and
// the lead's time zone then) and the last temporary failure.
type mAttempt struct {
	first, lastFailure time.Time
	failures           int
	// zones are the lead's time zones around the first attempt (see zonesAround).
	zones []string
}

// mCall is one SendStep call: what the workflow asked for, and whether the send was paused.
type mCall struct {
	key          sendKey
	at           time.Time
	ord          int
	firstAttempt time.Time // of the decision this call belongs to (see mAttempt)
	subject      string
	pausable     bool
	released     bool
	paused       bool
}

// mEdit is a published version of the catalog: one edit of one series, and the lead's workflow
// state just before it was told (nil if the query failed).
type mEdit struct {
	at       time.Time
	ord      int
	version  int
	seq      string
	kind     string // wait, remove, insert, subject
	stepID   string // the step changed, removed or inserted
	old, new sequence.Sequence
	found    bool // the new version still has the series
	state    *LeadState
}

// mPause is a pause of a series (step "") or of one step, and its resume (zero while paused).
type mPause struct {
	seq, step string
	at        time.Time
	ord       int
	resumedAt time.Time
	resumeOrd int
}

// mResume is a resume that told the lead its held send may go: the held key, the lead's slot in
// the ramp, and the workflow state just before the signal (nil if the query failed).
type mResume struct {
	key       sendKey
	at        time.Time
	ord       int
	notBefore time.Time
	state     *LeadState
}

// mConversion is a goal reached, as activities' RecordConversion stores it: once per sequence.
type mConversion struct {
	seq     string
	at      time.Time
	ord     int
	eventID int64
}

type mZone struct {
	at time.Time
	tz string
}

type mEvent struct {
	id      int64
	typ     string
	tags    []string
	at      time.Time
	machine bool
	sendID  string
}

type mStage struct {
	from, to lifecycle.Stage
	at       time.Time
	ord      int
	why      string
}

type mEnroll struct {
	at       time.Time
	ord      int
	sequence sequence.Sequence
	// expected marks a series the lead is owed without a Plan call seen yet (recycled by a rep or a
	// lost deal): the workflow must enrol it.
	expected bool
	why      string
}

type mRescore struct {
	at    time.Time
	ord   int
	score float64
	ready bool
}

type mLapse struct {
	n   int
	at  time.Time
	ord int
}

type mAnswer struct {
	at                    time.Time // when the rep answered (RespondInput.At)
	storedAt              time.Time
	ord                   int
	repID, action, reason string
}

type mHandoff struct {
	id                 int64
	seq, assignment    int
	repID              string
	policy             string
	handRaise          string
	handedOffAt, dueAt time.Time
	response           time.Duration
	openedAt           time.Time
	ord                int
	lapses             []mLapse
	answer             *mAnswer
}

// mFaults are the faults the script arms; each is used up when it strikes.
type mFaults struct {
	// commitThenFail: the activity commits its effect, then returns an error (the worker crashed
	// before reporting): the retry finds the effect already there.
	commitThenFail map[string]int
	// sendTemp: the next SendStep attempts fail with a temporary SMTP error before anything is
	// claimed; outageUntil: every attempt before then does.
	sendTemp    int
	outageUntil time.Time
	// bounceNext: the next email is answered with 550 5.1.1 (a hard bounce).
	bounceNext bool
	// brokenNotice: the next notice to sales fails to render (a non-retryable business error).
	brokenNotice bool
}

type model struct {
	mu    sync.Mutex
	clock func() time.Time
	// cat is the current version of the catalog, versions[v-1] version v.
	cat      *sequence.Catalog
	versions []*sequence.Catalog
	score    *score.Model
	ord      int

	exists    bool
	segment   string
	interests []string
	stage     lifecycle.Stage
	timeZone  string
	// zones are the lead's time zones as captures set them, with when (the first at the zero time).
	zones        []mZone
	unsubscribed bool
	suppressed   string // the address's suppression reason, "" if none
	readyAt      time.Time

	events    []mEvent
	eventOrds map[int64]int
	sends     map[sendKey]*mSend
	attempts  map[sendKey]*mAttempt
	mails     []mMail
	stages    []mStage
	enrolls   []mEnroll
	rescores  []mRescore
	handoffs  []*mHandoff
	notices   map[string]int // notice key → how many went out (the store dedupes: at most 1)
	// brokenNotices are the notices whose template failed (a business error, recorded).
	brokenNotices map[string]bool
	counters      map[string]int
	faults        mFaults
	unsubAt       time.Time
	suppAt        time.Time
	nextSend      int
	errorsLog     []string // activity errors returned, for the script's report

	// Live sequences: the paused series ("seq/") and steps ("seq/step"), the held sends (the
	// held_sends rows, with when they were held), and the logs of edits, pauses, resumes,
	// SendStep calls and conversions.
	paused      map[string]bool
	held        map[sendKey]time.Time
	edits       []mEdit
	pauses      []*mPause
	resumes     []mResume
	calls       []mCall
	conversions []mConversion
	follows     int
	// alreadySent are the times SendStep answered already_sent: the workflow counts each toward
	// the frequency cap (it may be the retry of an email that just went out).
	alreadySent []time.Time
}

func newModel(clock func() time.Time) *model {
	m, diags := score.Parse("model-scoring.yaml", []byte(modelScoring))
	if diags != nil {
		panic(diags)
	}
	cat := modelCatalog()
	return &model{clock: clock, cat: cat, versions: []*sequence.Catalog{cat}, score: m, sends: map[sendKey]*mSend{}, attempts: map[sendKey]*mAttempt{},
		eventOrds: map[int64]int{}, notices: map[string]int{}, brokenNotices: map[string]bool{}, counters: map[string]int{}, faults: mFaults{commitThenFail: map[string]int{}},
		paused: map[string]bool{}, held: map[sendKey]time.Time{}}
}

// version is the number of the current version of the catalog.
func (m *model) version() int { return len(m.versions) }

// isPaused reports whether the step of seq is paused, by itself or with its series.
func (m *model) isPaused(k sendKey) bool { return m.paused[k.seq+"/"] || m.paused[k.seq+"/"+k.step] }

// conversion is the conversion recorded for seq, nil if none.
func (m *model) conversion(seq string) *mConversion {
	for i := range m.conversions {
		if m.conversions[i].seq == seq {
			return &m.conversions[i]
		}
	}
	return nil
}

// cloneCatalog copies c deeply enough that editing a sequence's steps of the copy leaves c as it
// was: a published version never changes.
func cloneCatalog(c *sequence.Catalog) *sequence.Catalog {
	n := *c
	n.Segments = slices.Clone(c.Segments)
	for i := range n.Segments {
		n.Segments[i].Sequence.Steps = slices.Clone(n.Segments[i].Sequence.Steps)
	}
	if c.Reengagement != nil {
		re := *c.Reengagement
		re.Sequence.Steps = slices.Clone(re.Sequence.Steps)
		n.Reengagement = &re
	}
	return &n
}

// sequenceIn points at the sequence seq of c, nil if c has none.
func sequenceIn(c *sequence.Catalog, seq string) *sequence.Sequence {
	for i := range c.Segments {
		if c.Segments[i].Sequence.ID == seq {
			return &c.Segments[i].Sequence
		}
	}
	if c.Reengagement != nil && c.Reengagement.Sequence.ID == seq {
		return &c.Reengagement.Sequence
	}
	return nil
}

func (m *model) now() time.Time { return m.clock() }

func (m *model) tick() int { m.ord++; return m.ord }

// retryAfterCommit reports whether the armed commit-then-fail fault of activity strikes now.
func (m *model) retryAfterCommit(activity string) error {
	if m.faults.commitThenFail[activity] > 0 {
		m.faults.commitThenFail[activity]--
		m.errorsLog = append(m.errorsLog, activity+": committed, then the worker lost the result")
		return errors.New(activity + ": worker lost the result after commit")
	}
	return nil
}

func (m *model) setStage(to lifecycle.Stage, why string) bool {
	if m.stage == to || lifecycle.CheckTransition(m.stage, to) != nil {
		return false
	}
	m.stages = append(m.stages, mStage{from: m.stage, to: to, at: m.now(), ord: m.tick(), why: why})
	m.stage = to
	if to == lifecycle.Recycled {
		seg, _ := m.cat.Segment(modelRecycleSegment)
		m.enrolls = append(m.enrolls, mEnroll{at: m.now(), ord: m.tick(), sequence: seg.Sequence, expected: true, why: why})
	}
	return true
}

// openHandoff is the handoff row whose clock runs: the newest, unanswered.
func (m *model) openHandoff() *mHandoff {
	if len(m.handoffs) == 0 {
		return nil
	}
	h := m.handoffs[len(m.handoffs)-1]
	if h.answer != nil {
		return nil
	}
	return h
}

// zonesAround are the lead's time zones in the minute up to t: a capture just before a send is
// decided may or may not have been seen by it (a send already retrying, signals in the same
// instant).
func (m *model) zonesAround(t time.Time) []string {
	tzs := []string{""}
	for _, z := range m.zones {
		switch {
		case !z.at.After(t.Add(-time.Minute)):
			tzs[0] = z.tz
		case !z.at.After(t):
			tzs = append(tzs, z.tz)
		}
	}
	return tzs
}

// --- what the API and the tracker do (the script's actions) ---

// capture stores a capture: the lead (created at the first), a download event tagged with the
// interest, the time zone.
func (m *model) capture(interest, tz string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	at := m.now()
	if !m.exists {
		m.exists, m.stage = true, lifecycle.Lead
		m.segment = m.cat.SegmentFor([]string{interest}).ID
		at = time.Time{}
	}
	if !slices.Contains(m.interests, interest) {
		m.interests = append(m.interests, interest)
	}
	if tz != "" {
		m.timeZone = tz
		m.zones = append(m.zones, mZone{at: at, tz: tz})
	}
	m.addEventLocked(score.EventContentDownload, []string{interest}, false, "")
}

func (m *model) addEvent(typ string, tags []string, machine bool, sendID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.addEventLocked(typ, tags, machine, sendID)
}

func (m *model) addEventLocked(typ string, tags []string, machine bool, sendID string) {
	e := mEvent{id: int64(len(m.events) + 1), typ: typ, tags: tags, at: m.now(), machine: machine, sendID: sendID}
	m.events = append(m.events, e)
	m.eventOrds[e.id] = m.tick()
}

func (m *model) unsubscribe() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.unsubscribed {
		m.unsubscribed, m.unsubAt = true, m.now()
		m.tick()
	}
	m.addEventLocked(score.EventUnsubscribe, nil, false, "")
}

// lostDeal is the rep's "qualify, open an opportunity, lose it" through the API: an accepted lead
// ends recycled. It reports whether it applied (the lead was accepted).
func (m *model) lostDeal() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stage != lifecycle.SAL && m.stage != lifecycle.SQL && m.stage != lifecycle.Opportunity {
		return false
	}
	m.setStage(lifecycle.SQL, "qualified")
	m.setStage(lifecycle.Opportunity, "opportunity opened")
	m.setStage(lifecycle.Recycled, "opportunity lost")
	return true
}

func (m *model) lastSendID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.mails) == 0 {
		return ""
	}
	return m.mails[len(m.mails)-1].sendID
}

func (m *model) arm(f func(*mFaults)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(&m.faults)
}

// --- the activities ---

// Plan is activities.Leads.Plan: the segment's sequence (activities.PlanFor, the real function),
// and the steps of it already done.
func (m *model) Plan(in activities.PlanInput) (activities.Plan, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.exists {
		return activities.Plan{}, temporal.NewNonRetryableApplicationError("lead does not exist", activities.ErrTypeUnknownLead, nil)
	}
	seg := m.segment
	if in.Segment != "" {
		seg = in.Segment
	}
	if _, ok := m.cat.Segment(seg); !ok {
		// As activities.Plan: a removed segment's lead follows the segment its interests map to now.
		seg = m.cat.SegmentForLead(m.interests, sequence.Facts{Stage: m.stage}).ID
	}
	p := activities.PlanFor(m.cat, seg, m.stage, m.timeZone)
	p.SalesEnabled = true
	p.Version = m.version()
	for k, s := range m.sends {
		if k.seq == p.Sequence.ID && s.status != "" {
			p.Done = append(p.Done, k.step)
		}
	}
	if m.conversion(p.Sequence.ID) != nil {
		// As activities.Plan: a series whose goal the lead reached is done.
		p.Done = p.Done[:0]
		for _, st := range p.Sequence.Steps {
			p.Done = append(p.Done, st.ID)
		}
	}
	slices.Sort(p.Done)
	m.enrolls = append(m.enrolls, mEnroll{at: m.now(), ord: m.tick(), sequence: p.Sequence, why: "plan " + p.Segment})
	return p, nil
}

// Rescore is activities.Leads.Rescore over the model's events.
func (m *model) Rescore(in activities.RescoreInput) (activities.RescoreResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.exists {
		return activities.RescoreResult{}, temporal.NewNonRetryableApplicationError("lead does not exist", activities.ErrTypeUnknownLead, nil)
	}
	res := activities.RescoreResult{Unsubscribed: m.unsubscribed}
	se := make([]score.Event, len(m.events))
	for i, e := range m.events {
		se[i] = score.Event{ID: fmt.Sprint(e.id), Type: e.typ, Tags: e.tags, At: e.at, Machine: e.machine}
		res.LastEventID = max(res.LastEventID, e.id)
		if e.typ != score.EventClick || e.machine {
			continue
		}
		if e.sendID != "" && !slices.Contains(res.ClickedSends, e.sendID) {
			res.ClickedSends = append(res.ClickedSends, e.sendID)
		}
		if e.id > in.SinceEventID && res.SwitchSegment == "" {
			for _, tag := range e.tags {
				if seg := m.cat.SegmentFor([]string{tag}); seg.ID != m.cat.DefaultSegment && seg.ID != m.segment {
					res.SwitchSegment = seg.ID
					break
				}
			}
		}
	}
	r := m.score.Score(score.Lead{}, se, m.now())
	res.Score, res.Band, res.LastEngagement = r.Total, r.Band, r.LastEngagement
	m.rescores = append(m.rescores, mRescore{at: m.now(), ord: m.tick(), score: r.Total, ready: r.HandoffReady})
	if r.HandoffReady && m.readyAt.IsZero() {
		m.readyAt = m.now()
	}
	if res.SwitchSegment != "" {
		m.segment = res.SwitchSegment
	}
	// As activities.Rescore does: after a recycle only what the lead did since counts (a
	// hand-raise at once, the threshold after the cool-off), and the handoff is reported from the
	// stored stage, so a retry after the commit still reports it.
	ready, reason, handRaise := r.HandoffReady, r.HandoffReason, r.HandRaiseEventID
	if m.stage == lifecycle.Recycled {
		var at time.Time
		for _, st := range m.stages {
			if st.to == lifecycle.Recycled {
				at = st.at
			}
		}
		var since []score.Event
		for _, e := range se {
			if e.At.After(at) {
				since = append(since, e)
			}
		}
		r2 := m.score.Score(score.Lead{}, since, m.now())
		ready, reason, handRaise = false, "", ""
		if r2.HandRaiseEventID != "" {
			ready, reason, handRaise = true, r2.HandoffReason, r2.HandRaiseEventID
		} else if r2.HandoffReady && !m.now().Before(at.Add(modelCoolOff)) {
			ready, reason = true, r2.HandoffReason+" since it was recycled"
		}
	}
	if ready && (m.stage == lifecycle.Subscriber || m.stage == lifecycle.Lead || m.stage == lifecycle.Recycled) {
		m.setStage(lifecycle.MQL, reason)
	}
	res.Stage = m.stage
	if g := in.Goal; g != nil {
		// As activities' reachGoal: the stored stage, or a human event since the last rescore.
		var eventID int64
		reached := g.ReachedByStage(m.stage)
		for _, e := range m.events {
			if !reached && e.id > in.SinceEventID && !e.machine && g.ReachedByEvent(e.typ, e.tags) {
				reached, eventID = true, e.id
			}
		}
		if reached && m.conversion(in.SequenceID) == nil {
			m.conversions = append(m.conversions, mConversion{seq: in.SequenceID, at: m.now(), ord: m.tick(), eventID: eventID})
		}
		res.GoalReached = reached
	}
	if m.stage == lifecycle.MQL {
		if reason == "" {
			reason = "marketing qualified"
		}
		h := &activities.Handoff{Reason: reason, Score: r.Total}
		if handRaise != "" {
			fmt.Sscan(handRaise, &h.EventID)
			for _, e := range m.events {
				if e.id == h.EventID {
					h.HandRaise = e.typ
				}
			}
		}
		res.Handoff = h
	}
	if err := m.retryAfterCommit("Rescore"); err != nil {
		return activities.RescoreResult{}, err
	}
	return res, nil
}

// SendStep is activities.Email.SendStep: at most once per key, nothing to an unsubscribed or
// suppressed lead, temporary failures before the claim, a hard bounce suppresses the address.
func (m *model) SendStep(in activities.SendInput) (activities.SendResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := sendKey{in.SequenceID, in.StepID}
	call := mCall{key: key, at: m.now(), subject: in.Subject, pausable: in.Pausable, released: in.Released}
	if in.Pausable && m.isPaused(key) {
		// As beforeClaim: nothing is claimed, the held send is recorded (its first time kept), and
		// the next call after the resume is a new decision, not a retry of this one.
		if _, ok := m.held[key]; !ok {
			m.held[key] = m.now()
		}
		delete(m.attempts, key)
		call.paused, call.ord, call.firstAttempt = true, m.tick(), m.now()
		m.calls = append(m.calls, call)
		return activities.SendResult{Status: activities.StatusPaused}, nil
	}
	if in.Pausable && in.Released {
		delete(m.held, key)
	}
	att, ok := m.attempts[key]
	// The test environment gives a send about 42 minutes of retries; a later call for the same
	// key is a new decision (the series planned again), not a retry of the old one.
	if !ok || (!att.lastFailure.IsZero() && m.now().Sub(att.lastFailure) > 2*time.Hour) {
		att = &mAttempt{first: m.now(), zones: m.zonesAround(m.now())}
		m.attempts[key] = att
	}
	call.ord, call.firstAttempt = m.tick(), att.first
	m.calls = append(m.calls, call)
	// As ClaimSend: a step already settled answers from its row before any SMTP is tried.
	s, stored := m.sends[key]
	if stored {
		res := activities.SendResult{SendID: s.id}
		switch s.status {
		case "sent":
			res.Status = activities.StatusAlreadySent
			m.alreadySent = append(m.alreadySent, m.now())
			return res, nil
		case "suppressed":
			res.Status, res.Reason = activities.StatusSuppressed, "earlier"
			return res, nil
		default:
			return res, temporal.NewNonRetryableApplicationError("step failed permanently earlier", activities.ErrTypeRejected, nil)
		}
	}
	if m.faults.sendTemp > 0 || m.now().Before(m.faults.outageUntil) {
		if m.faults.sendTemp > 0 {
			m.faults.sendTemp--
		}
		att.lastFailure = m.now()
		att.failures++
		return activities.SendResult{}, errors.New("smtp: 451 4.3.0 try again later")
	}
	m.nextSend++
	s = &mSend{key: key, id: fmt.Sprintf("send-%d", m.nextSend)}
	res := activities.SendResult{SendID: s.id}
	resolve := func(status string) {
		s.status, s.resolvedAt = status, m.now()
		m.sends[key] = s
		m.tick()
	}
	switch {
	case m.unsubscribed:
		resolve("suppressed")
		res.Status, res.Reason = activities.StatusUnsubscribed, "unsubscribed"
		return res, nil
	case m.suppressed != "":
		resolve("suppressed")
		res.Status, res.Reason = activities.StatusSuppressed, m.suppressed
		return res, nil
	case m.faults.bounceNext:
		m.faults.bounceNext = false
		resolve("failed")
		m.suppressed, m.suppAt = "hard bounce", m.now()
		return res, temporal.NewNonRetryableApplicationError("smtp rcpt to: 550 5.1.1 no such user", activities.ErrTypeHardBounce, nil)
	}
	resolve("sent")
	h := m.openHandoff()
	m.mails = append(m.mails, mMail{key: key, sendID: s.id, firstAttempt: att.first, at: m.now(), ord: m.ord, subject: in.Subject,
		zones: att.zones, stage: m.stage, unsubscribed: m.unsubscribed, suppressed: m.suppressed != "", salesOpen: h != nil})
	res.Status, res.MessageID = activities.StatusSent, "<"+s.id+"@model>"
	if err := m.retryAfterCommit("SendStep"); err != nil {
		return activities.SendResult{}, err
	}
	return res, nil
}

// Follow is activities.Leads.Follow: the sequence as the current version has it (Found false when
// that version dropped it), and the segment the lead follows there.
func (m *model) Follow(in activities.FollowInput) (activities.FollowResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.exists {
		return activities.FollowResult{}, temporal.NewNonRetryableApplicationError("lead does not exist", activities.ErrTypeUnknownLead, nil)
	}
	if in.Version > m.version() {
		return activities.FollowResult{}, fmt.Errorf("follow: sequences version %d is not loaded here yet (have %d)", in.Version, m.version())
	}
	m.follows++
	res := activities.FollowResult{Version: m.version()}
	res.Sequence, res.Found = m.cat.Sequence(in.SequenceID)
	seg := m.segment
	if s, ok := m.cat.SegmentOf(in.SequenceID); ok {
		seg = s.ID
	}
	if _, ok := m.cat.Segment(seg); !ok {
		seg = m.cat.SegmentForLead(m.interests, sequence.Facts{Stage: m.stage}).ID
	}
	p := activities.PlanFor(m.cat, seg, m.stage, m.timeZone)
	res.Segment, res.FrequencyCap, res.QuietHours, res.Reengagement = p.Segment, p.FrequencyCap, p.QuietHours, p.Reengagement
	return res, nil
}

// publish makes a new version of the catalog: the current one with edit applied to the sequence
// seq. It returns the new version's number and whether it still has seq.
func (m *model) publish(seq string, edit func(c *sequence.Catalog, s *sequence.Sequence)) (version int, found bool) {
	c := cloneCatalog(m.cat)
	if s := sequenceIn(c, seq); s != nil {
		edit(c, s)
	}
	m.cat = c
	m.versions = append(m.versions, c)
	return m.version(), sequenceIn(c, seq) != nil
}

func (m *model) noticeLocked(key string) error {
	if m.notices[key] > 0 {
		return nil
	}
	if m.faults.brokenNotice {
		m.faults.brokenNotice = false
		m.brokenNotices[key] = true
		m.errorsLog = append(m.errorsLog, "notice "+key+": template failed")
		return nil // as activities.Sales.notice: logged, and the handoff, lapse or reminder stands
	}
	m.notices[key]++
	return nil
}

func (m *model) findHandoff(id int64) *mHandoff {
	for _, h := range m.handoffs {
		if h.id == id {
			return h
		}
	}
	return nil
}

// Assign is activities.Sales.Assign: it finds or opens the row of (lead, seq, assignment), picks
// the rep round robin (the next one on a reassignment), and sends the handoff notice once.
func (m *model) Assign(in activities.AssignInput) (activities.Assignment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.exists {
		return activities.Assignment{}, temporal.NewNonRetryableApplicationError("lead does not exist", activities.ErrTypeUnknownLead, nil)
	}
	var h *mHandoff
	for _, x := range m.handoffs {
		if x.seq == in.Seq && x.assignment == in.Assignment {
			h = x
		}
	}
	if h == nil {
		reps := modelTeam[m.segment]
		m.counters[m.segment]++
		rep := reps[(m.counters[m.segment]-1)%len(reps)]
		if in.Current != "" {
			i := slices.Index(reps, in.Current)
			rep = reps[(i+1)%len(reps)]
		}
		policy, response := "mql", modelMQLResponse
		if in.HandRaiseEvent == score.EventDemoRequest {
			policy, response = "demo", modelDemoResponse
		}
		h = &mHandoff{id: int64(len(m.handoffs) + 1), seq: in.Seq, assignment: in.Assignment, repID: rep, policy: policy,
			handRaise: in.HandRaiseEvent, handedOffAt: in.At, dueAt: in.At.Add(response), response: response,
			openedAt: m.now(), ord: m.tick()}
		m.handoffs = append(m.handoffs, h)
	}
	out := activities.Assignment{HandoffID: h.id, RepID: h.repID, ManagerID: "mgr-eva", Policy: h.policy, DueAt: h.dueAt,
		RemindAt: h.handedOffAt.Add(h.response - modelRemindBefore), ReassignAfter: modelReassignAfter, RecycleSegment: modelRecycleSegment}
	if err := m.noticeLocked(fmt.Sprintf("handoff:%d", h.id)); err != nil {
		return activities.Assignment{}, err
	}
	if err := m.retryAfterCommit("Assign"); err != nil {
		return activities.Assignment{}, err
	}
	return out, nil
}

// Lapse is activities.Sales.Lapse: it records the lapse and escalates, once per lapse.
func (m *model) Lapse(in activities.LapseInput) (activities.LapseResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.findHandoff(in.HandoffID)
	if h == nil {
		return activities.LapseResult{}, fmt.Errorf("lapse of handoff %d: no such handoff", in.HandoffID)
	}
	if !slices.ContainsFunc(h.lapses, func(l mLapse) bool { return l.n == in.Lapse }) {
		h.lapses = append(h.lapses, mLapse{n: in.Lapse, at: in.At, ord: m.tick()})
	}
	if err := m.noticeLocked(fmt.Sprintf("escalation:%d:%d:manager", h.id, in.Lapse)); err != nil {
		return activities.LapseResult{}, err
	}
	if err := m.retryAfterCommit("Lapse"); err != nil {
		return activities.LapseResult{}, err
	}
	return activities.LapseResult{NextDueAt: in.At.Add(h.response)}, nil
}

// Remind is activities.Sales.Remind.
func (m *model) Remind(handoffID int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.findHandoff(handoffID) == nil {
		return fmt.Errorf("remind handoff %d: no such handoff", handoffID)
	}
	return m.noticeLocked(fmt.Sprintf("reminder:%d", handoffID))
}

// Respond is activities.Sales.Respond: the first answer to a handoff row is stored; accept → SAL,
// not_ready → recycled, any other reason → disqualified (when the transition is allowed).
func (m *model) Respond(in activities.RespondInput) (activities.RespondResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var stage lifecycle.Stage
	switch in.Action {
	case "accept":
		stage = lifecycle.SAL
	case "reject":
		stage = lifecycle.Disqualified
		if in.Reason == "not_ready" {
			stage = lifecycle.Recycled
		}
	default:
		return activities.RespondResult{}, temporal.NewNonRetryableApplicationError("unknown action "+in.Action, "BadAction", nil)
	}
	h := m.findHandoff(in.HandoffID)
	if h == nil {
		return activities.RespondResult{}, fmt.Errorf("record answer to handoff %d: no such handoff", in.HandoffID)
	}
	if h.answer == nil {
		h.answer = &mAnswer{at: in.At, storedAt: m.now(), ord: m.tick(), repID: in.RepID, action: in.Action, reason: in.Reason}
		m.setStage(stage, in.Action+" by "+in.RepID)
	}
	if err := m.retryAfterCommit("Respond"); err != nil {
		return activities.RespondResult{}, err
	}
	res := activities.RespondResult{Stage: m.stage}
	if m.stage == lifecycle.Recycled {
		res.RecycleSegment = modelRecycleSegment
	}
	return res, nil
}
