// Package score owns lead scoring: the model marketers write in YAML (fit, behaviour and negative
// rules, caps, decay, bands, the MQL threshold and hand-raise events) and the pure function that
// turns a lead's attributes and events into a score, a band and a hand-off decision with its
// breakdown. Scoring reads no clock and does no I/O: the same model, events and `now` always give the
// same Result, so it may run inside workflow code or be recomputed later to explain a handoff.
package score

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Model is a parsed scoring model. It is plain data, so it can travel in Temporal payloads.
type Model struct {
	Version int   `json:"version"`
	Bands   Bands `json:"bands"`
	// MQLThreshold is the score at or above which a lead is hand-off ready (marketing qualified).
	MQLThreshold float64 `json:"mql_threshold"`
	// HandRaise lists event types that make a lead hand-off ready whatever its score.
	HandRaise []string `json:"hand_raise,omitempty"`
	// Decay is nil when behaviour points never fade.
	Decay     *Decay          `json:"decay,omitempty"`
	Behaviour []BehaviourRule `json:"behaviour"`
	Fit       []FitRule       `json:"fit,omitempty"`
	Negative  []NegativeRule  `json:"negative,omitempty"`
}

// Bands are the lower bounds of the warm and hot bands; anything below Warm is cold.
type Bands struct {
	Warm float64 `json:"warm"`
	Hot  float64 `json:"hot"`
}

// The bands a Result can be in.
const (
	BandCold = "cold"
	BandWarm = "warm"
	BandHot  = "hot"
)

// Decay makes behaviour points fade; fit and negative points never decay. Exactly one of HalfLife
// and PerWeek is set.
type Decay struct {
	// HalfLife halves each behaviour event's points for every HalfLife of age at scoring time.
	HalfLife time.Duration `json:"half_life,omitempty"`
	// PerWeek is taken off the behaviour subtotal (never below zero) for every full week without
	// engagement once the lead has been inactive for After.
	PerWeek float64       `json:"per_week,omitempty"`
	After   time.Duration `json:"after,omitempty"`
}

// BehaviourRule awards points for each event of a type, optionally only events carrying a tag.
type BehaviourRule struct {
	ID     string  `json:"id"`
	Event  string  `json:"event"`
	Tag    string  `json:"tag,omitempty"`
	Points float64 `json:"points"`
	Cap    *Cap    `json:"cap,omitempty"`
}

// Cap limits the points one behaviour rule awards within any sliding window of length Per.
type Cap struct {
	Points float64       `json:"points"`
	Per    time.Duration `json:"per"`
}

// FitRule scores who the lead is: an attribute whose value is one of In (ignoring case and
// surrounding space), or, when In is empty, an attribute that is present (non-blank) or absent as
// Present says. Fit points apply once and never decay.
type FitRule struct {
	ID        string   `json:"id"`
	Attribute string   `json:"attribute"`
	In        []string `json:"in,omitempty"`
	Present   *bool    `json:"present,omitempty"`
	Points    float64  `json:"points"`
}

// NegativeRule takes points away once when the lead has at least one matching event (Event, and
// Tag when set), or when it has had no engagement for InactiveFor. Exactly one of Event and
// InactiveFor is set.
type NegativeRule struct {
	ID          string        `json:"id"`
	Event       string        `json:"event,omitempty"`
	Tag         string        `json:"tag,omitempty"`
	InactiveFor time.Duration `json:"inactive_for,omitempty"`
	Points      float64       `json:"points"`
}

// The event types tend records. Engagement events (see IsEngagement) restart the inactivity clock.
const (
	EventOpen                = "open"
	EventClick               = "click"
	EventPageView            = "page_view"
	EventContentDownload     = "content_download"
	EventWebinarRegistration = "webinar_registration"
	EventWebinarAttended     = "webinar_attended"
	EventDemoRequest         = "demo_request"
	EventQuoteRequest        = "quote_request"
	EventCallbackRequest     = "callback_request"
	EventFormSubmit          = "form_submit"
	EventReply               = "reply"
	EventNewsletterSignup    = "newsletter_signup"
	EventUnsubscribe         = "unsubscribe"
	EventBounce              = "bounce"
	EventComplaint           = "complaint"
)

// EventTypes returns every valid event type, in a fixed order.
func EventTypes() []string {
	return []string{
		EventOpen, EventClick, EventPageView, EventContentDownload, EventWebinarRegistration,
		EventWebinarAttended, EventDemoRequest, EventQuoteRequest, EventCallbackRequest,
		EventFormSubmit, EventReply, EventNewsletterSignup, EventUnsubscribe, EventBounce,
		EventComplaint,
	}
}

// ValidEventType reports whether t is one of EventTypes.
func ValidEventType(t string) bool { return slices.Contains(EventTypes(), t) }

