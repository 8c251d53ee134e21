package sales

import (
	"fmt"
	"github.com/tendhq/tend/internal/yamlcheck"
	"net/mail"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tendhq/tend/internal/schedule"
	"github.com/tendhq/tend/internal/sequence"
)

// Version is the only file format version this package reads.
const Version = 1

// DefaultReassignAfter is how many lapses a rep may have on a lead when the file does not say.
const DefaultReassignAfter = 2

// Diagnostic is one mistake in a sales team file, printed as "file:line: message". It is the
// sequence package's type, so that every configuration file tend reads reports mistakes alike.
type Diagnostic = sequence.Diagnostic

// Diagnostics is every mistake found in a file, in line order.
type Diagnostics = sequence.Diagnostics

// Options tunes the checks Parse makes beyond the file itself.
type Options struct {
	// Segments are the known segment ids, which territories and recycle.not_ready_segment must
	// name; nil skips the check.
	Segments []string
	// EventTypes are the known event types, which hand_raise must name; nil skips the check.
	EventTypes []string
}

// The fields each mapping of the file may hold. The JSON Schema in schemas/ must list the same.
var (
	teamFields       = []string{"version", "calendars", "managers", "reps", "assignment", "policies", "escalation", "recycle"}
	calendarFields   = []string{"id", "time_zone", "hours", "holidays"}
	hoursFields      = []string{"days", "from", "to"}
	managerFields    = []string{"id", "name", "email"}
	repFields        = []string{"id", "name", "email", "time_zone", "calendar", "territories", "away", "manager"}
	assignmentFields = []string{"strategy", "fallback"}
	policyFields     = []string{"id", "hand_raise", "response"}
	escalationFields = []string{"remind_before", "reassign_after"}
	recycleFields    = []string{"not_ready_segment", "cool_off"}
)

// Load reads and parses the sales team file at path. When the file is invalid the error is
// Diagnostics, listing every mistake.
func Load(path string, opts Options) (*Team, error) {
	return yamlcheck.Load(path, "sales team", func(f string, data []byte) (*Team, Diagnostics) { return Parse(f, data, opts) })
}

// Parse parses and validates a sales team file. It reports every mistake it finds, in line order,
// not just the first; the team is nil whenever there is any.
func Parse(filename string, data []byte, opts Options) (*Team, Diagnostics) {
	p := &parser{Checker: yamlcheck.Checker{File: filename}, opts: opts, idLines: map[string]map[string]int{}}
	return yamlcheck.Build(&p.Checker, data, p.team)
}

type parser struct {
	yamlcheck.Checker
	opts    Options
	idLines map[string]map[string]int // kind → id → line, for duplicates
	refs    []ref
}

// ref is a rep's reference to a calendar or manager, checked once the whole file is read.
type ref struct {
	n          *yaml.Node
	ctx, field string
	id         string
}

