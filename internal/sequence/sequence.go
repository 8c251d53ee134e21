// Package sequence owns the nurture sequences marketers write in YAML: which segment a lead falls
// into, the emails each segment's sequence sends, when, under which conditions, and when a lead
// leaves. It parses the file into plain data that can travel in Temporal payloads and reports every
// mistake in it with its line number.
package sequence

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tendhq/tend/internal/lifecycle"
)

// Catalog is a parsed sequences file: every segment, each with its sequence.
type Catalog struct {
	// DefaultSegment is the id of the segment for leads whose interests match no segment.
	DefaultSegment string `json:"default_segment"`
	// Window is the file's default send window, already folded into each Sequence.Window.
	Window   Window    `json:"send_window"`
	Segments []Segment `json:"segments"`
	// FrequencyCap limits marketing email per lead across all sequences.
	FrequencyCap *FrequencyCap `json:"frequency_cap,omitempty"`
	// QuietHours are hours of the lead's day in which no marketing email is sent.
	QuietHours *QuietHours `json:"quiet_hours,omitempty"`
	// Reengagement is what happens to a lead that stops engaging.
	Reengagement *Reengagement `json:"reengagement,omitempty"`
	// Consent says when marketing email needs the lead's recorded consent.
	Consent *ConsentPolicy `json:"consent,omitempty"`
}

// ConsentPolicy: with Required, a lead is mailed only when its latest consent grants it — except
// leads whose region (attribute "region", else "country") is listed in LegitimateInterestRegions,
// who are mailed unless they refused. Without a policy only a refusal stops email.
type ConsentPolicy struct {
	Required                  bool     `json:"required"`
	LegitimateInterestRegions []string `json:"legitimate_interest_regions,omitempty"`
}

// Requires reports whether a lead in region needs a recorded consent to be mailed.
func (c *ConsentPolicy) Requires(region string) bool {
	if c == nil || !c.Required {
		return false
	}
	region = strings.ToLower(strings.TrimSpace(region))
	return region == "" || !slices.Contains(c.LegitimateInterestRegions, region)
}

// FrequencyCap allows at most Max marketing emails per lead in any window of length Per. A send
// that would exceed it is postponed, never dropped.
type FrequencyCap struct {
	Max int           `json:"max"`
	Per time.Duration `json:"per"`
}

// QuietHours is a daily span, From to To (HH:MM, may wrap midnight), in the lead's time zone (or
// the send window's), in which sends are postponed to its end.
type QuietHours struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Reengagement: a lead with no engagement for After enters Sequence; engaging during it returns the
// lead to where it was; no engagement by its end sunsets the lead (marketing stops until it
// engages again).
type Reengagement struct {
	After    time.Duration `json:"after"`
	Sequence Sequence      `json:"sequence"`
}

// Segment is a group of leads sharing interests, and the sequence they are enrolled in.
type Segment struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Interests are the capture-form interests that put a lead in this segment.
	Interests []string `json:"interests,omitempty"`
	// InactiveAfter, when set, replaces reengagement.after for leads of this segment.
	InactiveAfter time.Duration `json:"inactive_after,omitempty"`
	// When, if set, must also hold for a lead to be in the segment (its band, score, stage,
	// attributes); a segment without interests is then chosen by When alone.
	When     *Condition `json:"when,omitempty"`
	Sequence Sequence   `json:"sequence"`
}

// Sequence is a series of emails sent one after another.
type Sequence struct {
	ID string `json:"id"`
	// Window is the sequence's own send window merged over the catalog's default.
	Window Window `json:"send_window"`
	Steps  []Step `json:"steps"`
	Exit   Exit   `json:"exit"`
	// Goal, when set, is what the sequence is for: reaching it exits the lead at once (a pending
	// send is cancelled) and counts as a conversion.
	Goal *Goal `json:"goal,omitempty"`
	// Holdout is the share of leads, 0 to 1, that receive none of the sequence's emails: a control
	// group for measuring the sequence's lift. Which leads is decided by HeldOut.
	Holdout float64 `json:"holdout,omitempty"`
}

