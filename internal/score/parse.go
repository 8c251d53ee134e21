package score

import (
	"fmt"
	"github.com/tendhq/tend/internal/yamlcheck"
	"math"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tendhq/tend/internal/sequence"
)

// Version is the only file format version this package reads.
const Version = 1

// Diagnostic is one mistake in a scoring model file, printed as "file:line: message". It is the
// sequence package's type, so that every configuration file tend reads reports mistakes alike.
type Diagnostic = sequence.Diagnostic

// Diagnostics is every mistake found in a file, in line order.
type Diagnostics = sequence.Diagnostics

// The fields each mapping of the file may hold. The JSON Schema in schemas/ must list the same.
var (
	modelFields     = []string{"version", "bands", "mql_threshold", "hand_raise", "decay", "behaviour", "fit", "negative"}
	bandFields      = []string{"warm", "hot"}
	decayFields     = []string{"half_life", "per_week", "after"}
	behaviourFields = []string{"id", "event", "tag", "points", "cap"}
	capFields       = []string{"points", "per"}
	fitFields       = []string{"id", "attribute", "in", "present", "points"}
	negativeFields  = []string{"id", "event", "tag", "inactive_for", "points"}
)

// maxPoints bounds every amount in the file, so that sums in cents can not overflow.
const maxPoints = 1_000_000

// Load reads and parses the scoring model at path. When the file is invalid the error is
// Diagnostics, listing every mistake.
func Load(path string) (*Model, error) {
	return yamlcheck.Load(path, "scoring model", Parse)
}

// Parse parses and validates a scoring model. It reports every mistake it finds, in line order,
// not just the first; the model is nil whenever there is any.
func Parse(filename string, data []byte) (*Model, Diagnostics) {
	p := &parser{Checker: yamlcheck.Checker{File: filename}, ruleLines: map[string]int{}}
	return yamlcheck.Build(&p.Checker, data, p.model)
}

type parser struct {
	yamlcheck.Checker
	ruleLines map[string]int // rule id → line, across every kind of rule
}

func (p *parser) model(root *yaml.Node) *Model {
	f := p.Fields(root, "", modelFields)
	if f == nil {
		return nil
	}
	p.Required(root, f, "", "version", "bands", "mql_threshold", "behaviour")
	m := &Model{Version: Version}
	if n := f["version"]; n != nil {
		var v int
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
			p.Errorf(n, "", "version: expected a number, got %s", yamlcheck.Describe(n))
		} else if v != Version {
			p.Errorf(n, "", "unsupported version %d (supported: %d)", v, Version)
		}
	}
	if n := f["bands"]; n != nil {
		m.Bands = p.bands(n)
	}
	if n := f["mql_threshold"]; n != nil {
		if v, ok := p.points(n, "", "mql_threshold"); ok {
			if v <= 0 {
				p.Errorf(n, "", "mql_threshold: must be positive, got %s", formatPoints(v))
			}
			m.MQLThreshold = v
		}
	}
	if n := f["hand_raise"]; n != nil {
		seen := map[string]bool{}
		for _, item := range p.List(n, "", "hand_raise") {
			t, ok := p.eventType(item, "", "hand_raise")
			switch {
			case !ok:
			case seen[t]:
				p.Errorf(item, "", "hand_raise: %q is listed twice", t)
			default:
				seen[t] = true
				m.HandRaise = append(m.HandRaise, t)
			}
		}
	}
	if n := f["decay"]; n != nil {
		m.Decay = p.decay(n)
	}
	if n := f["behaviour"]; n != nil {
		items := p.List(n, "", "behaviour")
		if items != nil && len(items) == 0 {
			p.Errorf(n, "", "behaviour: must list at least one rule")
		}
		for i, item := range items {
			m.Behaviour = append(m.Behaviour, p.behaviour(item, i))
		}
	}
	if n := f["fit"]; n != nil {
		for i, item := range p.List(n, "", "fit") {
			m.Fit = append(m.Fit, p.fit(item, i))
		}
	}
	if n := f["negative"]; n != nil {
		for i, item := range p.List(n, "", "negative") {
			m.Negative = append(m.Negative, p.negative(item, i))
		}
	}
	return m
}

func (p *parser) bands(n *yaml.Node) Bands {
	const ctx = "bands"
	var b Bands
	f := p.Fields(n, ctx, bandFields)
	if f == nil {
		return b
	}
	p.Required(n, f, ctx, "warm", "hot")
	warmOK, hotOK := false, false
	if wn := f["warm"]; wn != nil {
		b.Warm, warmOK = p.points(wn, ctx, "warm")
	}
	if hn := f["hot"]; hn != nil {
		b.Hot, hotOK = p.points(hn, ctx, "hot")
	}
	if warmOK && hotOK && b.Warm >= b.Hot {
		p.Errorf(f["hot"], ctx, "hot (%s) must be above warm (%s)", formatPoints(b.Hot), formatPoints(b.Warm))
	}
	return b
}

