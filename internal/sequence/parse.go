package sequence

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/schedule"
	"github.com/tendhq/tend/internal/yamlcheck"
)

// Version is the only file format version this package reads.
const Version = 1

// Options tunes the checks Parse makes beyond the file itself.
type Options struct {
	// TemplateExists reports whether an email template of that name exists; nil skips the check.
	TemplateExists func(name string) bool
	// EventTypes are the known event types, which a goal's event must name; nil skips the check.
	EventTypes []string
}

// The fields each mapping of the file may hold. The JSON Schema in schemas/ must list the same.
var (
	catalogFields   = []string{"version", "default_segment", "send_window", "frequency_cap", "quiet_hours", "reengagement", "consent", "segments"}
	capFields       = []string{"max", "per"}
	quietFields     = []string{"from", "to"}
	reengageFields  = []string{"after", "sequence"}
	consentFields   = []string{"required", "legitimate_interest_regions"}
	windowFields    = []string{"cron", "time_zone", "spread"}
	segmentFields   = []string{"id", "name", "interests", "inactive_after", "when", "sequence"}
	sequenceFields  = []string{"id", "send_window", "goal", "holdout", "exit", "steps"}
	goalFields      = []string{"event", "tag", "stage"}
	exitFields      = []string{"stages", "unsubscribed"}
	stepFields      = []string{"id", "template", "subject", "wait", "wait_if_clicked", "when", "variants"}
	variantFields   = []string{"id", "template", "subject", "weight"}
	conditionFields = []string{"stage_in", "previous_clicked", "band_in", "score", "attributes"}
	// segmentConditionFields are a step's minus previous_clicked: a segment has no previous email.
	segmentConditionFields = []string{"stage_in", "band_in", "score", "attributes"}
	rangeFields            = []string{"min", "max"}
	attributeTestFields    = []string{"equals", "in", "present", "min", "max"}
)

// bands are the score bands a condition may name, coldest first.
var bands = []string{"cold", "warm", "hot"}

// maxHoldout is the largest holdout share: a control group bigger than the treated one tells
// nothing a smaller one would not, and costs the sequence most of its leads.
const maxHoldout = 0.5

// maxWeight bounds a variant's weight so that the weights of a step add up without overflow
// and each still counts exactly in VariantFor's arithmetic.
const maxWeight = 1_000_000

// subjectFields are the fields of the data a subject is rendered with.
var subjectFields = []string{"FirstName", "Name", "Company", "Email"}

// Load reads and parses the sequences file at path. When the file is invalid the error is
// Diagnostics, listing every mistake.
func Load(path string, opts Options) (*Catalog, error) {
	return yamlcheck.Load(path, "sequences", func(f string, data []byte) (*Catalog, Diagnostics) { return Parse(f, data, opts) })
}

// Parse parses and validates a sequences file. It reports every mistake it finds, in line order,
// not just the first; the catalog is nil whenever there is any.
func Parse(filename string, data []byte, opts Options) (*Catalog, Diagnostics) {
	p := &parser{Checker: yamlcheck.Checker{File: filename}, opts: opts}
	return yamlcheck.Build(&p.Checker, data, p.catalog)
}

type parser struct {
	yamlcheck.Checker
	opts Options

	segmentLines  map[string]int // segment id → line, for duplicates
	sequenceLines map[string]int // sequence id → line, across the whole file
	// interests maps an interest to the first segment without a when that lists it: that segment
	// takes every lead with the interest, so no later segment can have it.
	interests map[string]claim
}

type claim struct {
	segment string
	line    int
}