// Step is one email of a sequence.
type Step struct {
	ID       string `json:"id"`
	Template string `json:"template"`
	// Subject is a text/template rendered with the lead's data.
	Subject string `json:"subject"`
	// Wait is counted from the previous step's send, or from enrolment for the first step.
	Wait time.Duration `json:"wait"`
	// WaitIfClicked, when set, replaces Wait if the lead clicked the previous email: an engaged
	// lead gets the next email sooner.
	WaitIfClicked *time.Duration `json:"wait_if_clicked,omitempty"`
	When          Condition      `json:"when"`
	// Variants, when set, replace Template and Subject: each lead gets one, chosen by VariantFor
	// in proportion to the weights.
	Variants []Variant `json:"variants,omitempty"`
}

// Variant is one version of a step's email in an A/B test.
type Variant struct {
	ID       string `json:"id"`
	Template string `json:"template"`
	Subject  string `json:"subject"`
	// Weight is the variant's share relative to the others' (at least 1).
	Weight int `json:"weight"`
}

// Goal is reached by an event (of Type, carrying Tag when set) or by reaching Stage or a stage
// after it in the funnel.
type Goal struct {
	Event string          `json:"event,omitempty"`
	Tag   string          `json:"tag,omitempty"`
	Stage lifecycle.Stage `json:"stage,omitempty"`
}

// ReachedByStage reports whether a lead in stage has reached the goal's stage.
func (g *Goal) ReachedByStage(stage lifecycle.Stage) bool {
	return g != nil && g.Stage != "" && lifecycle.Reached(stage, g.Stage)
}

// ReachedByEvent reports whether an event of type typ with tags reaches the goal.
func (g *Goal) ReachedByEvent(typ string, tags []string) bool {
	if g == nil || g.Event == "" || g.Event != typ {
		return false
	}
	return g.Tag == "" || slices.ContainsFunc(tags, func(t string) bool { return strings.EqualFold(t, g.Tag) })
}

// Condition decides whether a step is sent or skipped.
type Condition struct {
	// StageIn lists the stages in which the step is sent; empty means any stage.
	StageIn []lifecycle.Stage `json:"stage_in,omitempty"`
	// PreviousClicked, when set, sends the step only if the lead did (true) or did not (false)
	// click the previous email of the sequence.
	PreviousClicked *bool `json:"previous_clicked,omitempty"`
	// BandIn lists the score bands (cold, warm, hot) in which the step is sent; empty means any.
	BandIn []string `json:"band_in,omitempty"`
	// Score, when set, is the range the lead's score must be in.
	Score *Range `json:"score,omitempty"`
	// Attributes are conditions on the lead's attributes (industry, company size …), all of which
	// must hold. The workflow does not see attributes: the send checks them.
	Attributes []AttributeCondition `json:"attributes,omitempty"`
}

// Range is a closed numeric interval; a nil bound is open.
type Range struct {
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
}

// Contains reports whether v lies in the range.
func (r *Range) Contains(v float64) bool {
	return r == nil || ((r.Min == nil || v >= *r.Min) && (r.Max == nil || v <= *r.Max))
}

// AttributeCondition is one test of a lead attribute; exactly one of its tests is set.
type AttributeCondition struct {
	Name string `json:"name"`
	// Equals: the value is this (ignoring case and surrounding space).
	Equals *string `json:"equals,omitempty"`
	// In: the value is one of these (ignoring case and surrounding space).
	In []string `json:"in,omitempty"`
	// Present: the attribute is set to a non-empty value (true), or is not (false).
	Present *bool `json:"present,omitempty"`
	// Range: the value is a number inside the range.
	Range *Range `json:"range,omitempty"`
}

// Holds reports whether the attribute test holds for attrs.
func (a AttributeCondition) Holds(attrs map[string]string) bool {
	v := strings.TrimSpace(attrs[a.Name])
	switch {
	case a.Present != nil:
		return (v != "") == *a.Present
	case a.Equals != nil:
		return v != "" && strings.EqualFold(v, strings.TrimSpace(*a.Equals))
	case a.In != nil:
		return v != "" && slices.ContainsFunc(a.In, func(w string) bool { return strings.EqualFold(v, strings.TrimSpace(w)) })
	case a.Range != nil:
		f, err := strconv.ParseFloat(v, 64)
		return err == nil && a.Range.Contains(f)
	}
	return true
}