func (p *parser) decay(n *yaml.Node) *Decay {
	const ctx = "decay"
	f := p.Fields(n, ctx, decayFields)
	if f == nil {
		return nil
	}
	d := &Decay{}
	hl, pw, after := f["half_life"], f["per_week"], f["after"]
	switch {
	case hl == nil && pw == nil:
		p.Errorf(n, ctx, `set one of "half_life" or "per_week"`)
	case hl != nil && pw != nil:
		p.Errorf(later(hl, pw), ctx, `set only one of "half_life" and "per_week"`)
	}
	if hl != nil {
		d.HalfLife, _ = p.Duration(hl, ctx, "half_life", true)
	}
	if pw != nil {
		if v, ok := p.points(pw, ctx, "per_week"); ok {
			if v <= 0 {
				p.Errorf(pw, ctx, "per_week: must be positive, got %s", formatPoints(v))
			}
			d.PerWeek = v
		}
	}
	if after != nil {
		if pw == nil {
			p.Errorf(after, ctx, "after: only applies with per_week")
		}
		d.After, _ = p.Duration(after, ctx, "after", false)
	}
	return d
}

func (p *parser) behaviour(n *yaml.Node, i int) BehaviourRule {
	ctx := ruleContext(n, "behaviour", i)
	var r BehaviourRule
	f := p.Fields(n, ctx, behaviourFields)
	if f == nil {
		return r
	}
	r.ID = p.ruleID(f, ctx)
	p.Required(n, f, ctx, "id", "event", "points")
	if en := f["event"]; en != nil {
		r.Event, _ = p.eventType(en, ctx, "event")
	}
	if tn := f["tag"]; tn != nil {
		r.Tag = p.tag(tn, ctx)
	}
	if pn := f["points"]; pn != nil {
		if v, ok := p.points(pn, ctx, "points"); ok {
			switch {
			case v < 0:
				p.Errorf(pn, ctx, "points: sign mismatch: %s is negative, but behaviour rules add points (put penalties under negative)", formatPoints(v))
			case v == 0:
				p.Errorf(pn, ctx, "points: 0 scores nothing")
			}
			r.Points = v
		}
	}
	if cn := f["cap"]; cn != nil {
		r.Cap = p.cap(cn, ctx+": cap")
	}
	return r
}

func (p *parser) cap(n *yaml.Node, ctx string) *Cap {
	f := p.Fields(n, ctx, capFields)
	if f == nil {
		return nil
	}
	c := &Cap{}
	p.Required(n, f, ctx, "points", "per")
	if pn := f["points"]; pn != nil {
		if v, ok := p.points(pn, ctx, "points"); ok {
			if v <= 0 {
				p.Errorf(pn, ctx, "points: must be positive, got %s", formatPoints(v))
			}
			c.Points = v
		}
	}
	if dn := f["per"]; dn != nil {
		c.Per, _ = p.Duration(dn, ctx, "per", true)
	}
	return c
}

func (p *parser) fit(n *yaml.Node, i int) FitRule {
	ctx := ruleContext(n, "fit", i)
	var r FitRule
	f := p.Fields(n, ctx, fitFields)
	if f == nil {
		return r
	}
	r.ID = p.ruleID(f, ctx)
	p.Required(n, f, ctx, "id", "attribute", "points")
	if an := f["attribute"]; an != nil {
		if s, ok := p.Scalar(an, ctx, "attribute"); ok {
			if strings.TrimSpace(s) == "" {
				p.Errorf(an, ctx, "attribute: must not be empty")
			}
			r.Attribute = s
		}
	}
	in, present := f["in"], f["present"]
	switch {
	case in == nil && present == nil:
		p.Errorf(n, ctx, `set one of "in" or "present"`)
	case in != nil && present != nil:
		p.Errorf(later(in, present), ctx, `set only one of "in" and "present"`)
	}
	if in != nil {
		items := p.List(in, ctx, "in")
		if items != nil && len(items) == 0 {
			p.Errorf(in, ctx, "in: must list at least one value")
		}
		seen := map[string]bool{}
		for _, item := range items {
			v, ok := p.Scalar(item, ctx, "in")
			key := strings.ToLower(strings.TrimSpace(v))
			switch {
			case !ok:
			case key == "":
				p.Errorf(item, ctx, "in: empty value")
			case seen[key]:
				p.Errorf(item, ctx, "in: %q is listed twice", v)
			default:
				seen[key] = true
				r.In = append(r.In, v)
			}
		}
	}
	if present != nil {
		var v bool
		if present.Kind != yaml.ScalarNode || present.Tag != "!!bool" || present.Decode(&v) != nil {
			p.Errorf(present, ctx, "present: expected true or false, got %s", yamlcheck.Describe(present))
		} else {
			r.Present = &v
		}
	}
	if pn := f["points"]; pn != nil {
		if v, ok := p.points(pn, ctx, "points"); ok {
			if v == 0 {
				p.Errorf(pn, ctx, "points: 0 scores nothing")
			}
			r.Points = v
		}
	}
	return r
}

