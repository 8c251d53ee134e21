// Package sales owns the sales team file: who the reps and managers are, which territories
// (segments) each rep covers, their business hours, how handed-off leads are assigned, the response
// SLA policies and the escalation and recycling rules.
//
// Everything here except Load is pure and deterministic, so workflows and activities may call it
// alike. The only I/O is time.LoadLocation reading the zone database.
package sales

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// StrategyRoundRobin hands leads to a territory's active reps in turn. It is the only strategy.
const StrategyRoundRobin = "round_robin"

// AnyTerritory in a rep's territories matches every segment.
const AnyTerritory = "*"

// FallbackKey is the territory key Pick returns when it falls back to the fallback rep.
const FallbackKey = "fallback"

// Team is a parsed and validated sales team file.
type Team struct {
	Calendars  []Calendar `json:"calendars,omitempty"`
	Managers   []Manager  `json:"managers,omitempty"`
	Reps       []Rep      `json:"reps"`
	Assignment Assignment `json:"assignment"`
	// Policies are tried in order; the last is the default, without HandRaise.
	Policies   []Policy   `json:"policies"`
	Escalation Escalation `json:"escalation"`
	Recycle    Recycle    `json:"recycle"`
}

// Calendar is a set of weekly business hours, less holidays, that SLA deadlines count in.
type Calendar struct {
	ID string `json:"id"`
	// TimeZone is the zone of reps on this calendar that have none of their own.
	TimeZone string   `json:"time_zone"`
	Hours    []Hours  `json:"hours"`
	Holidays []string `json:"holidays,omitempty"` // YYYY-MM-DD, in the rep's zone
}

// Hours is one span of business hours on some days of the week, such as MON-FRI 09:00–18:00.
type Hours struct {
	Days string `json:"days"` // MON-FRI, SAT, MON,WED,FRI
	From string `json:"from"` // HH:MM
	To   string `json:"to"`   // HH:MM, after From; 24:00 is the end of the day
}

// Manager receives escalations when a rep lets an SLA lapse.
type Manager struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Rep is a sales rep who receives handed-off leads.
type Rep struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Email    string `json:"email"`
	TimeZone string `json:"time_zone,omitempty"` // wins over the calendar's zone
	// Calendar is the id of the rep's business hours; "" counts every hour of every day.
	Calendar    string   `json:"calendar,omitempty"`
	Manager     string   `json:"manager,omitempty"`
	Territories []string `json:"territories"` // segment ids, or "*" for all
	// Away reps get no new leads; their open leads still escalate and get reassigned.
	Away bool `json:"away,omitempty"`
}

// Assignment says how handed-off leads are given to reps.
type Assignment struct {
	Strategy string `json:"strategy"`
	// Fallback is the id of the active rep who gets a lead no active rep's territory covers.
	Fallback string `json:"fallback"`
}

// Policy is a response SLA: how long a rep has to accept or reject a lead.
type Policy struct {
	ID string `json:"id"`
	// HandRaise lists the event types whose handoffs this policy covers; empty for the default
	// policy, which covers every other handoff.
	HandRaise []string      `json:"hand_raise,omitempty"`
	Response  time.Duration `json:"response"` // business time, on the rep's calendar
}

// Escalation says what happens when a rep lets an SLA lapse.
type Escalation struct {
	// RemindBefore is how long before the deadline the rep is reminded; 0 sends no reminder.
	RemindBefore time.Duration `json:"remind_before"`
	// ReassignAfter is how many lapses a rep may have on a lead before it goes to the next rep.
	ReassignAfter int `json:"reassign_after"`
}

// Recycle says what happens to leads a rep sends back to nurture.
type Recycle struct {
	// NotReadySegment is the segment whose sequence a "not ready yet" lead gets; "" keeps its own.
	NotReadySegment string `json:"not_ready_segment,omitempty"`
	// CoolOff is how long after a recycle the score alone cannot hand the lead back to sales;
	// a new hand-raise always can. Either way only what the lead did after the recycle counts.
	CoolOff time.Duration `json:"cool_off,omitempty"`
}

// Rep returns the rep with that id.
func (t *Team) Rep(id string) (Rep, bool) {
	i := slices.IndexFunc(t.Reps, func(r Rep) bool { return r.ID == id })
	if i < 0 {
		return Rep{}, false
	}
	return t.Reps[i], true
}