func (p *parser) team(root *yaml.Node) *Team {
	f := p.Fields(root, "", teamFields)
	if f == nil {
		return nil
	}
	p.Required(root, f, "", "version", "reps", "assignment", "policies")
	if n := f["version"]; n != nil {
		var v int
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
			p.Errorf(n, "", "version: expected a number, got %s", yamlcheck.Describe(n))
		} else if v != Version {
			p.Errorf(n, "", "unsupported version %d (supported: %d)", v, Version)
		}
	}
	t := &Team{
		Assignment: Assignment{Strategy: StrategyRoundRobin},
		Escalation: Escalation{ReassignAfter: DefaultReassignAfter},
	}
	if n := f["calendars"]; n != nil {
		for i, item := range p.List(n, "", "calendars") {
			t.Calendars = append(t.Calendars, p.calendar(item, i))
		}
	}
	if n := f["managers"]; n != nil {
		for i, item := range p.List(n, "", "managers") {
			t.Managers = append(t.Managers, p.manager(item, i))
		}
	}
	if n := f["reps"]; n != nil {
		items := p.List(n, "", "reps")
		if items != nil && len(items) == 0 {
			p.Errorf(n, "", "reps: must list at least one rep")
		}
		for i, item := range items {
			t.Reps = append(t.Reps, p.rep(item, i))
		}
	}
	var fallback *yaml.Node
	if n := f["assignment"]; n != nil {
		t.Assignment, fallback = p.assignment(n)
	}
	if n := f["policies"]; n != nil {
		t.Policies = p.policies(n)
	}
	var remind *yaml.Node
	if n := f["escalation"]; n != nil {
		t.Escalation, remind = p.escalation(n)
	}
	if n := f["recycle"]; n != nil {
		t.Recycle = p.recycle(n)
	}

	for _, r := range p.refs {
		var ids []string
		switch r.field {
		case "calendar":
			for _, c := range t.Calendars {
				ids = append(ids, c.ID)
			}
		case "manager":
			for _, m := range t.Managers {
				ids = append(ids, m.ID)
			}
		}
		if !slices.Contains(ids, r.id) {
			p.Errorf(r.n, r.ctx, "%s: no %s has id %q%s", r.field, r.field, r.id, idList(ids))
		}
	}
	if fallback != nil && t.Assignment.Fallback != "" {
		if r, ok := t.Rep(t.Assignment.Fallback); !ok {
			var ids []string
			for _, r := range t.Reps {
				ids = append(ids, r.ID)
			}
			p.Errorf(fallback, "assignment", "fallback: no rep has id %q%s", t.Assignment.Fallback, idList(ids))
		} else if r.Away {
			p.Errorf(fallback, "assignment", "fallback: rep %q is away; the fallback must be an active rep", r.ID)
		}
	}
	if remind != nil && t.Escalation.RemindBefore > 0 {
		// The shortest response is the one a reminder must fit in.
		var shortest *Policy
		for i, pol := range t.Policies {
			if pol.Response > 0 && (shortest == nil || pol.Response < shortest.Response) {
				shortest = &t.Policies[i]
			}
		}
		if shortest != nil && t.Escalation.RemindBefore >= shortest.Response {
			p.Errorf(remind, "escalation", "remind_before: %s must be less than the response time of policy %q (%s)",
				remind.Value, shortest.ID, formatDuration(shortest.Response))
		}
	}
	return t
}

func idList(ids []string) string {
	var uniq []string
	for _, id := range ids {
		if id != "" && !slices.Contains(uniq, id) {
			uniq = append(uniq, id)
		}
	}
	ids = uniq
	if len(ids) == 0 {
		return ""
	}
	return " (ids: " + strings.Join(ids, ", ") + ")"
}

func (p *parser) calendar(n *yaml.Node, i int) Calendar {
	ctx := itemContext(n, "calendar", i)
	var c Calendar
	f := p.Fields(n, ctx, calendarFields)
	if f == nil {
		return c
	}
	p.Required(n, f, ctx, "id", "time_zone", "hours")
	c.ID = p.id(f, ctx, "calendar")
	if z := f["time_zone"]; z != nil {
		c.TimeZone = p.timeZone(z, ctx)
	}
	if hn := f["hours"]; hn != nil {
		items := p.List(hn, ctx, "hours")
		if items != nil && len(items) == 0 {
			p.Errorf(hn, ctx, "hours: must list at least one span of hours")
		}
		for j, item := range items {
			c.Hours = append(c.Hours, p.hours(item, fmt.Sprintf("%s: hours #%d", ctx, j+1)))
		}
	}
	if hn := f["holidays"]; hn != nil {
		seen := map[string]bool{}
		for _, item := range p.List(hn, ctx, "holidays") {
			s, ok := p.Scalar(item, ctx, "holidays")
			if !ok {
				continue
			}
			d, err := time.Parse(time.DateOnly, s)
			switch {
			case err != nil || d.Format(time.DateOnly) != s:
				p.Errorf(item, ctx, "holidays: invalid date %q: use YYYY-MM-DD", s)
			case seen[s]:
				p.Errorf(item, ctx, "holidays: %q is listed twice", s)
			default:
				seen[s] = true
				c.Holidays = append(c.Holidays, s)
			}
		}
	}
	return c
}

