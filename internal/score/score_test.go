package score

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// now is the fixed clock every test scores at.
var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// ago returns the time days before now.
func ago(days float64) time.Time { return now.Add(-time.Duration(days * float64(day))) }

func ev(id, typ string, daysAgo float64, tags ...string) Event {
	return Event{ID: id, Type: typ, Tags: tags, At: ago(daysAgo)}
}

// model is the brief's model without decay and inactivity, so rule tests see plain points.
const model = `
version: 1
bands: {warm: 25, hot: 50}
mql_threshold: 50
hand_raise: [demo_request, quote_request, callback_request]
behaviour:
  - {id: email-open, event: open, points: 1, cap: {points: 5, per: 7d}}
  - {id: email-click, event: click, points: 3}
  - {id: pricing-page, event: page_view, tag: pricing, points: 15}
  - {id: blog-post, event: page_view, tag: blog, points: 1}
  - {id: any-page, event: page_view, points: 0.5}
  - {id: ebook, event: content_download, points: 5}
  - {id: webinar, event: webinar_registration, points: 10}
  - {id: demo, event: demo_request, points: 30}
fit:
  - {id: large-company, attribute: company_size, in: ["200-999", "1000+"], points: 10}
  - {id: target-industry, attribute: industry, in: [software, fintech], points: 5}
  - {id: phone-given, attribute: phone, present: true, points: 3}
  - {id: no-phone, attribute: phone, present: false, points: -1}
  - {id: non-target-region, attribute: region, in: [antarctica], points: -20}
negative:
  - {id: unsubscribed, event: unsubscribe, points: -50}
  - {id: hard-bounce, event: bounce, points: -30}
  - {id: pricing-complaint, event: complaint, tag: pricing, points: -5}
`

// phone keeps the no-phone fit rule out of tests about other rules.
var phone = Lead{Attributes: map[string]string{"phone": "+49 30 1234"}}

func TestBehaviour(t *testing.T) {
	t.Parallel()
	m := mustParse(t, model)
	tests := []struct {
		name      string
		events    []Event
		behaviour float64
		rules     map[string]float64
	}{
		{"nothing", nil, 0, map[string]float64{}},
		{"click", []Event{ev("c1", EventClick, 1)}, 3, map[string]float64{"email-click": 3}},
		{"every click counts", []Event{ev("c1", EventClick, 1), ev("c2", EventClick, 2)}, 6, map[string]float64{"email-click": 6}},
		{"pricing page matches the tagged and the generic rule", []Event{ev("p", EventPageView, 1, "pricing")}, 15.5,
			map[string]float64{"pricing-page": 15, "any-page": 0.5}},
		{"tags match ignoring case and space", []Event{ev("p", EventPageView, 1, " Pricing", "blog")}, 16.5,
			map[string]float64{"pricing-page": 15, "blog-post": 1, "any-page": 0.5}},
		{"untagged page view only matches the generic rule", []Event{ev("p", EventPageView, 1)}, 0.5, map[string]float64{"any-page": 0.5}},
		{"unknown and unscored types are ignored", []Event{ev("x", "teleport", 1), ev("r", EventReply, 1)}, 0, map[string]float64{}},
		{"demo", []Event{ev("d", EventDemoRequest, 1), ev("e", EventContentDownload, 2), ev("w", EventWebinarRegistration, 3)}, 45,
			map[string]float64{"demo": 30, "ebook": 5, "webinar": 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := m.Score(phone, tt.events, now)
			assert.Equal(t, tt.behaviour, r.Behaviour)
			got := map[string]float64{}
			for _, rs := range r.Breakdown {
				if rs.Kind == KindBehaviour {
					got[rs.RuleID] = rs.Points
				}
			}
			assert.Equal(t, tt.rules, got)
		})
	}
}