func (p *parser) catalog(root *yaml.Node) *Catalog {
	p.segmentLines = map[string]int{}
	p.sequenceLines = map[string]int{}
	p.interests = map[string]claim{}

	f := p.Fields(root, "", catalogFields)
	if f == nil {
		return nil
	}
	p.Required(root, f, "", "version", "default_segment", "segments")
	if n := f["version"]; n != nil {
		var v int
		if n.Kind != yaml.ScalarNode || n.Decode(&v) != nil {
			p.Errorf(n, "", "version: expected a number, got %s", yamlcheck.Describe(n))
		} else if v != Version {
			p.Errorf(n, "", "unsupported version %d (supported: %d)", v, Version)
		}
	}
	cat := &Catalog{}
	if n := f["send_window"]; n != nil {
		cat.Window = p.window(n, "send_window", Window{})
	}
	if n := f["segments"]; n != nil {
		items := p.List(n, "", "segments")
		if items != nil && len(items) == 0 {
			p.Errorf(n, "", "segments: must list at least one segment")
		}
		for i, item := range items {
			cat.Segments = append(cat.Segments, p.segment(item, i, cat.Window))
		}
	}
	if n := f["frequency_cap"]; n != nil {
		cf := p.Fields(n, "frequency_cap", capFields)
		p.Required(n, cf, "frequency_cap", "max", "per")
		fc := &FrequencyCap{}
		if m := cf["max"]; m != nil {
			if m.Kind != yaml.ScalarNode || m.Decode(&fc.Max) != nil || fc.Max < 1 {
				p.Errorf(m, "frequency_cap", "max must be a whole number of at least 1, not %s", yamlcheck.Describe(m))
			}
		}
		if m := cf["per"]; m != nil {
			fc.Per = p.positive(m, "frequency_cap", "per")
		}
		cat.FrequencyCap = fc
	}
	if n := f["quiet_hours"]; n != nil {
		qf := p.Fields(n, "quiet_hours", quietFields)
		p.Required(n, qf, "quiet_hours", "from", "to")
		q := &QuietHours{}
		for _, name := range []string{"from", "to"} {
			if m := qf[name]; m != nil {
				v, _ := p.Scalar(m, "quiet_hours", name)
				if _, ok := ClockMinutes(v); !ok {
					p.Errorf(m, "quiet_hours", "%s: %q is not a time of day HH:MM", name, v)
				}
				if name == "from" {
					q.From = v
				} else {
					q.To = v
				}
			}
		}
		if q.From != "" && q.From == q.To {
			p.Errorf(n, "quiet_hours", "from and to are the same: that would be no hours or all of them")
		}
		cat.QuietHours = q
	}
	if n := f["reengagement"]; n != nil {
		rf := p.Fields(n, "reengagement", reengageFields)
		p.Required(n, rf, "reengagement", "after", "sequence")
		r := &Reengagement{}
		if m := rf["after"]; m != nil {
			r.After = p.positive(m, "reengagement", "after")
		}
		if m := rf["sequence"]; m != nil {
			r.Sequence = p.sequence(m, "reengagement", cat.Window)
		}
		cat.Reengagement = r
	}
	if n := f["consent"]; n != nil {
		cf := p.Fields(n, "consent", consentFields)
		p.Required(n, cf, "consent", "required")
		cp := &ConsentPolicy{}
		if m := cf["required"]; m != nil {
			if v, ok := p.Scalar(m, "consent", "required"); ok {
				switch v {
				case "true":
					cp.Required = true
				case "false":
				default:
					p.Errorf(m, "consent", "required must be true or false, not %q", v)
				}
			}
		}
		if m := cf["legitimate_interest_regions"]; m != nil {
			for _, item := range p.List(m, "consent", "legitimate_interest_regions") {
				if v, ok := p.Scalar(item, "consent", "legitimate_interest_regions"); ok {
					v = strings.ToLower(strings.TrimSpace(v))
					if v == "" {
						p.Errorf(item, "consent", "legitimate_interest_regions: empty region")
						continue
					}
					cp.LegitimateInterestRegions = append(cp.LegitimateInterestRegions, v)
				}
			}
		}
		cat.Consent = cp
	}
	if n := f["default_segment"]; n != nil {
		cat.DefaultSegment, _ = p.Scalar(n, "", "default_segment")
		if _, ok := cat.Segment(cat.DefaultSegment); !ok && cat.DefaultSegment != "" {
			var ids []string
			for _, s := range cat.Segments {
				if s.ID != "" && !slices.Contains(ids, s.ID) {
					ids = append(ids, s.ID)
				}
			}
			msg := fmt.Sprintf("default_segment: no segment has id %q", cat.DefaultSegment)
			if len(ids) > 0 {
				msg += " (ids: " + strings.Join(ids, ", ") + ")"
			}
			p.Errorf(n, "", "%s", msg)
		}
	}
	return cat
}

