package sequence

import (
	"fmt"
	"github.com/tendhq/tend/internal/yamlcheck"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/schedule"
)

// Version is the only file format version this package reads.
const Version = 1

// Options tunes the checks Parse makes beyond the file itself.
type Options struct {
	// TemplateExists reports whether an email template of that name exists; nil skips the check.
	TemplateExists func(name string) bool
}

// The fields each mapping of the file may hold. The JSON Schema in schemas/ must list the same.
var (
	catalogFields   = []string{"version", "default_segment", "send_window", "frequency_cap", "quiet_hours", "reengagement", "consent", "segments"}
	capFields       = []string{"max", "per"}
	quietFields     = []string{"from", "to"}
	reengageFields  = []string{"after", "sequence"}
	consentFields   = []string{"required", "legitimate_interest_regions"}
	windowFields    = []string{"cron", "time_zone"}
	segmentFields   = []string{"id", "name", "interests", "inactive_after", "sequence"}
	sequenceFields  = []string{"id", "send_window", "exit", "steps"}
	exitFields      = []string{"stages", "unsubscribed"}
	stepFields      = []string{"id", "template", "subject", "wait", "wait_if_clicked", "when"}
	conditionFields = []string{"stage_in", "previous_clicked"}
)

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
	interests     map[string]claim
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
		cat.Window = p.window(n, "send_window")
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

func (p *parser) window(n *yaml.Node, ctx string) Window {
	f := p.Fields(n, ctx, windowFields)
	var w Window
	if c := f["cron"]; c != nil {
		if w.Cron, _ = p.Scalar(c, ctx, "cron"); w.Cron != "" {
			if _, err := schedule.Compile(w.Cron, ""); err != nil {
				p.Errorf(c, ctx, "%v", err)
			}
		}
	}
	if z := f["time_zone"]; z != nil {
		if w.TimeZone, _ = p.Scalar(z, ctx, "time_zone"); w.TimeZone != "" {
			if err := schedule.ValidTimeZone(w.TimeZone); err != nil {
				p.Errorf(z, ctx, "%v", err)
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
			case claimed:
				p.Errorf(item, ctx, "interest %q is already claimed by segment %q (line %d)", interest, c.segment, c.line)
				continue
			}
			seen[key] = true
			p.interests[key] = claim{segment: seg.ID, line: item.Line}
			seg.Interests = append(seg.Interests, interest)
		}
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
		own := p.window(wn, ctx+": send_window")
		if own.Cron != "" {
			seq.Window.Cron = own.Cron
		}
		if own.TimeZone != "" {
			seq.Window.TimeZone = own.TimeZone
		}
	}
	if en := f["exit"]; en != nil {
		seq.Exit = p.exit(en, ctx)
	}
	if sn := f["steps"]; sn != nil {
		items := p.List(sn, ctx, "steps")
		if items != nil && len(items) == 0 {
			p.Errorf(sn, ctx, "steps: must list at least one step")
		}
		stepLines := map[string]int{}
		for i, item := range items {
			seq.Steps = append(seq.Steps, p.step(item, ctx, i, seq.Exit, stepLines))
		}
	}
	return seq
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

// step parses the i-th step of a sequence; stepLines maps the ids seen so far in it to their lines.
func (p *parser) step(n *yaml.Node, seqCtx string, i int, exit Exit, stepLines map[string]int) Step {
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
	p.Required(n, f, ctx, "id", "template", "subject")
	if tn := f["template"]; tn != nil {
		st.Template, _ = p.Scalar(tn, ctx, "template")
		if st.Template != "" && p.opts.TemplateExists != nil && !p.opts.TemplateExists(st.Template) {
			p.Errorf(tn, ctx, "unknown template %q", st.Template)
		}
	}
	if sn := f["subject"]; sn != nil {
		st.Subject, _ = p.Scalar(sn, ctx, "subject")
		if err := checkSubject(st.Subject); err != nil {
			p.Errorf(sn, ctx, "%v", err)
		}
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
		cf := p.Fields(wn, ctx+": when", conditionFields)
		if pn := cf["previous_clicked"]; pn != nil {
			if s, ok := p.Scalar(pn, ctx+": when", "previous_clicked"); ok {
				switch s {
				case "true":
					v := true
					st.When.PreviousClicked = &v
				case "false":
					v := false
					st.When.PreviousClicked = &v
				default:
					p.Errorf(pn, ctx+": when", "previous_clicked must be true or false, not %q", s)
				}
				if i == 0 {
					p.Errorf(pn, ctx+": when", "previous_clicked on the first step: there is no previous email")
				}
			}
		}
		if sn := cf["stage_in"]; sn != nil {
			st.When.StageIn = p.stages(sn, ctx+": when", "stage_in")
			if len(st.When.StageIn) > 0 && !slices.ContainsFunc(st.When.StageIn, func(s lifecycle.Stage) bool { return !exit.Reached(s) }) {
				p.Errorf(sn, ctx, "never sent: every stage in when.stage_in is an exit stage of the sequence")
			}
		}
	}
	return st
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