func (p *parser) hours(n *yaml.Node, ctx string) Hours {
	var h Hours
	f := p.Fields(n, ctx, hoursFields)
	if f == nil {
		return h
	}
	p.Required(n, f, ctx, "days", "from", "to")
	if dn := f["days"]; dn != nil {
		if s, ok := p.Scalar(dn, ctx, "days"); ok {
			if _, err := parseDays(s); err != nil {
				p.Errorf(dn, ctx, "days: %v", err)
			}
			h.Days = s
		}
	}
	from, to := -1, -1
	if fn := f["from"]; fn != nil {
		h.From, from = p.clock(fn, ctx, "from")
	}
	if tn := f["to"]; tn != nil {
		h.To, to = p.clock(tn, ctx, "to")
		if from >= 0 && to >= 0 && to <= from {
			p.Errorf(tn, ctx, "to (%s) must be after from (%s)", h.To, h.From)
		}
	}
	return h
}

// clock reads a time of day, returning it and its minutes after midnight, or -1 when invalid.
func (p *parser) clock(n *yaml.Node, ctx, field string) (string, int) {
	s, ok := p.Scalar(n, ctx, field)
	if !ok {
		return "", -1
	}
	m, err := parseClock(s)
	if err != nil {
		p.Errorf(n, ctx, "%s: %v", field, err)
		return s, -1
	}
	return s, m
}

func (p *parser) manager(n *yaml.Node, i int) Manager {
	ctx := itemContext(n, "manager", i)
	var m Manager
	f := p.Fields(n, ctx, managerFields)
	if f == nil {
		return m
	}
	p.Required(n, f, ctx, "id", "name", "email")
	m.ID = p.id(f, ctx, "manager")
	if nn := f["name"]; nn != nil {
		m.Name = p.name(nn, ctx)
	}
	if en := f["email"]; en != nil {
		m.Email = p.email(en, ctx)
	}
	return m
}

func (p *parser) rep(n *yaml.Node, i int) Rep {
	ctx := itemContext(n, "rep", i)
	var r Rep
	f := p.Fields(n, ctx, repFields)
	if f == nil {
		return r
	}
	p.Required(n, f, ctx, "id", "name", "email", "territories")
	r.ID = p.id(f, ctx, "rep")
	if nn := f["name"]; nn != nil {
		r.Name = p.name(nn, ctx)
	}
	if en := f["email"]; en != nil {
		r.Email = p.email(en, ctx)
	}
	if z := f["time_zone"]; z != nil {
		r.TimeZone = p.timeZone(z, ctx)
	}
	for _, field := range []string{"calendar", "manager"} {
		rn := f[field]
		if rn == nil {
			continue
		}
		if s, ok := p.Scalar(rn, ctx, field); ok {
			p.refs = append(p.refs, ref{n: rn, ctx: ctx, field: field, id: s})
			if field == "calendar" {
				r.Calendar = s
			} else {
				r.Manager = s
			}
		}
	}
	if tn := f["territories"]; tn != nil {
		items := p.List(tn, ctx, "territories")
		if items != nil && len(items) == 0 {
			p.Errorf(tn, ctx, `territories: must list at least one segment, or "*" for every segment`)
		}
		seen := map[string]bool{}
		for _, item := range items {
			s, ok := p.Scalar(item, ctx, "territories")
			switch {
			case !ok:
			case seen[s]:
				p.Errorf(item, ctx, "territories: %q is listed twice", s)
			case s != AnyTerritory && !p.segment(item, ctx, "territories", s):
			default:
				seen[s] = true
				r.Territories = append(r.Territories, s)
			}
		}
	}
	if an := f["away"]; an != nil {
		if an.Kind != yaml.ScalarNode || an.Tag != "!!bool" || an.Decode(&r.Away) != nil {
			p.Errorf(an, ctx, "away: expected true or false, got %s", yamlcheck.Describe(an))
		}
	}
	return r
}