// IsEngagement reports whether an event of type t shows a person engaging. Opens do not count:
// privacy proxies and security scanners open mail on their own.
func IsEngagement(t string) bool {
	switch t {
	case EventClick, EventPageView, EventContentDownload, EventWebinarRegistration, EventWebinarAttended,
		EventDemoRequest, EventQuoteRequest, EventCallbackRequest, EventFormSubmit, EventReply:
		return true
	}
	return false
}

// Event is something a lead did, as recorded.
type Event struct {
	ID   string    `json:"id"`
	Type string    `json:"type"`
	Tags []string  `json:"tags,omitempty"`
	At   time.Time `json:"at"`
	// Machine marks an open or click made by a bot or privacy proxy; Duplicate marks a repeat of an
	// event already recorded. Both are stored but never scored.
	Machine   bool `json:"machine,omitempty"`
	Duplicate bool `json:"duplicate,omitempty"`
}

// Lead is what scoring needs to know about a lead besides its events.
type Lead struct {
	Attributes map[string]string `json:"attributes,omitempty"`
}

// The kinds of a RuleScore.
const (
	KindBehaviour = "behaviour"
	KindFit       = "fit"
	KindNegative  = "negative"
	KindDecay     = "decay"
)

// DecayRuleID is the RuleID of the breakdown line that holds the decay.
const DecayRuleID = "decay"

// RuleScore is one line of a score's breakdown.
type RuleScore struct {
	RuleID string `json:"rule_id"`
	Kind   string `json:"kind"`
	// Points is what the rule contributed, after caps; decay is its own line.
	Points float64 `json:"points"`
	// Events is how many scored events matched the rule (0 for fit, inactivity and decay).
	Events int `json:"events"`
	// Capped is true when the rule's cap withheld some points.
	Capped bool `json:"capped,omitempty"`
}

// Result is a lead's score at one moment. Every amount is in hundredths of a point, and Total is exactly
// Fit + Behaviour + Negative + Decay.
type Result struct {
	Total     float64 `json:"total"`
	Fit       float64 `json:"fit"`
	Behaviour float64 `json:"behaviour"`
	Negative  float64 `json:"negative"`
	// Decay is zero or negative.
	Decay float64 `json:"decay"`
	Band  string  `json:"band"`
	// HandoffReady is true when Total reaches the MQL threshold or the lead raised its hand.
	HandoffReady bool `json:"handoff_ready"`
	// HandoffReason says why, e.g. "hand-raise: demo_request" or "score 57 ≥ MQL threshold 50";
	// a hand-raise is named even when the score also qualifies, since it tells sales more.
	HandoffReason string `json:"handoff_reason,omitempty"`
	// HandRaiseEventID is the earliest hand-raise event, when there is one.
	HandRaiseEventID string `json:"hand_raise_event_id,omitempty"`
	// Breakdown lists the rules that contributed: behaviour rules, then decay, then fit, then
	// negative rules, each in file order.
	Breakdown []RuleScore `json:"breakdown"`
	// LastEngagement is the time of the latest engagement event; zero when there is none.
	LastEngagement time.Time `json:"last_engagement"`
}

const week = 7 * 24 * time.Hour