// Facts are what conditions are evaluated on. The workflow knows all but Attributes.
type Facts struct {
	Stage lifecycle.Stage
	Band  string
	Score float64
	// PreviousClicked: the lead clicked the previous email of the sequence.
	PreviousClicked bool
	Attributes      map[string]string
}

// Holds reports whether a lead in stage should receive the step.
func (c Condition) Holds(stage lifecycle.Stage) bool {
	return len(c.StageIn) == 0 || slices.Contains(c.StageIn, stage)
}

// HoldsAfter reports whether the step is sent given the stage and whether the previous email was
// clicked.
func (c Condition) HoldsAfter(stage lifecycle.Stage, previousClicked bool) bool {
	return c.Holds(stage) && (c.PreviousClicked == nil || *c.PreviousClicked == previousClicked)
}

// HoldsFor reports whether every part of the condition but the attributes holds for f: what the
// workflow decides before a send.
func (c Condition) HoldsFor(f Facts) bool {
	return c.HoldsAfter(f.Stage, f.PreviousClicked) &&
		(len(c.BandIn) == 0 || slices.Contains(c.BandIn, f.Band)) && c.Score.Contains(f.Score)
}

// AttributesHold reports whether every attribute condition holds for attrs.
func (c Condition) AttributesHold(attrs map[string]string) bool {
	for _, a := range c.Attributes {
		if !a.Holds(attrs) {
			return false
		}
	}
	return true
}

// Matches reports whether the whole condition holds for f.
func (c Condition) Matches(f Facts) bool { return c.HoldsFor(f) && c.AttributesHold(f.Attributes) }

// Exit says when a lead leaves a sequence early.
type Exit struct {
	// Stages ends the sequence once the lead reaches one of them.
	Stages []lifecycle.Stage `json:"stages,omitempty"`
	// Unsubscribed is always true: the file may say so, but can not turn it off.
	Unsubscribed bool `json:"unsubscribed"`
}

// Reached reports whether a lead in stage has left the sequence.
func (e Exit) Reached(stage lifecycle.Stage) bool {
	return slices.Contains(e.Stages, stage)
}

// Window is a send window as written: a five-field cron spec of the minutes in which sending is
// allowed, and the zone it is read in when the lead's own zone is unknown. Compile it with
// schedule.Compile; empty fields mean any time and UTC.
type Window struct {
	Cron     string `json:"cron"`
	TimeZone string `json:"time_zone"`
	// Spread, when set, spreads the sends that waited for the window to open over its first
	// Spread instead of firing them all at the opening minute: each lead goes out at its own
	// SpreadOffset. With millions of leads a weekday window's opening would otherwise be a peak
	// of timers and sends far above what Temporal (or the mail relay) takes per second.
	Spread time.Duration `json:"spread,omitempty"`
}

// MaxSpread is the longest Spread: beyond a day a send would drift into another day's window.
const MaxSpread = 24 * time.Hour

// SpreadOffset is how long after the window opens the lead's send of step of sequenceID goes
// out: in [0, Spread), whole seconds, the same on every machine and in every run (so a replay or
// a continue-as-new keeps the slot), and different from lead to lead.
func (w Window) SpreadOffset(leadID, sequenceID, stepID string) time.Duration {
	secs := int64(w.Spread / time.Second)
	if secs <= 0 {
		return 0
	}
	return time.Duration(int64(bucket(leadID, "spread", sequenceID, stepID)*float64(secs))) * time.Second
}

// Segment returns the segment with the given id.
func (c *Catalog) Segment(id string) (Segment, bool) {
	for _, s := range c.Segments {
		if s.ID == id {
			return s, true
		}
	}
	return Segment{}, false
}

// SegmentFor returns the first segment, in file order, that shares one of interests (ignoring case
// and surrounding space), or the default segment when none does. It knows nothing but interests,
// so it passes over segments with a When, which may share their interests with a later segment:
// SegmentForLead is the choice that takes them into account.
func (c *Catalog) SegmentFor(interests []string) Segment {
	for _, s := range c.Segments {
		if s.When != nil {
			continue
		}
		for _, want := range s.Interests {
			for _, have := range interests {
				if strings.EqualFold(strings.TrimSpace(have), want) {
					return s
				}
			}
		}
	}
	s, _ := c.Segment(c.DefaultSegment)
	return s
}