func TestFit(t *testing.T) {
	t.Parallel()
	m := mustParse(t, model)
	tests := []struct {
		name  string
		attrs map[string]string
		fit   float64
		rules []string
	}{
		{"no attributes", nil, -1, []string{"no-phone"}},
		{"in", map[string]string{"company_size": "1000+", "industry": "fintech"}, 14, []string{"large-company", "target-industry", "no-phone"}},
		{"in ignores case and space", map[string]string{"industry": " Software "}, 4, []string{"target-industry", "no-phone"}},
		{"in misses", map[string]string{"company_size": "1-10", "industry": "farming"}, -1, []string{"no-phone"}},
		{"present", map[string]string{"phone": "+1 555 0100"}, 3, []string{"phone-given"}},
		{"blank is not present", map[string]string{"phone": "  "}, -1, []string{"no-phone"}},
		{"negative fit", map[string]string{"phone": "1", "region": "Antarctica"}, -17, []string{"phone-given", "non-target-region"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := m.Score(Lead{Attributes: tt.attrs}, nil, now)
			assert.Equal(t, tt.fit, r.Fit)
			assert.Equal(t, tt.fit, r.Total, "fit alone")
			var got []string
			for _, rs := range r.Breakdown {
				require.Equal(t, KindFit, rs.Kind)
				assert.Zero(t, rs.Events)
				got = append(got, rs.RuleID)
			}
			assert.Equal(t, tt.rules, got)
		})
	}
}

func TestNegative(t *testing.T) {
	t.Parallel()
	m := mustParse(t, model+`  - {id: inactive, inactive_for: 60d, points: -10}
`)
	tests := []struct {
		name     string
		events   []Event
		negative float64
		rules    map[string]int // rule → matched events
	}{
		{"no events: inactivity unknown", nil, 0, map[string]int{}},
		{"unsubscribe", []Event{ev("u", EventUnsubscribe, 1)}, -50, map[string]int{"unsubscribed": 1}},
		{"each negative rule applies once", []Event{ev("b1", EventBounce, 1), ev("b2", EventBounce, 2)}, -30, map[string]int{"hard-bounce": 2}},
		{"negative with tag", []Event{ev("c1", EventComplaint, 1), ev("c2", EventComplaint, 2, "pricing")}, -5, map[string]int{"pricing-complaint": 1}},
		{"engaged 59 days ago", []Event{ev("c", EventClick, 59)}, 0, map[string]int{}},
		{"engaged 60 days ago", []Event{ev("c", EventClick, 60)}, -10, map[string]int{"inactive": 0}},
		{"opens do not count as engagement", []Event{ev("c", EventClick, 61), ev("o", EventOpen, 1)}, -10, map[string]int{"inactive": 0}},
		{"never engaged: clock starts at the first event", []Event{ev("o1", EventOpen, 70), ev("o2", EventOpen, 1)}, -10, map[string]int{"inactive": 0}},
		{"never engaged, recent first event", []Event{ev("o1", EventOpen, 30)}, 0, map[string]int{}},
		{"bounce and inactivity", []Event{ev("b", EventBounce, 90)}, -40, map[string]int{"hard-bounce": 1, "inactive": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := m.Score(phone, tt.events, now)
			assert.Equal(t, tt.negative, r.Negative)
			got := map[string]int{}
			for _, rs := range r.Breakdown {
				if rs.Kind == KindNegative {
					got[rs.RuleID] = rs.Events
				}
			}
			assert.Equal(t, tt.rules, got)
		})
	}
}

func TestLastEngagement(t *testing.T) {
	t.Parallel()
	m := mustParse(t, model)
	r := m.Score(phone, []Event{ev("c", EventClick, 10), ev("p", EventPageView, 3), ev("o", EventOpen, 1)}, now)
	assert.Equal(t, ago(3), r.LastEngagement)
	assert.True(t, m.Score(phone, []Event{ev("o", EventOpen, 1)}, now).LastEngagement.IsZero())
}