// segment checks that s names a segment, reporting it otherwise.
func (p *parser) segment(n *yaml.Node, ctx, field, s string) bool {
	if p.opts.Segments == nil {
		if !yamlcheck.IDPattern.MatchString(s) {
			p.Errorf(n, ctx, "%s: invalid segment id %q", field, s)
			return false
		}
		return true
	}
	if !slices.Contains(p.opts.Segments, s) {
		p.Errorf(n, ctx, "%s: unknown segment %q (segments: %s)", field, s, strings.Join(p.opts.Segments, ", "))
		return false
	}
	return true
}

func (p *parser) assignment(n *yaml.Node) (Assignment, *yaml.Node) {
	const ctx = "assignment"
	a := Assignment{Strategy: StrategyRoundRobin}
	f := p.Fields(n, ctx, assignmentFields)
	if f == nil {
		return a, nil
	}
	p.Required(n, f, ctx, "fallback")
	if sn := f["strategy"]; sn != nil {
		if s, ok := p.Scalar(sn, ctx, "strategy"); ok && s != StrategyRoundRobin {
			p.Errorf(sn, ctx, "strategy: unknown strategy %q (valid: %s)", s, StrategyRoundRobin)
		}
	}
	fn := f["fallback"]
	if fn != nil {
		a.Fallback, _ = p.Scalar(fn, ctx, "fallback")
	}
	return a, fn
}

func (p *parser) policies(n *yaml.Node) []Policy {
	items := p.List(n, "", "policies")
	if items == nil {
		return nil
	}
	if len(items) == 0 {
		p.Errorf(n, "", "policies: must list at least one policy")
		return nil
	}
	var (
		pols     []Policy
		defaults []int                 // indices of the policies without hand_raise
		covered  = map[string]string{} // hand-raise event → the policy that covers it
	)
	for i, item := range items {
		ctx := itemContext(item, "policy", i)
		var pol Policy
		f := p.Fields(item, ctx, policyFields)
		if f == nil {
			pols = append(pols, pol)
			continue
		}
		p.Required(item, f, ctx, "id", "response")
		pol.ID = p.id(f, ctx, "policy")
		if hn := f["hand_raise"]; hn != nil {
			events := p.List(hn, ctx, "hand_raise")
			if events != nil && len(events) == 0 {
				p.Errorf(hn, ctx, "hand_raise: must list at least one event type (leave it out for the default policy)")
			}
			for _, en := range events {
				e, ok := p.Scalar(en, ctx, "hand_raise")
				switch {
				case !ok:
				case p.opts.EventTypes != nil && !slices.Contains(p.opts.EventTypes, e):
					p.Errorf(en, ctx, "hand_raise: unknown event type %q (valid: %s)", e, strings.Join(p.opts.EventTypes, ", "))
				case slices.Contains(pol.HandRaise, e):
					p.Errorf(en, ctx, "hand_raise: %q is listed twice", e)
				case covered[e] != "":
					p.Errorf(en, ctx, "hand_raise: %q is already covered by %s, which comes first", e, covered[e])
				default:
					covered[e] = ctx
					pol.HandRaise = append(pol.HandRaise, e)
				}
			}
		} else {
			defaults = append(defaults, i)
		}
		if rn := f["response"]; rn != nil {
			pol.Response, _ = p.Duration(rn, ctx, "response", true)
		}
		pols = append(pols, pol)
	}
	switch {
	case len(defaults) == 0:
		p.Errorf(n, "", "policies: one policy must leave out hand_raise, to cover every other handoff")
	case len(defaults) == 1 && defaults[0] != len(items)-1:
		i := defaults[0]
		p.Errorf(items[i], itemContext(items[i], "policy", i),
			"the default policy (without hand_raise) must come last, since the first policy that matches wins")
	}
	for _, i := range defaults[min(1, len(defaults)):] {
		first := defaults[0]
		p.Errorf(items[i], itemContext(items[i], "policy", i),
			"only one policy may leave out hand_raise; %s on line %d already does",
			itemContext(items[first], "policy", first), items[first].Line)
	}
	return pols
}