// window reads a send window written over base: the fields it leaves out (or, for cron and
// time_zone, leaves empty) are base's.
func (p *parser) window(n *yaml.Node, ctx string, base Window) Window {
	f := p.Fields(n, ctx, windowFields)
	w := base
	if c := f["cron"]; c != nil {
		if cron, _ := p.Scalar(c, ctx, "cron"); cron != "" {
			w.Cron = cron
			if _, err := schedule.Compile(cron, ""); err != nil {
				p.Errorf(c, ctx, "%v", err)
			}
		}
	}
	if z := f["time_zone"]; z != nil {
		if tz, _ := p.Scalar(z, ctx, "time_zone"); tz != "" {
			w.TimeZone = tz
			if err := schedule.ValidTimeZone(tz); err != nil {
				p.Errorf(z, ctx, "%v", err)
			}
		}
	}
	if s := f["spread"]; s != nil {
		// Written, it replaces base's even when 0: a sequence may turn the catalog's spread off.
		if d, ok := p.Duration(s, ctx, "spread", false); ok {
			if d > MaxSpread {
				p.Errorf(s, ctx, "spread: must be at most 24h, got %s", yamlcheck.Resolve(s).Value)
			} else {
				w.Spread = d
			}
		}
	}
	return w
}

func (p *parser) segment(n *yaml.Node, i int, window Window) Segment {
	ctx := yamlcheck.Name(n, "segment", fmt.Sprintf("segment #%d", i+1))
	f := p.Fields(n, ctx, segmentFields)
	if f == nil {
		return Segment{}
	}
	var seg Segment
	if idn := f["id"]; idn != nil {
		seg.ID = p.ID(idn, ctx, "segment")
		p.Unique(idn, "", "segment", seg.ID, p.segmentLines)
	}
	p.Required(n, f, ctx, "id", "sequence")
	if nn := f["name"]; nn != nil {
		seg.Name, _ = p.Scalar(nn, ctx, "name")
	}
	// Several segments may share an interest when those before the last have a when: leads with
	// the interest go to the first whose when holds.
	conditional := f["when"] != nil
	if in := f["interests"]; in != nil {
		seen := map[string]bool{}
		for _, item := range p.List(in, ctx, "interests") {
			interest, ok := p.Scalar(item, ctx, "interests")
			if !ok {
				continue
			}
			key := strings.ToLower(strings.TrimSpace(interest))
			switch c, claimed := p.interests[key]; {
			case key == "":
				p.Errorf(item, ctx, "empty interest")
				continue
			case seen[key]:
				p.Errorf(item, ctx, "interest %q is listed twice", interest)
				continue
			case claimed && conditional:
				p.Errorf(item, ctx, "never chosen for interest %q: segment %q (line %d) comes first with it and has no when, so it takes every such lead",
					interest, c.segment, c.line)
				continue
			case claimed:
				p.Errorf(item, ctx, "interest %q is already claimed by segment %q (line %d)", interest, c.segment, c.line)
				continue
			}
			seen[key] = true
			if !conditional {
				p.interests[key] = claim{segment: seg.ID, line: item.Line}
			}
			seg.Interests = append(seg.Interests, interest)
		}
	}
	if wn := f["when"]; wn != nil {
		c, _ := p.condition(wn, ctx+": when", inSegment)
		if m := yamlcheck.Resolve(wn); m.Kind == yaml.MappingNode && len(m.Content) == 0 {
			// It would hold for every lead, yet mark the segment conditional: shadowing, not choosing.
			p.Errorf(wn, ctx, "when: tests nothing (give stage_in, band_in, score or attributes, or leave when out)")
		}
		seg.When = &c
	}
	if an := f["inactive_after"]; an != nil {
		seg.InactiveAfter = p.positive(an, ctx, "inactive_after")
	}
	if sn := f["sequence"]; sn != nil {
		seg.Sequence = p.sequence(sn, ctx, window)
	}
	return seg
}