func TestCap(t *testing.T) {
	t.Parallel()
	m := mustParse(t, `
version: 1
bands: {warm: 25, hot: 50}
mql_threshold: 50
behaviour:
  - {id: click, event: click, points: 2, cap: {points: 5, per: 7d}}
  - {id: open, event: open, points: 1}
`)
	start := now.Add(-30 * day)
	at := func(days float64) Event {
		return Event{ID: strconv.FormatFloat(days, 'f', -1, 64), Type: EventClick, At: start.Add(time.Duration(days * float64(day)))}
	}
	tests := []struct {
		name   string
		days   []float64
		points float64
		capped bool
	}{
		{"under the cap", []float64{0, 1}, 4, false},
		{"third click gets what is left", []float64{0, 1, 2}, 5, true},
		{"fourth gets nothing", []float64{0, 1, 2, 3}, 5, true},
		// The window is (t-7d, t]: at day 7 the day-0 click has left it, days 1 and 2 (3 points) remain.
		{"window slides", []float64{0, 1, 2, 3, 7}, 7, true},
		// At day 7.5 the window holds days 1, 2, 3 and 7: 2+1+0+2 = 5, so nothing.
		{"still full half a day later", []float64{0, 1, 2, 3, 7, 7.5}, 7, true},
		// At day 8.5 it holds days 2, 3, 7, 7.5: 1+0+2+0 = 3, so 2 more.
		{"and frees up again", []float64{0, 1, 2, 3, 7, 7.5, 8.5}, 9, true},
		{"spread out, never capped", []float64{0, 7, 14, 21}, 8, false},
		{"a burst at one instant", []float64{5, 5, 5, 5}, 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var events []Event
			for i, d := range tt.days {
				e := at(d)
				e.ID += "-" + strconv.Itoa(i)
				events = append(events, e)
			}
			r := m.Score(phone, events, now)
			require.NotEmpty(t, r.Breakdown)
			assert.Equal(t, RuleScore{RuleID: "click", Kind: KindBehaviour, Points: tt.points, Events: len(tt.days), Capped: tt.capped}, r.Breakdown[0])
			assert.Equal(t, tt.points, r.Total)
		})
	}
}

func TestDecayHalfLife(t *testing.T) {
	t.Parallel()
	m := mustParse(t, `
version: 1
bands: {warm: 25, hot: 50}
mql_threshold: 50
decay: {half_life: 30d}
behaviour:
  - {id: webinar, event: webinar_registration, points: 16}
fit:
  - {id: phone-given, attribute: phone, present: true, points: 3}
`)
	tests := []struct {
		name             string
		events           []Event
		behaviour, decay float64
	}{
		{"fresh", []Event{ev("w", EventWebinarRegistration, 0)}, 16, 0},
		{"one half-life", []Event{ev("w", EventWebinarRegistration, 30)}, 16, -8},
		{"two half-lives", []Event{ev("w", EventWebinarRegistration, 60)}, 16, -12},
		{"half a half-life: 16/√2 = 11.31", []Event{ev("w", EventWebinarRegistration, 15)}, 16, -4.69},
		// 16 + 8 + 4 = 28 left of 48, rounded once over the sum.
		{"each event by its own age", []Event{ev("a", EventWebinarRegistration, 0), ev("b", EventWebinarRegistration, 30), ev("c", EventWebinarRegistration, 60)}, 48, -20},
		{"long gone", []Event{ev("w", EventWebinarRegistration, 3000)}, 16, -16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := m.Score(phone, tt.events, now)
			assert.Equal(t, tt.behaviour, r.Behaviour)
			assert.Equal(t, tt.decay, r.Decay)
			assert.Equal(t, 3.0, r.Fit, "fit never decays")
			assert.InDelta(t, tt.behaviour+tt.decay+3, r.Total, 1e-9)
			if tt.decay != 0 {
				assert.Contains(t, r.Breakdown, RuleScore{RuleID: DecayRuleID, Kind: KindDecay, Points: tt.decay})
			}
		})
	}
}