func (p *parser) escalation(n *yaml.Node) (Escalation, *yaml.Node) {
	const ctx = "escalation"
	e := Escalation{ReassignAfter: DefaultReassignAfter}
	f := p.Fields(n, ctx, escalationFields)
	if f == nil {
		return e, nil
	}
	rn := f["remind_before"]
	if rn != nil {
		var ok bool
		if e.RemindBefore, ok = p.Duration(rn, ctx, "remind_before", false); !ok {
			rn = nil
		}
	}
	if an := f["reassign_after"]; an != nil {
		var v int
		switch {
		case an.Kind != yaml.ScalarNode || an.Tag != "!!int" || an.Decode(&v) != nil:
			p.Errorf(an, ctx, "reassign_after: expected a whole number, got %s", yamlcheck.Describe(an))
		case v < 1:
			p.Errorf(an, ctx, "reassign_after: must be at least 1, got %d", v)
		default:
			e.ReassignAfter = v
		}
	}
	return e, rn
}

func (p *parser) recycle(n *yaml.Node) Recycle {
	const ctx = "recycle"
	var r Recycle
	f := p.Fields(n, ctx, recycleFields)
	if f == nil {
		return r
	}
	if sn := f["not_ready_segment"]; sn != nil {
		if s, ok := p.Scalar(sn, ctx, "not_ready_segment"); ok && p.segment(sn, ctx, "not_ready_segment", s) {
			r.NotReadySegment = s
		}
	}
	if cn := f["cool_off"]; cn != nil {
		r.CoolOff, _ = p.Duration(cn, ctx, "cool_off", false)
	}
	return r
}

// formatDuration writes d as the file would: 1h rather than 1h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// itemContext names a list item in messages by its id when it has a valid one, else by its
// position.
func itemContext(n *yaml.Node, kind string, i int) string {
	return yamlcheck.Name(n, kind, fmt.Sprintf("%s #%d", kind, i+1))
}

// id checks an item's id and that no other item of the same kind has it.
func (p *parser) id(f map[string]*yaml.Node, ctx, kind string) string {
	n := f["id"]
	if n == nil {
		return ""
	}
	s := p.ID(n, ctx, kind)
	if p.idLines[kind] == nil {
		p.idLines[kind] = map[string]int{}
	}
	p.Unique(n, "", kind, s, p.idLines[kind])
	return s
}

func (p *parser) name(n *yaml.Node, ctx string) string {
	s, ok := p.Scalar(n, ctx, "name")
	if !ok {
		return ""
	}
	if strings.TrimSpace(s) == "" {
		p.Errorf(n, ctx, "name: must not be empty")
	}
	return strings.TrimSpace(s)
}

// email checks that s is a bare address: notices are addressed by tend, which adds the name.
func (p *parser) email(n *yaml.Node, ctx string) string {
	s, ok := p.Scalar(n, ctx, "email")
	if !ok {
		return ""
	}
	a, err := mail.ParseAddress(s)
	switch {
	case err != nil:
		p.Errorf(n, ctx, "email: invalid address %q", s)
	case a.Address != s:
		p.Errorf(n, ctx, "email: %q: give the bare address, without a display name or angle brackets", s)
	}
	return s
}

func (p *parser) timeZone(n *yaml.Node, ctx string) string {
	s, ok := p.Scalar(n, ctx, "time_zone")
	if !ok {
		return ""
	}
	if err := schedule.ValidTimeZone(s); err != nil {
		p.Errorf(n, ctx, "time_zone: %v", err)
	}
	return s
}