func (p *parser) sequence(n *yaml.Node, segCtx string, window Window) Sequence {
	ctx := yamlcheck.Name(n, "sequence", segCtx+": sequence")
	f := p.Fields(n, ctx, sequenceFields)
	if f == nil {
		return Sequence{}
	}
	seq := Sequence{Window: window, Exit: Exit{Unsubscribed: true}}
	if idn := f["id"]; idn != nil {
		seq.ID = p.ID(idn, ctx, "sequence")
		p.Unique(idn, "", "sequence", seq.ID, p.sequenceLines)
	}
	p.Required(n, f, ctx, "id", "steps")
	if wn := f["send_window"]; wn != nil {
		seq.Window = p.window(wn, ctx+": send_window", window)
	}
	if en := f["exit"]; en != nil {
		seq.Exit = p.exit(en, ctx)
	}
	if gn := f["goal"]; gn != nil {
		seq.Goal = p.goal(gn, ctx)
	}
	if hn := f["holdout"]; hn != nil {
		seq.Holdout = p.holdout(hn, ctx)
	}
	if sn := f["steps"]; sn != nil {
		items := p.List(sn, ctx, "steps")
		if items != nil && len(items) == 0 {
			p.Errorf(sn, ctx, "steps: must list at least one step")
		}
		stepLines := map[string]int{}
		for i, item := range items {
			seq.Steps = append(seq.Steps, p.step(item, ctx, i, seq, stepLines))
		}
	}
	return seq
}

// goal reads a sequence's goal: an event (with an optional tag) or a stage, not both.
func (p *parser) goal(n *yaml.Node, seqCtx string) *Goal {
	ctx := seqCtx + ": goal"
	f := p.Fields(n, ctx, goalFields)
	if f == nil {
		return nil
	}
	g := &Goal{}
	en, sn, tn := f["event"], f["stage"], f["tag"]
	switch {
	case en == nil && sn == nil:
		p.Errorf(yamlcheck.Resolve(n), ctx, "give an event or a stage")
	case en != nil && sn != nil:
		p.Errorf(sn, ctx, "give an event or a stage, not both")
	}
	if en != nil {
		if e, ok := p.Scalar(en, ctx, "event"); ok {
			switch {
			case strings.TrimSpace(e) == "":
				p.Errorf(en, ctx, "event: empty event type")
			case p.opts.EventTypes != nil && !slices.Contains(p.opts.EventTypes, e):
				p.Errorf(en, ctx, "event: unknown event type %q (valid: %s)", e, strings.Join(p.opts.EventTypes, ", "))
			default:
				g.Event = e
			}
		}
	}
	if tn != nil {
		if t, ok := p.Scalar(tn, ctx, "tag"); ok {
			switch {
			case en == nil:
				p.Errorf(tn, ctx, "tag: only an event goal has a tag")
			case strings.TrimSpace(t) == "":
				p.Errorf(tn, ctx, "tag: empty tag (leave it out to count every %s event)", g.Event)
			default:
				g.Tag = strings.TrimSpace(t)
			}
		}
	}
	if sn != nil {
		if s, ok := p.Scalar(sn, ctx, "stage"); ok {
			st, err := lifecycle.Parse(s)
			if err != nil {
				p.Errorf(sn, ctx, "stage: %v", err)
			}
			g.Stage = st
		}
	}
	return g
}

// holdout reads a share of leads written as a percentage (10%) or a fraction (0.1).
func (p *parser) holdout(n *yaml.Node, ctx string) float64 {
	s, ok := p.Scalar(n, ctx, "holdout")
	if !ok {
		return 0
	}
	text := strings.TrimSpace(s)
	pct := strings.HasSuffix(text, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(text, "%")), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		p.Errorf(n, ctx, "holdout: expected a share such as 10%% or 0.1, got %q", s)
		return 0
	}
	if pct {
		v /= 100
	}
	if v < 0 || v > maxHoldout {
		hint := ""
		if !pct && v > 1 && v <= 50 {
			hint = fmt.Sprintf(" (did you mean %s%%?)", text)
		}
		p.Errorf(n, ctx, "holdout: must be between 0 and 50%% of leads, got %s%s", s, hint)
		return 0
	}
	return v
}