func TestDecayPerWeek(t *testing.T) {
	t.Parallel()
	m := mustParse(t, `
version: 1
bands: {warm: 25, hot: 50}
mql_threshold: 50
decay: {per_week: 5, after: 14d}
behaviour:
  - {id: form, event: form_submit, points: 12}
  - {id: open, event: open, points: 1}
fit:
  - {id: phone-given, attribute: phone, present: true, points: 3}
negative:
  - {id: bounced, event: bounce, points: -30}
`)
	tests := []struct {
		name   string
		events []Event
		decay  float64
		total  float64
	}{
		{"engaged 14 days ago", []Event{ev("f", EventFormSubmit, 14)}, 0, 15},
		{"20 days: no full week past the grace period", []Event{ev("f", EventFormSubmit, 20)}, 0, 15},
		{"21 days: one week", []Event{ev("f", EventFormSubmit, 21)}, -5, 10},
		{"35 days: three weeks, but never below zero behaviour", []Event{ev("f", EventFormSubmit, 35)}, -12, 3},
		{"opens do not stop the clock", []Event{ev("f", EventFormSubmit, 28), ev("o", EventOpen, 1)}, -10, 6},
		{"never engaged: clock from the first event", []Event{ev("o1", EventOpen, 28), ev("o2", EventOpen, 1)}, -2, 3},
		{"negative points are not decay's to take", []Event{ev("f", EventFormSubmit, 100), ev("b", EventBounce, 100)}, -12, -27},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := m.Score(phone, tt.events, now)
			assert.Equal(t, tt.decay, r.Decay)
			assert.Equal(t, tt.total, r.Total)
		})
	}
}

func TestBandsAndThreshold(t *testing.T) {
	t.Parallel()
	present := true
	score := func(points float64) Result {
		m := &Model{
			Version: 1, Bands: Bands{Warm: 25, Hot: 60}, MQLThreshold: 50,
			Fit: []FitRule{{ID: "f", Attribute: "phone", Present: &present, Points: points}},
		}
		return m.Score(phone, nil, now)
	}
	tests := []struct {
		points float64
		band   string
		ready  bool
		reason string
	}{
		{-5, BandCold, false, ""},
		{24.99, BandCold, false, ""},
		{25, BandWarm, false, ""},
		{49.99, BandWarm, false, ""},
		{50, BandWarm, true, "score 50 ≥ MQL threshold 50"},
		{57.5, BandWarm, true, "score 57.5 ≥ MQL threshold 50"},
		{60, BandHot, true, "score 60 ≥ MQL threshold 50"},
	}
	for _, tt := range tests {
		r := score(tt.points)
		assert.Equal(t, tt.band, r.Band, "%v", tt.points)
		assert.Equal(t, tt.ready, r.HandoffReady, "%v", tt.points)
		assert.Equal(t, tt.reason, r.HandoffReason, "%v", tt.points)
		assert.Empty(t, r.HandRaiseEventID)
	}
}