// Score scores a lead from its attributes and events as of now. It is pure: it ignores events after
// now, and machine and duplicate events; it sorts the rest by (At, ID) itself, so the order of events
// does not matter.
//
// An event counts for every behaviour rule whose event type and tag match it, so a pricing page view
// can score under both a "pricing" rule and a generic page_view rule. Points are added in hundredths, so
// sums and caps are exact; only half-life decay is computed in floating point, and it is rounded to
// hundredths once, over the whole behaviour subtotal.
func (m *Model) Score(lead Lead, events []Event, now time.Time) Result {
	evs := scorable(events, now)
	r := Result{Breakdown: []RuleScore{}}

	// The inactivity clock runs from the last engagement or, for a lead that never engaged, from its
	// first recorded event; a lead with no events at all has not been idle for any known time.
	var idle time.Duration
	known := false
	for _, e := range evs {
		if IsEngagement(e.Type) {
			r.LastEngagement = e.At
		}
	}
	switch {
	case !r.LastEngagement.IsZero():
		idle, known = now.Sub(r.LastEngagement), true
	case len(evs) > 0:
		idle, known = now.Sub(evs[0].At), true
	}

	var behaviour int64
	var faded float64 // behaviour after half-life decay, in cents
	for _, rule := range m.Behaviour {
		awards, matched, capped := rule.award(evs)
		if matched == 0 {
			continue
		}
		var sum int64
		for _, a := range awards {
			sum += a.cents
			if m.Decay != nil && m.Decay.HalfLife > 0 {
				age := now.Sub(a.at)
				faded += float64(a.cents) * math.Exp2(-float64(age)/float64(m.Decay.HalfLife))
			}
		}
		behaviour += sum
		r.Breakdown = append(r.Breakdown, RuleScore{RuleID: rule.ID, Kind: KindBehaviour, Points: fromCents(sum), Events: matched, Capped: capped})
	}

	var decay int64
	if d := m.Decay; d != nil {
		switch {
		case d.HalfLife > 0:
			decay = min(int64(math.Round(faded))-behaviour, 0)
		case d.PerWeek > 0 && known && idle > d.After:
			weeks := int64((idle - d.After) / week)
			decay = -min(behaviour, weeks*cents(d.PerWeek))
		}
	}
	if decay != 0 {
		r.Breakdown = append(r.Breakdown, RuleScore{RuleID: DecayRuleID, Kind: KindDecay, Points: fromCents(decay)})
	}

	var fit int64
	for _, rule := range m.Fit {
		if rule.matches(lead) {
			fit += cents(rule.Points)
			r.Breakdown = append(r.Breakdown, RuleScore{RuleID: rule.ID, Kind: KindFit, Points: fromCents(cents(rule.Points))})
		}
	}

	var negative int64
	for _, rule := range m.Negative {
		matched := 0
		if rule.InactiveFor > 0 {
			if !known || idle < rule.InactiveFor {
				continue
			}
		} else {
			for _, e := range evs {
				if matchesEvent(e, rule.Event, rule.Tag) {
					matched++
				}
			}
			if matched == 0 {
				continue
			}
		}
		negative += cents(rule.Points)
		r.Breakdown = append(r.Breakdown, RuleScore{RuleID: rule.ID, Kind: KindNegative, Points: fromCents(cents(rule.Points)), Events: matched})
	}

	total := fit + behaviour + negative + decay
	r.Total, r.Fit, r.Behaviour, r.Negative, r.Decay = fromCents(total), fromCents(fit), fromCents(behaviour), fromCents(negative), fromCents(decay)

	switch {
	case total >= cents(m.Bands.Hot):
		r.Band = BandHot
	case total >= cents(m.Bands.Warm):
		r.Band = BandWarm
	default:
		r.Band = BandCold
	}

	for _, e := range evs {
		if slices.Contains(m.HandRaise, e.Type) {
			r.HandoffReady = true
			r.HandoffReason = "hand-raise: " + e.Type
			r.HandRaiseEventID = e.ID
			break
		}
	}
	if !r.HandoffReady && total >= cents(m.MQLThreshold) {
		r.HandoffReady = true
		r.HandoffReason = fmt.Sprintf("score %s ≥ MQL threshold %s", formatPoints(r.Total), formatPoints(m.MQLThreshold))
	}
	return r
}

// scorable returns the events that count at now, in (At, ID) order. The remaining keys only make
// the order total, so that even two events sharing an ID sort the same whatever the input order.
func scorable(events []Event, now time.Time) []Event {
	out := make([]Event, 0, len(events))
	for _, e := range events {
		if e.Machine || e.Duplicate || e.At.After(now) {
			continue
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Event) int {
		return cmp.Or(
			a.At.Compare(b.At),
			strings.Compare(a.ID, b.ID),
			strings.Compare(a.Type, b.Type),
			slices.Compare(a.Tags, b.Tags),
		)
	})
	return out
}

type award struct {
	at    time.Time
	cents int64
}

// award walks the events in time order and returns the points the rule gives each matching one.
// Under a cap, an event gets only what is left of the cap in the window (at-per, at]; the rest is
// dropped, not carried over.
func (r BehaviourRule) award(evs []Event) (awards []award, matched int, capped bool) {
	points := cents(r.Points)
	var limit int64
	if r.Cap != nil {
		limit = cents(r.Cap.Points)
	}
	var inWindow int64 // points awarded within the window ending at the current event
	first := 0         // first award still inside that window
	for _, e := range evs {
		if !matchesEvent(e, r.Event, r.Tag) {
			continue
		}
		matched++
		got := points
		if r.Cap != nil {
			start := e.At.Add(-r.Cap.Per)
			for first < len(awards) && !awards[first].at.After(start) {
				inWindow -= awards[first].cents
				first++
			}
			got = min(points, max(limit-inWindow, 0))
			if got < points {
				capped = true
			}
		}
		if got > 0 {
			awards = append(awards, award{at: e.At, cents: got})
			inWindow += got
		}
	}
	return awards, matched, capped
}

func matchesEvent(e Event, eventType, tag string) bool {
	if e.Type != eventType {
		return false
	}
	return tag == "" || slices.ContainsFunc(e.Tags, func(t string) bool { return strings.EqualFold(strings.TrimSpace(t), tag) })
}

func (r FitRule) matches(lead Lead) bool {
	v := strings.TrimSpace(lead.Attributes[r.Attribute])
	if len(r.In) > 0 {
		return v != "" && slices.ContainsFunc(r.In, func(want string) bool { return strings.EqualFold(strings.TrimSpace(want), v) })
	}
	return r.Present != nil && *r.Present == (v != "")
}

// cents converts points to hundredths; the parser allows at most two decimals, so this is exact.
func cents(points float64) int64 { return int64(math.Round(points * 100)) }

// fromCents converts hundredths back to points.
func fromCents(c int64) float64 { return float64(c) / 100 }

func formatPoints(p float64) string { return strconv.FormatFloat(p, 'f', -1, 64) }