func (p *parser) exit(n *yaml.Node, seqCtx string) Exit {
	ctx := seqCtx + ": exit"
	f := p.Fields(n, ctx, exitFields)
	e := Exit{Unsubscribed: true}
	if sn := f["stages"]; sn != nil {
		e.Stages = p.stages(sn, ctx, "stages")
	}
	if un := f["unsubscribed"]; un != nil {
		var v bool
		if un.Kind != yaml.ScalarNode || un.Decode(&v) != nil {
			p.Errorf(un, ctx, "unsubscribed: expected true, got %s", yamlcheck.Describe(un))
		} else if !v {
			p.Errorf(un, ctx, "unsubscribed: false is not allowed: unsubscribed leads always exit")
		}
	}
	return e
}

// step parses the i-th step of seq; stepLines maps the ids seen so far in it to their lines.
func (p *parser) step(n *yaml.Node, seqCtx string, i int, seq Sequence, stepLines map[string]int) Step {
	ctx := yamlcheck.Name(n, "step", fmt.Sprintf("%s: step #%d", seqCtx, i+1))
	f := p.Fields(n, ctx, stepFields)
	if f == nil {
		return Step{}
	}
	var st Step
	if idn := f["id"]; idn != nil {
		st.ID = p.ID(idn, ctx, "step")
		p.Unique(idn, seqCtx, "step", st.ID, stepLines)
	}
	p.Required(n, f, ctx, "id")
	if f["variants"] == nil {
		// With variants, the variants may carry the email instead; variants() checks they do.
		p.Required(n, f, ctx, "template", "subject")
	}
	if tn := f["template"]; tn != nil {
		st.Template = p.template(tn, ctx)
	}
	if sn := f["subject"]; sn != nil {
		st.Subject = p.subject(sn, ctx)
	}
	if wn := f["wait"]; wn != nil {
		st.Wait, _ = p.Duration(wn, ctx, "wait", false)
	}
	if wn := f["wait_if_clicked"]; wn != nil {
		if d, ok := p.Duration(wn, ctx, "wait_if_clicked", false); ok {
			st.WaitIfClicked = &d
		}
	}
	if wn := f["when"]; wn != nil {
		at := inStep
		if i == 0 {
			at = inFirstStep
		}
		var cf map[string]*yaml.Node
		st.When, cf = p.condition(wn, ctx+": when", at)
		if sn := cf["stage_in"]; sn != nil && len(st.When.StageIn) > 0 {
			gone := func(s lifecycle.Stage) bool { return seq.Exit.Reached(s) || seq.Goal.ReachedByStage(s) }
			switch {
			case !slices.ContainsFunc(st.When.StageIn, func(s lifecycle.Stage) bool { return !seq.Exit.Reached(s) }):
				p.Errorf(sn, ctx, "never sent: every stage in when.stage_in is an exit stage of the sequence")
			case !slices.ContainsFunc(st.When.StageIn, func(s lifecycle.Stage) bool { return !gone(s) }):
				p.Errorf(sn, ctx, "never sent: every stage in when.stage_in is an exit stage of the sequence or reaches its goal (stage %s), so the lead has left before", seq.Goal.Stage)
			}
		}
	}
	if vn := f["variants"]; vn != nil {
		st.Variants = p.variants(vn, ctx, st)
	}
	return st
}

// template reads a template name and checks that the template exists.
func (p *parser) template(n *yaml.Node, ctx string) string {
	name, _ := p.Scalar(n, ctx, "template")
	if name != "" && p.opts.TemplateExists != nil && !p.opts.TemplateExists(name) {
		p.Errorf(n, ctx, "unknown template %q", name)
	}
	return name
}

// subject reads a subject and checks it renders with the lead's data.
func (p *parser) subject(n *yaml.Node, ctx string) string {
	subject, _ := p.Scalar(n, ctx, "subject")
	if err := checkSubject(subject); err != nil {
		p.Errorf(n, ctx, "%v", err)
	}
	return subject
}