func TestHandRaise(t *testing.T) {
	t.Parallel()
	m := mustParse(t, model)
	tests := []struct {
		name    string
		events  []Event
		ready   bool
		reason  string
		eventID string
	}{
		{"demo request with a low score", []Event{ev("d", EventDemoRequest, 2)}, true, "hand-raise: demo_request", "d"},
		{"quote request scores nothing but hands off", []Event{ev("q", EventQuoteRequest, 2)}, true, "hand-raise: quote_request", "q"},
		{"earliest hand-raise is named", []Event{ev("q", EventQuoteRequest, 1), ev("cb", EventCallbackRequest, 5), ev("d", EventDemoRequest, 3)},
			true, "hand-raise: callback_request", "cb"},
		{"hand-raise named even when the score qualifies too",
			[]Event{ev("d", EventDemoRequest, 1), ev("p1", EventPageView, 2, "pricing"), ev("p2", EventPageView, 3, "pricing")},
			true, "hand-raise: demo_request", "d"},
		{"score alone", []Event{ev("p1", EventPageView, 1, "pricing"), ev("p2", EventPageView, 2, "pricing"),
			ev("p3", EventPageView, 3, "pricing"), ev("p4", EventPageView, 4, "pricing")}, true, "score 65 ≥ MQL threshold 50", ""},
		{"a bot's demo request is no hand-raise", []Event{{ID: "d", Type: EventDemoRequest, At: ago(1), Machine: true}}, false, "", ""},
		{"a future demo request is no hand-raise", []Event{ev("d", EventDemoRequest, -1)}, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := m.Score(phone, tt.events, now)
			assert.Equal(t, tt.ready, r.HandoffReady)
			assert.Equal(t, tt.reason, r.HandoffReason)
			assert.Equal(t, tt.eventID, r.HandRaiseEventID)
		})
	}
}

func TestMachineAndDuplicateEventsAreNotScored(t *testing.T) {
	t.Parallel()
	m := mustParse(t, model+`  - {id: inactive, inactive_for: 60d, points: -10}
`)
	real := []Event{ev("c", EventClick, 90), ev("p", EventPageView, 80, "pricing")}
	base := m.Score(phone, real, now)

	noise := []Event{
		{ID: "bot-click", Type: EventClick, At: ago(1), Machine: true},
		{ID: "bot-open", Type: EventOpen, At: ago(1), Machine: true},
		{ID: "p-again", Type: EventPageView, Tags: []string{"pricing"}, At: ago(1), Duplicate: true},
		{ID: "dup-unsub", Type: EventUnsubscribe, At: ago(1), Duplicate: true},
		{ID: "bot-demo", Type: EventDemoRequest, At: ago(1), Machine: true},
	}
	r := m.Score(phone, append(real, noise...), now)
	assert.Equal(t, base, r, "noise changes nothing, not even the inactivity clock")
	assert.Equal(t, 3+18.5-10, r.Total, "phone 3 + click 3 + pricing 15.5 − inactive 10")
	assert.Equal(t, ago(80), r.LastEngagement)
}

func TestEventsAfterNowAreIgnored(t *testing.T) {
	t.Parallel()
	m := mustParse(t, model)
	past := []Event{ev("c", EventClick, 1)}
	future := []Event{ev("c2", EventClick, -0.001), ev("u", EventUnsubscribe, -1), ev("p", EventPageView, -2, "pricing")}
	assert.Equal(t, m.Score(phone, past, now), m.Score(phone, append(past, future...), now))

	atNow := m.Score(phone, []Event{{ID: "c", Type: EventClick, At: now}}, now)
	assert.Equal(t, 3.0, atNow.Behaviour, "an event at now counts")
}

func TestBreakdownOrder(t *testing.T) {
	t.Parallel()
	m := mustParse(t, `
version: 1
bands: {warm: 25, hot: 50}
mql_threshold: 50
decay: {half_life: 10d}
behaviour:
  - {id: b2, event: click, points: 1}
  - {id: b1, event: open, points: 1}
  - {id: unused, event: reply, points: 1}
fit:
  - {id: f2, attribute: phone, present: true, points: 1}
  - {id: f1, attribute: phone, present: true, points: 1}
negative:
  - {id: n2, event: bounce, points: -1}
  - {id: n1, event: unsubscribe, points: -1}
`)
	r := m.Score(phone, []Event{ev("u", EventUnsubscribe, 10), ev("b", EventBounce, 10), ev("o", EventOpen, 10), ev("c", EventClick, 10)}, now)
	var ids []string
	for _, rs := range r.Breakdown {
		ids = append(ids, rs.RuleID)
	}
	assert.Equal(t, []string{"b2", "b1", DecayRuleID, "f2", "f1", "n2", "n1"}, ids)
	var sum float64
	for _, rs := range r.Breakdown {
		sum += rs.Points
	}
	assert.InDelta(t, r.Total, sum, 1e-9, "the breakdown adds up to the total")
	assert.Equal(t, 2.0, r.Behaviour)
	assert.Equal(t, -1.0, r.Decay)
}