// Manager returns the manager with that id.
func (t *Team) Manager(id string) (Manager, bool) {
	i := slices.IndexFunc(t.Managers, func(m Manager) bool { return m.ID == id })
	if i < 0 {
		return Manager{}, false
	}
	return t.Managers[i], true
}

// Calendar returns the calendar with that id.
func (t *Team) Calendar(id string) (Calendar, bool) {
	i := slices.IndexFunc(t.Calendars, func(c Calendar) bool { return c.ID == id })
	if i < 0 {
		return Calendar{}, false
	}
	return t.Calendars[i], true
}

// Eligible returns the active reps whose territories include segment or "*", in file order.
func (t *Team) Eligible(segment string) []Rep {
	var reps []Rep
	for _, r := range t.Reps {
		if !r.Away && (slices.Contains(r.Territories, segment) || slices.Contains(r.Territories, AnyTerritory)) {
			reps = append(reps, r)
		}
	}
	return reps
}

// TerritoryKey returns the key of the round-robin counter that Pick uses for segment: the segment
// itself, or FallbackKey when no active rep covers it. Callers read and advance that counter.
func (t *Team) TerritoryKey(segment string) string {
	if len(t.Eligible(segment)) == 0 {
		return FallbackKey
	}
	return segment
}

// Pick assigns a lead of segment to a rep, round-robin: the counter'th eligible rep, wrapping.
// With no eligible rep it returns the fallback rep. The second result is the territory key of the
// counter the caller should advance (see TerritoryKey); the counter is kept outside so that
// assignment stays fair across restarts and servers.
func (t *Team) Pick(segment string, counter int64) (Rep, string) {
	eligible := t.Eligible(segment)
	if len(eligible) == 0 {
		r, _ := t.Rep(t.Assignment.Fallback)
		return r, FallbackKey
	}
	return eligible[index(counter, len(eligible))], segment
}

// Next returns the rep a lead of segment is reassigned to when currentRepID let its SLA lapse too
// often: the eligible rep after the current one in file order, wrapping; when the current rep is
// not eligible (gone away, or the fallback), the counter'th eligible rep. With nobody eligible
// but the current rep, it is the fallback rep. It is never the current rep: false means there is
// nobody else.
func (t *Team) Next(segment, currentRepID string, counter int64) (Rep, bool) {
	eligible := t.Eligible(segment)
	if i := slices.IndexFunc(eligible, func(r Rep) bool { return r.ID == currentRepID }); i >= 0 {
		if len(eligible) > 1 {
			return eligible[(i+1)%len(eligible)], true
		}
	} else if len(eligible) > 0 {
		return eligible[index(counter, len(eligible))], true
	}
	if fb, ok := t.Rep(t.Assignment.Fallback); ok && !fb.Away && fb.ID != currentRepID {
		return fb, true
	}
	return Rep{}, false
}

// index maps any counter, even a negative one, onto 0..n-1.
func index(counter int64, n int) int {
	i := counter % int64(n)
	if i < 0 {
		i += int64(n)
	}
	return int(i)
}

// Policy returns the SLA policy for a handoff: the first policy whose HandRaise lists the
// hand-raise event that caused it, else the default policy. handRaiseEvent is "" for a handoff by
// score.
func (t *Team) Policy(handRaiseEvent string) Policy {
	if handRaiseEvent != "" {
		for _, p := range t.Policies {
			if slices.Contains(p.HandRaise, handRaiseEvent) {
				return p
			}
		}
	}
	for _, p := range t.Policies {
		if len(p.HandRaise) == 0 {
			return p
		}
	}
	return Policy{}
}

// CalendarOf returns the rep's calendar and the zone its hours are read in: the rep's own zone,
// else the calendar's, else UTC. A rep without a calendar gets an empty one, on which business
// time is wall-clock time.
func (t *Team) CalendarOf(r Rep) (Calendar, *time.Location, error) {
	var cal Calendar
	if r.Calendar != "" {
		var ok bool
		if cal, ok = t.Calendar(r.Calendar); !ok {
			return Calendar{}, nil, fmt.Errorf("rep %s: no calendar has id %q", r.ID, r.Calendar)
		}
	}
	tz := cmp.Or(r.TimeZone, cal.TimeZone)
	if tz == "" {
		return cal, time.UTC, nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "Local" {
		return Calendar{}, nil, fmt.Errorf("rep %s: unknown time zone %q", r.ID, tz)
	}
	return cal, loc, nil
}