// variants reads the A/B variants of step st. A variant without a template or subject takes the
// step's, so that a test of subjects alone names the template once.
func (p *parser) variants(n *yaml.Node, stepCtx string, st Step) []Variant {
	items := p.List(n, stepCtx, "variants")
	if items != nil && len(items) < 2 {
		p.Errorf(n, stepCtx, "variants: list at least two variants (one is the step's own email)")
	}
	var out []Variant
	lines := map[string]int{}
	for j, item := range items {
		ctx := stepCtx + ": " + yamlcheck.Name(item, "variant", fmt.Sprintf("variant #%d", j+1))
		f := p.Fields(item, ctx, variantFields)
		if f == nil {
			continue
		}
		v := Variant{Template: st.Template, Subject: st.Subject, Weight: 1}
		if idn := f["id"]; idn != nil {
			v.ID = p.ID(idn, ctx, "variant")
			p.Unique(idn, stepCtx, "variant", v.ID, lines)
		}
		p.Required(item, f, ctx, "id")
		if tn := f["template"]; tn != nil {
			v.Template = p.template(tn, ctx)
		} else if st.Template == "" {
			p.Errorf(item, ctx, "missing template: the step has none for the variant to inherit")
		}
		if sn := f["subject"]; sn != nil {
			v.Subject = p.subject(sn, ctx)
		} else if st.Subject == "" {
			p.Errorf(item, ctx, "missing subject: the step has none for the variant to inherit")
		}
		if wn := f["weight"]; wn != nil {
			if wn.Kind != yaml.ScalarNode || wn.Tag != "!!int" || wn.Decode(&v.Weight) != nil || v.Weight < 1 || v.Weight > maxWeight {
				p.Errorf(wn, ctx, "weight must be a whole number from 1 to %d, not %s", maxWeight, yamlcheck.Describe(wn))
			}
		}
		out = append(out, v)
	}
	return out
}

// place is where a condition is written, which decides what it may test.
type place int

const (
	inStep place = iota
	inFirstStep
	inSegment
)

// condition reads a when: mapping. It returns the condition and its fields, for the caller's own
// checks against the sequence.
func (p *parser) condition(n *yaml.Node, ctx string, at place) (Condition, map[string]*yaml.Node) {
	known := conditionFields
	if at == inSegment {
		known = segmentConditionFields
		n = p.dropField(n, ctx, "previous_clicked", "a segment has no previous email; test it in a step's when")
	}
	var c Condition
	f := p.Fields(n, ctx, known)
	if pn := f["previous_clicked"]; pn != nil {
		if s, ok := p.Scalar(pn, ctx, "previous_clicked"); ok {
			switch s {
			case "true":
				v := true
				c.PreviousClicked = &v
			case "false":
				v := false
				c.PreviousClicked = &v
			default:
				p.Errorf(pn, ctx, "previous_clicked must be true or false, not %q", s)
			}
			if at == inFirstStep {
				p.Errorf(pn, ctx, "previous_clicked on the first step: there is no previous email")
			}
		}
	}
	if sn := f["stage_in"]; sn != nil {
		c.StageIn = p.stages(sn, ctx, "stage_in")
	}
	if bn := f["band_in"]; bn != nil {
		items := p.List(bn, ctx, "band_in")
		if items != nil && len(items) == 0 {
			p.Errorf(bn, ctx, "band_in: lists no band, so it never holds (leave band_in out to allow every band)")
		}
		for _, item := range items {
			b, ok := p.Scalar(item, ctx, "band_in")
			if !ok {
				continue
			}
			if !slices.Contains(bands, b) {
				p.Errorf(item, ctx, "band_in: unknown band %q (valid: %s)", b, strings.Join(bands, ", "))
				continue
			}
			c.BandIn = append(c.BandIn, b)
		}
	}
	if sn := f["score"]; sn != nil {
		c.Score = p.scoreRange(sn, ctx+": score")
	}
	if an := f["attributes"]; an != nil {
		c.Attributes = p.attributes(an, ctx+": attributes")
	}
	return c, f
}