func TestDeterminism(t *testing.T) {
	t.Parallel()
	m, err := Load(exampleFile)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	types := EventTypes()
	var events []Event
	for i := range 300 {
		e := Event{
			ID:   "e" + strconv.Itoa(rng.IntN(250)), // some IDs repeat
			Type: types[rng.IntN(len(types))],
			// Coarse times so that many events share an instant.
			At:        now.Add(-time.Duration(rng.IntN(120)) * 12 * time.Hour).Add(time.Duration(rng.IntN(3)-1) * day),
			Machine:   i%17 == 0,
			Duplicate: i%23 == 0,
		}
		switch rng.IntN(3) {
		case 0:
			e.Tags = []string{"pricing"}
		case 1:
			e.Tags = []string{"blog", "pricing"}
		}
		events = append(events, e)
	}
	lead := Lead{Attributes: map[string]string{"company_size": "1000+", "industry": "fintech", "phone": "1"}}
	want := m.Score(lead, events, now)
	for range 50 {
		shuffled := append([]Event(nil), events...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		require.Equal(t, want, m.Score(lead, shuffled, now))
	}
	assert.Equal(t, want, m.Score(lead, events, now), "scoring does not modify its input")
}

// TestExampleScenario walks a lead through the source material's numbers.
func TestExampleScenario(t *testing.T) {
	t.Parallel()
	m, err := Load(exampleFile)
	require.NoError(t, err)
	lead := Lead{Attributes: map[string]string{"company_size": "200-999", "phone": "+49 30 1234", "region": "emea"}}
	events := []Event{
		ev("signup", EventNewsletterSignup, 10),
		ev("ebook", EventContentDownload, 9),
		ev("pricing", EventPageView, 8, "pricing"),
	}
	r := m.Score(lead, events, now)
	assert.Equal(t, 13.0, r.Fit, "large company 10 + phone 3")
	assert.Equal(t, 25.0, r.Behaviour, "newsletter 5 + e-book 5 + pricing 15")
	assert.Equal(t, 38.0, r.Total)
	assert.Equal(t, BandCold, r.Band)
	assert.False(t, r.HandoffReady)

	events = append(events, ev("webinar", EventWebinarRegistration, 5), ev("blog", EventPageView, 4, "blog"))
	r = m.Score(lead, events, now)
	assert.Equal(t, 49.0, r.Total, "webinar 10 + blog post 1")
	assert.False(t, r.HandoffReady)

	events = append(events, ev("click", EventClick, 3))
	r = m.Score(lead, events, now)
	assert.Equal(t, 52.0, r.Total)
	assert.Equal(t, BandWarm, r.Band)
	assert.Equal(t, "score 52 ≥ MQL threshold 50", r.HandoffReason)

	// Three quiet months later, per-week decay has eaten the behaviour points and inactivity costs 10.
	later := now.Add(90 * day)
	r = m.Score(lead, events, later)
	assert.Equal(t, -39.0, r.Decay)
	assert.Equal(t, 13.0-10, r.Total)
	assert.False(t, r.HandoffReady)

	r = m.Score(Lead{Attributes: map[string]string{"region": "Antarctica"}}, []Event{ev("demo", EventDemoRequest, 1)}, now)
	assert.Equal(t, 10.0, r.Total, "demo 30 − non-target region 20")
	assert.True(t, r.HandoffReady)
	assert.Equal(t, "hand-raise: demo_request", r.HandoffReason)
	assert.Equal(t, "demo", r.HandRaiseEventID)
}