func (p *parser) negative(n *yaml.Node, i int) NegativeRule {
	ctx := ruleContext(n, "negative", i)
	var r NegativeRule
	f := p.Fields(n, ctx, negativeFields)
	if f == nil {
		return r
	}
	r.ID = p.ruleID(f, ctx)
	p.Required(n, f, ctx, "id", "points")
	en, in := f["event"], f["inactive_for"]
	switch {
	case en == nil && in == nil:
		p.Errorf(n, ctx, `set one of "event" or "inactive_for"`)
	case en != nil && in != nil:
		p.Errorf(later(en, in), ctx, `set only one of "event" and "inactive_for"`)
	}
	if en != nil {
		r.Event, _ = p.eventType(en, ctx, "event")
	}
	if in != nil {
		r.InactiveFor, _ = p.Duration(in, ctx, "inactive_for", true)
	}
	if tn := f["tag"]; tn != nil {
		if en == nil {
			p.Errorf(tn, ctx, "tag: only applies to event rules")
		}
		r.Tag = p.tag(tn, ctx)
	}
	if pn := f["points"]; pn != nil {
		if v, ok := p.points(pn, ctx, "points"); ok {
			switch {
			case v > 0:
				p.Errorf(pn, ctx, "points: sign mismatch: %s is positive, but negative rules take points away (put rewards under behaviour or fit)", formatPoints(v))
			case v == 0:
				p.Errorf(pn, ctx, "points: 0 scores nothing")
			}
			r.Points = v
		}
	}
	return r
}

// ruleContext names a rule in messages by its id when it has a valid one, else by its position.
func ruleContext(n *yaml.Node, kind string, i int) string {
	return yamlcheck.Name(n, kind+" rule", fmt.Sprintf("%s rule #%d", kind, i+1))
}

// ruleID checks a rule's id and that no rule of any kind has it already, since the breakdown names
// rules by id alone.
func (p *parser) ruleID(f map[string]*yaml.Node, ctx string) string {
	n := f["id"]
	if n == nil {
		return ""
	}
	s := p.ID(n, ctx, "rule")
	p.Unique(n, "", "rule", s, p.ruleLines)
	return s
}

func (p *parser) eventType(n *yaml.Node, ctx, field string) (string, bool) {
	s, ok := p.Scalar(n, ctx, field)
	if !ok {
		return "", false
	}
	if !ValidEventType(s) {
		p.Errorf(n, ctx, "%s: unknown event type %q (valid: %s)", field, s, strings.Join(EventTypes(), ", "))
		return "", false
	}
	return s, true
}

func (p *parser) tag(n *yaml.Node, ctx string) string {
	s, ok := p.Scalar(n, ctx, "tag")
	if !ok {
		return ""
	}
	if strings.TrimSpace(s) == "" {
		p.Errorf(n, ctx, "tag: must not be empty")
		return ""
	}
	return strings.TrimSpace(s)
}

// points reads an amount of points: a finite number with at most two decimals, since scores are
// kept in hundredths.
func (p *parser) points(n *yaml.Node, ctx, field string) (float64, bool) {
	var v float64
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&v) != nil ||
		math.IsNaN(v) || math.IsInf(v, 0) {
		p.Errorf(n, ctx, "%s: expected a number, got %s", field, yamlcheck.Describe(n))
		return 0, false
	}
	if math.Abs(v) > maxPoints {
		p.Errorf(n, ctx, "%s: %s is too large (at most %d)", field, n.Value, maxPoints)
		return 0, false
	}
	if c := v * 100; math.Abs(c-math.Round(c)) > 1e-6 {
		p.Errorf(n, ctx, "%s: %s has more than two decimals", field, n.Value)
		return 0, false
	}
	return v, true
}

// later returns whichever of two nodes comes last in the file: the field that conflicts with one
// already written.
func later(a, b *yaml.Node) *yaml.Node {
	if b.Line > a.Line || (b.Line == a.Line && b.Column > a.Column) {
		return b
	}
	return a
}