// dropField returns mapping n without the field name, reporting why it is not allowed there.
func (p *parser) dropField(n *yaml.Node, ctx, name, why string) *yaml.Node {
	n = yamlcheck.Resolve(n)
	if n.Kind != yaml.MappingNode {
		return n
	}
	var kept []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := yamlcheck.Resolve(n.Content[i]); k.Kind == yaml.ScalarNode && k.Value == name {
			p.Errorf(k, ctx, "%s: %s", name, why)
			continue
		}
		kept = append(kept, n.Content[i], n.Content[i+1])
	}
	out := *n
	out.Content = kept
	return &out
}

// scoreRange reads { min, max } for the lead's score; either bound may be left out.
func (p *parser) scoreRange(n *yaml.Node, ctx string) *Range {
	f := p.Fields(n, ctx, rangeFields)
	if f == nil {
		return nil
	}
	r := p.bounds(n, ctx, f)
	if r == nil && f["min"] == nil && f["max"] == nil {
		p.Errorf(yamlcheck.Resolve(n), ctx, "give min, max or both")
	}
	return r
}

// bounds reads the min and max of a range from fields f of n; nil when neither is a number. A
// range whose min is above its max is reported: nothing is ever in it.
func (p *parser) bounds(n *yaml.Node, ctx string, f map[string]*yaml.Node) *Range {
	var r Range
	for _, name := range rangeFields {
		bn := f[name]
		if bn == nil {
			continue
		}
		v, ok := p.number(bn, ctx, name)
		if !ok {
			continue
		}
		if name == "min" {
			r.Min = &v
		} else {
			r.Max = &v
		}
	}
	if r.Min == nil && r.Max == nil {
		return nil
	}
	if r.Min != nil && r.Max != nil && *r.Min > *r.Max {
		p.Errorf(f["min"], ctx, "min %s is above max %s, so it never holds", f["min"].Value, f["max"].Value)
	}
	return &r
}

// number reads a finite number written as a YAML number (not a quoted string).
func (p *parser) number(n *yaml.Node, ctx, field string) (float64, bool) {
	var v float64
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&v) != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		p.Errorf(n, ctx, "%s: expected a number, got %s", field, yamlcheck.Describe(n))
		return 0, false
	}
	return v, true
}

// attributes reads a mapping of attribute name to one test, keeping the file's order so that
// the conditions and their messages read as written.
func (p *parser) attributes(n *yaml.Node, ctx string) []AttributeCondition {
	n = yamlcheck.Resolve(n)
	if n.Kind != yaml.MappingNode {
		p.Errorf(n, ctx, "expected a mapping of attribute name to test, such as industry: { equals: saas }, got %s", yamlcheck.Describe(n))
		return nil
	}
	var out []AttributeCondition
	lines := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := yamlcheck.Resolve(n.Content[i]), yamlcheck.Resolve(n.Content[i+1])
		name := strings.TrimSpace(k.Value)
		if k.Kind != yaml.ScalarNode || name == "" {
			p.Errorf(k, ctx, "an attribute name must be a non-empty string, not %s", yamlcheck.Describe(k))
			continue
		}
		if first, dup := lines[name]; dup {
			p.Errorf(k, ctx, "attribute %q is tested twice (first on line %d): give one test per attribute", name, first)
			continue
		}
		lines[name] = k.Line
		if a, ok := p.attributeTest(v, ctx+": "+name, name); ok {
			out = append(out, a)
		}
	}
	return out
}

// attributeTest reads the one test of attribute name: equals, in, present, or a numeric min/max.
func (p *parser) attributeTest(n *yaml.Node, ctx, name string) (AttributeCondition, bool) {
	a := AttributeCondition{Name: name}
	if n.Kind != yaml.MappingNode {
		p.Errorf(n, ctx, "expected a test such as { equals: de }, { in: [a, b] }, { present: true } or { min: 1, max: 9 }, got %s", yamlcheck.Describe(n))
		return a, false
	}
	f := p.Fields(n, ctx, attributeTestFields)
	var given []string
	for _, t := range []string{"equals", "in", "present"} {
		if f[t] != nil {
			given = append(given, t)
		}
	}
	if f["min"] != nil || f["max"] != nil {
		given = append(given, "min/max")
	}
	switch len(given) {
	case 0:
		p.Errorf(n, ctx, "give one test: equals, in, present, or min and/or max")
		return a, false
	case 1:
	default:
		p.Errorf(n, ctx, "give one test, not %s", strings.Join(given, " and "))
		return a, false
	}
	ok := true
	switch given[0] {
	case "equals":
		en := f["equals"]
		s, sok := p.Scalar(en, ctx, "equals")
		switch {
		case !sok:
			ok = false
		case strings.TrimSpace(s) == "":
			p.Errorf(en, ctx, "equals: an empty value never matches (use present: false for a missing attribute)")
			ok = false
		default:
			a.Equals = &s
		}
	case "in":
		in := f["in"]
		items := p.List(in, ctx, "in")
		if items == nil {
			return a, false
		}
		if len(items) == 0 {
			p.Errorf(in, ctx, "in: lists no value, so it never holds")
			return a, false
		}
		a.In = []string{}
		for _, item := range items {
			s, sok := p.Scalar(item, ctx, "in")
			switch {
			case !sok:
				ok = false
			case strings.TrimSpace(s) == "":
				p.Errorf(item, ctx, "in: an empty value never matches")
				ok = false
			default:
				a.In = append(a.In, s)
			}
		}
	case "present":
		pn := f["present"]
		var v bool
		if pn.Kind != yaml.ScalarNode || pn.Tag != "!!bool" || pn.Decode(&v) != nil {
			p.Errorf(pn, ctx, "present must be true or false, not %s", yamlcheck.Describe(pn))
			return a, false
		}
		a.Present = &v
	case "min/max":
		before := len(p.Diags)
		a.Range = p.bounds(n, ctx, f)
		ok = a.Range != nil && len(p.Diags) == before
	}
	return a, ok
}

// positive reads a duration that must be greater than zero.
func (p *parser) positive(n *yaml.Node, ctx, field string) time.Duration {
	d, _ := p.Duration(n, ctx, field, true)
	return d
}

// ClockMinutes parses a time of day HH:MM (00:00 to 24:00) into minutes after midnight.
func ClockMinutes(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}

// checkSubject parses a subject as the mailer will, and refuses fields the lead data does not have,
// which would otherwise render as "<no value>" in a customer's inbox.
func checkSubject(subject string) error {
	t, err := template.New("subject").Funcs(template.FuncMap{"attr": func(key, fallback string) string { return fallback }}).Parse(subject)
	if err != nil {
		return fmt.Errorf("invalid subject: %w", err)
	}
	var unknown string
	walkFields(t.Root, func(name string) {
		if unknown == "" && !slices.Contains(subjectFields, name) {
			unknown = name
		}
	})
	if unknown != "" {
		return fmt.Errorf("subject uses unknown field .%s (have .%s; use attr \"key\" \"fallback\" for other lead attributes)",
			unknown, strings.Join(subjectFields, ", ."))
	}
	return nil
}

func walkFields(n parse.Node, visit func(string)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walkFields(c, visit)
		}
	case *parse.ActionNode:
		walkFields(n.Pipe, visit)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walkFields(c, visit)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			walkFields(a, visit)
		}
	case *parse.FieldNode:
		visit(n.Ident[0])
	case *parse.ChainNode:
		walkFields(n.Node, visit)
	case *parse.IfNode:
		walkBranch(&n.BranchNode, visit)
	case *parse.WithNode:
		walkBranch(&n.BranchNode, visit)
	case *parse.RangeNode:
		walkBranch(&n.BranchNode, visit)
	case *parse.TemplateNode:
		walkFields(n.Pipe, visit)
	}
}

func walkBranch(b *parse.BranchNode, visit func(string)) {
	walkFields(b.Pipe, visit)
	walkFields(b.List, visit)
	walkFields(b.ElseList, visit)
}

func (p *parser) stages(n *yaml.Node, ctx, field string) []lifecycle.Stage {
	var out []lifecycle.Stage
	for _, item := range p.List(n, ctx, field) {
		s, ok := p.Scalar(item, ctx, field)
		if !ok {
			continue
		}
		st, err := lifecycle.Parse(s)
		if err != nil {
			p.Errorf(item, ctx, "%s: %v", field, err)
			continue
		}
		out = append(out, st)
	}
	return out
}
