package sequence

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/lifecycle"
)

// featureOptions know two templates and two event types.
var featureOptions = Options{
	TemplateExists: func(name string) bool { return name == "t1" || name == "t2" },
	EventTypes:     []string{"demo_request", "page_view"},
}

const features = `version: 1
default_segment: general
segments:
  - id: hot
    interests: [analytics]
    when:
      band_in: [hot]
      score: { min: 80 }
      stage_in: [lead, mql]
      attributes:
        industry: { equals: SaaS }
        country: { in: [de, at, ch] }
        phone: { present: true }
        employees: { min: 50, max: 500 }
        revenue: { max: 1000000.5 }
    sequence:
      id: hot-series
      goal: { event: demo_request, tag: pricing }
      holdout: 10%
      exit: { stages: [customer] }
      steps:
        - id: one
          template: t1
          subject: "Hi {{.FirstName}}"
          variants:
            - { id: a }
            - { id: b, template: t2, weight: 3 }
            - { id: c, subject: "Hey {{.Company}}", weight: 2 }
          when:
            band_in: [warm, hot]
            score: { max: 90 }
        - id: two
          template: t1
          subject: s
          when:
            stage_in: [lead, mql, sql] # sql reaches the goal, but lead and mql do not
  - id: analytics
    interests: [analytics, reporting]
    sequence:
      id: analytics-series
      goal: { stage: sql }
      holdout: 0.05
      exit: { stages: [mql] } # exits at mql before its sql goal: allowed, a rep may qualify straight to sql
      steps:
        - id: one
          variants:
            - { id: a, template: t1, subject: A }
            - { id: b, template: t2, subject: B }
        - id: two
          template: t1
          subject: s
          when:
            previous_clicked: true
            attributes: { role: { present: false } }
  - id: general
    sequence:
      id: general-series
      holdout: 0
      steps: [{ id: one, template: t1, subject: s }]
`

func TestParseFeatures(t *testing.T) {
	t.Parallel()
	cat, diags := Parse("f.yaml", []byte(features), featureOptions)
	require.Empty(t, diags)
	num := func(v float64) *float64 { return &v }
	str := func(s string) *string { return &s }
	yes, no := true, false

	hot, ok := cat.Segment("hot")
	require.True(t, ok)
	assert.Equal(t, &Condition{
		StageIn: []lifecycle.Stage{lifecycle.Lead, lifecycle.MQL},
		BandIn:  []string{"hot"},
		Score:   &Range{Min: num(80)},
		Attributes: []AttributeCondition{ // in file order
			{Name: "industry", Equals: str("SaaS")},
			{Name: "country", In: []string{"de", "at", "ch"}},
			{Name: "phone", Present: &yes},
			{Name: "employees", Range: &Range{Min: num(50), Max: num(500)}},
			{Name: "revenue", Range: &Range{Max: num(1000000.5)}},
		},
	}, hot.When)
	q := hot.Sequence
	assert.Equal(t, &Goal{Event: "demo_request", Tag: "pricing"}, q.Goal)
	assert.Equal(t, 0.1, q.Holdout)
	one := q.Steps[0]
	assert.Equal(t, []Variant{
		{ID: "a", Template: "t1", Subject: "Hi {{.FirstName}}", Weight: 1},
		{ID: "b", Template: "t2", Subject: "Hi {{.FirstName}}", Weight: 3},
		{ID: "c", Template: "t1", Subject: "Hey {{.Company}}", Weight: 2},
	}, one.Variants)
	assert.Equal(t, Condition{BandIn: []string{"warm", "hot"}, Score: &Range{Max: num(90)}}, one.When)

	analytics, _ := cat.Segment("analytics")
	assert.Nil(t, analytics.When)
	q = analytics.Sequence
	assert.Equal(t, &Goal{Stage: lifecycle.SQL}, q.Goal)
	assert.Equal(t, 0.05, q.Holdout)
	assert.Equal(t, Step{ID: "one", Variants: []Variant{
		{ID: "a", Template: "t1", Subject: "A", Weight: 1},
		{ID: "b", Template: "t2", Subject: "B", Weight: 1},
	}}, q.Steps[0], "a step whose variants carry the email needs none of its own")
	assert.Equal(t, Condition{PreviousClicked: &yes, Attributes: []AttributeCondition{{Name: "role", Present: &no}}}, q.Steps[1].When)

	general, _ := cat.Segment("general")
	assert.Nil(t, general.Sequence.Goal)
	assert.Zero(t, general.Sequence.Holdout)

	// A segment with a when may share its interests with a later one without; the lead gets the
	// first whose when holds.
	f := Facts{Stage: lifecycle.Lead, Band: "hot", Score: 85, Attributes: map[string]string{
		"industry": "saas", "country": "CH", "phone": "1", "employees": "120", "revenue": "10"}}
	assert.Equal(t, "hot", cat.SegmentForLead([]string{"analytics"}, f).ID)
	f.Band = "warm"
	assert.Equal(t, "analytics", cat.SegmentForLead([]string{"analytics"}, f).ID)
}

func TestHoldout(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		value string
		want  float64
		err   string
	}{
		{"10%", 0.1, ""},
		{"0.1", 0.1, ""},
		{"12.5%", 0.125, ""},
		{"50%", 0.5, ""},
		{"0.5", 0.5, ""},
		{"0", 0, ""},
		{"0%", 0, ""},
		{"60%", 0, `holdout: must be between 0 and 50% of leads, got 60%`},
		{"0.6", 0, `holdout: must be between 0 and 50% of leads, got 0.6`},
		{"1", 0, `holdout: must be between 0 and 50% of leads, got 1`},
		{"10", 0, `holdout: must be between 0 and 50% of leads, got 10 (did you mean 10%?)`},
		{"-5%", 0, `holdout: must be between 0 and 50% of leads, got -5%`},
		{"ten", 0, `holdout: expected a share such as 10% or 0.1, got "ten"`},
		{"'%'", 0, `holdout: expected a share such as 10% or 0.1, got "%"`},
		{".nan", 0, `holdout: expected a share such as 10% or 0.1, got ".nan"`},
		{"[10%]", 0, `holdout: expected a string, got a list`},
	} {
		cat, diags := Parse("h.yaml", []byte(policiesHead+`segments:
  - id: general
    sequence:
      id: general-series
      holdout: `+tt.value+`
      steps: [{ id: one, template: t, subject: s }]
`), Options{})
		if tt.err == "" {
			require.Empty(t, diags, tt.value)
			assert.InDelta(t, tt.want, cat.Segments[0].Sequence.Holdout, 1e-12, tt.value)
			continue
		}
		assert.Equal(t, []string{`h.yaml:7: sequence "general-series": ` + tt.err}, lines(diags), tt.value)
	}
}

func lines(diags Diagnostics) []string {
	var out []string
	for _, d := range diags {
		out = append(out, d.String())
	}
	return out
}

// one is a file with one sequence, "s", whose fields (from line 7 on, indented six spaces) are
// body.
func one(body string) string {
	return "version: 1\ndefault_segment: general\nsegments:\n  - id: general\n    sequence:\n      id: s\n" + body
}

const oneStep = "      steps: [{ id: one, template: t1, subject: s }]\n"

// Every mistake in the new fields is reported with its line, and names what is wrong.
func TestBadFeatures(t *testing.T) {
	t.Parallel()
	stageNames := "(valid: " + lifecycle.Names() + ")"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		// Goals.
		{"goal with neither", one("      goal: {}\n" + oneStep), []string{
			`f.yaml:7: sequence "s": goal: give an event or a stage`}},
		{"goal with both", one("      goal: { event: demo_request, stage: sql }\n" + oneStep), []string{
			`f.yaml:7: sequence "s": goal: give an event or a stage, not both`}},
		{"goal event unknown", one("      goal: { event: demo_requst }\n" + oneStep), []string{
			`f.yaml:7: sequence "s": goal: event: unknown event type "demo_requst" (valid: demo_request, page_view)`}},
		{"goal event empty", one("      goal: { event: \" \" }\n" + oneStep), []string{
			`f.yaml:7: sequence "s": goal: event: empty event type`}},
		{"goal stage unknown", one("      goal:\n        stage: won\n" + oneStep), []string{
			`f.yaml:8: sequence "s": goal: stage: unknown stage "won" ` + stageNames}},
		{"goal stage with a tag", one("      goal:\n        stage: sql\n        tag: pricing\n" + oneStep), []string{
			`f.yaml:9: sequence "s": goal: tag: only an event goal has a tag`}},
		{"goal tag empty", one("      goal: { event: demo_request, tag: \"\" }\n" + oneStep), []string{
			`f.yaml:7: sequence "s": goal: tag: empty tag (leave it out to count every demo_request event)`}},
		{"goal not a mapping", one("      goal: demo_request\n" + oneStep), []string{
			`f.yaml:7: sequence "s": goal: expected a mapping, got "demo_request"`}},
		{"goal field unknown", one("      goal:\n        evnt: demo_request\n" + oneStep), []string{
			`f.yaml:8: sequence "s": goal: unknown field "evnt" (valid: event, tag, stage)`,
			`f.yaml:8: sequence "s": goal: give an event or a stage`}},

		// Variants.
		{"one variant", one(`      steps:
        - id: one
          template: t1
          subject: s
          variants:
            - { id: a }
`), []string{`f.yaml:12: step "one": variants: list at least two variants (one is the step's own email)`}},
		{"variants not a list", one(`      steps:
        - id: one
          template: t1
          subject: s
          variants: { id: a }
`), []string{`f.yaml:11: step "one": variants: expected a list, got a mapping`}},
		{"nothing to inherit", one(`      steps:
        - id: one
          variants:
            - { id: a, template: t1 }
            - { id: b, subject: s }
            - { id: c }
`), []string{
			`f.yaml:10: step "one": variant "a": missing subject: the step has none for the variant to inherit`,
			`f.yaml:11: step "one": variant "b": missing template: the step has none for the variant to inherit`,
			`f.yaml:12: step "one": variant "c": missing template: the step has none for the variant to inherit`,
			`f.yaml:12: step "one": variant "c": missing subject: the step has none for the variant to inherit`,
		}},
		{"variant ids", one(`      steps:
        - id: one
          template: t1
          subject: s
          variants:
            - { id: a }
            - { id: a }
            - { weight: 2 }
            - { id: "" }
            - { id: B }
`), []string{
			`f.yaml:13: step "one": duplicate variant id "a" (first on line 12)`,
			`f.yaml:14: step "one": variant #3: missing required field "id"`,
			`f.yaml:15: step "one": variant #4: invalid variant id "": use up to 63 lowercase letters, digits, "-" and "_", starting with a letter or digit`,
			`f.yaml:16: step "one": variant #5: invalid variant id "B": use up to 63 lowercase letters, digits, "-" and "_", starting with a letter or digit`,
		}},
		{"variant weights", one(`      steps:
        - id: one
          template: t1
          subject: s
          variants:
            - { id: a, weight: 0 }
            - { id: b, weight: 1.5 }
            - { id: c, weight: "2" }
            - { id: d, weight: 2000000 }
            - { id: e, weight: [1] }
`), []string{
			`f.yaml:12: step "one": variant "a": weight must be a whole number from 1 to 1000000, not "0"`,
			`f.yaml:13: step "one": variant "b": weight must be a whole number from 1 to 1000000, not "1.5"`,
			`f.yaml:14: step "one": variant "c": weight must be a whole number from 1 to 1000000, not "2"`,
			`f.yaml:15: step "one": variant "d": weight must be a whole number from 1 to 1000000, not "2000000"`,
			`f.yaml:16: step "one": variant "e": weight must be a whole number from 1 to 1000000, not a list`,
		}},
		{"variant template and subject checked", one(`      steps:
        - id: one
          template: t1
          subject: s
          variants:
            - { id: a, template: t9 }
            - { id: b, subject: "Hi {{.Frist}}" }
            - { id: c, colour: red }
            - not a mapping
`), []string{
			`f.yaml:12: step "one": variant "a": unknown template "t9"`,
			`f.yaml:13: step "one": variant "b": subject uses unknown field .Frist (have .FirstName, .Name, .Company, .Email; use attr "key" "fallback" for other lead attributes)`,
			`f.yaml:14: step "one": variant "c": unknown field "colour" (valid: id, template, subject, weight)`,
			`f.yaml:15: step "one": variant #4: expected a mapping, got "not a mapping"`,
		}},
		{"step without variants needs its email", one(`      steps:
        - id: one
          wait: 1d
`), []string{
			`f.yaml:8: step "one": missing required field "template"`,
			`f.yaml:8: step "one": missing required field "subject"`,
		}},

		// Step conditions.
		{"bands", one(`      steps:
        - id: one
          template: t1
          subject: s
          when:
            band_in: [cold, tepid, Hot]
`), []string{
			`f.yaml:12: step "one": when: band_in: unknown band "tepid" (valid: cold, warm, hot)`,
			`f.yaml:12: step "one": when: band_in: unknown band "Hot" (valid: cold, warm, hot)`,
		}},
		{"no band", one(`      steps:
        - id: one
          template: t1
          subject: s
          when: { band_in: [] }
`), []string{`f.yaml:11: step "one": when: band_in: lists no band, so it never holds (leave band_in out to allow every band)`}},
		{"score", one(`      steps:
        - id: one
          template: t1
          subject: s
          when:
            score: { min: 80, max: 30 }
        - id: two
          template: t1
          subject: s
          when:
            score: {}
        - id: three
          template: t1
          subject: s
          when:
            score: { min: "50", low: 1 }
        - id: four
          template: t1
          subject: s
          when:
            score: 50
`), []string{
			`f.yaml:12: step "one": when: score: min 80 is above max 30, so it never holds`,
			`f.yaml:17: step "two": when: score: give min, max or both`,
			`f.yaml:22: step "three": when: score: unknown field "low" (valid: min, max)`,
			`f.yaml:22: step "three": when: score: min: expected a number, got "50"`,
			`f.yaml:27: step "four": when: score: expected a mapping, got "50"`,
		}},
		{"attributes", one(`      steps:
        - id: one
          template: t1
          subject: s
          when:
            attributes:
              industry: { in: [] }
              country: { equals: de, in: [at] }
              role: {}
              size: saas
              employees: { min: 500, max: 50 }
              phone: { present: yes }
              fax: { equals: "" }
              region: { in: [eu, ""] }
              industry: { equals: saas }
              "": { present: true }
              seats: { min: .inf }
              tier: { equals: [gold] }
              plan: { nope: 1 }
              revenue: { max: 10, equals: x }
`), []string{
			`f.yaml:13: step "one": when: attributes: industry: in: lists no value, so it never holds`,
			`f.yaml:14: step "one": when: attributes: country: give one test, not equals and in`,
			`f.yaml:15: step "one": when: attributes: role: give one test: equals, in, present, or min and/or max`,
			`f.yaml:16: step "one": when: attributes: size: expected a test such as { equals: de }, { in: [a, b] }, { present: true } or { min: 1, max: 9 }, got "saas"`,
			`f.yaml:17: step "one": when: attributes: employees: min 500 is above max 50, so it never holds`,
			`f.yaml:18: step "one": when: attributes: phone: present must be true or false, not "yes"`,
			`f.yaml:19: step "one": when: attributes: fax: equals: an empty value never matches (use present: false for a missing attribute)`,
			`f.yaml:20: step "one": when: attributes: region: in: an empty value never matches`,
			`f.yaml:21: step "one": when: attributes: attribute "industry" is tested twice (first on line 13): give one test per attribute`,
			`f.yaml:22: step "one": when: attributes: an attribute name must be a non-empty string, not ""`,
			`f.yaml:23: step "one": when: attributes: seats: min: expected a number, got ".inf"`,
			`f.yaml:24: step "one": when: attributes: tier: equals: expected a string, got a list`,
			`f.yaml:25: step "one": when: attributes: plan: unknown field "nope" (valid: equals, in, present, min, max)`,
			`f.yaml:25: step "one": when: attributes: plan: give one test: equals, in, present, or min and/or max`,
			`f.yaml:26: step "one": when: attributes: revenue: give one test, not equals and min/max`,
		}},
		{"attributes not a mapping", one(`      steps:
        - id: one
          template: t1
          subject: s
          when: { attributes: [industry] }
`), []string{
			`f.yaml:11: step "one": when: attributes: expected a mapping of attribute name to test, such as industry: { equals: saas }, got a list`,
		}},

		// Steps that can never be sent.
		{"only exit stages", one(`      exit: { stages: [mql, customer] }
      steps:
        - id: one
          template: t1
          subject: s
          when: { stage_in: [customer, mql] }
`), []string{`f.yaml:12: step "one": never sent: every stage in when.stage_in is an exit stage of the sequence`}},
		{"only exit or goal stages", one(`      goal: { stage: sql }
      exit: { stages: [customer] }
      steps:
        - id: one
          template: t1
          subject: s
          when: { stage_in: [customer, opportunity, sql] }
`), []string{`f.yaml:13: step "one": never sent: every stage in when.stage_in is an exit stage of the sequence or reaches its goal (stage sql), so the lead has left before`}},
		{"previous_clicked on the first step", one(`      steps:
        - id: one
          template: t1
          subject: s
          when: { previous_clicked: true, band_in: [warm] }
`), []string{`f.yaml:11: step "one": when: previous_clicked on the first step: there is no previous email`}},

		// Segment conditions.
		{"segment when", `version: 1
default_segment: general
segments:
  - id: general
    when:
      previous_clicked: true
      band_in: [lukewarm]
      stage: lead
      score: { min: 9, max: 1 }
      attributes: { industry: { in: [] } }
    sequence: { id: s, steps: [{ id: one, template: t1, subject: s }] }
`, []string{
			`f.yaml:6: segment "general": when: previous_clicked: a segment has no previous email; test it in a step's when`,
			`f.yaml:7: segment "general": when: band_in: unknown band "lukewarm" (valid: cold, warm, hot)`,
			`f.yaml:8: segment "general": when: unknown field "stage" (valid: stage_in, band_in, score, attributes)`,
			`f.yaml:9: segment "general": when: score: min 9 is above max 1, so it never holds`,
			`f.yaml:10: segment "general": when: attributes: industry: in: lists no value, so it never holds`,
		}},
		{"segment when empty", `version: 1
default_segment: general
segments:
  - id: general
    when: {}
    sequence: { id: s, steps: [{ id: one, template: t1, subject: s }] }
`, []string{`f.yaml:5: segment "general": when: tests nothing (give stage_in, band_in, score or attributes, or leave when out)`}},
		{"segment when not a mapping", `version: 1
default_segment: general
segments:
  - id: general
    when: hot
    sequence: { id: s, steps: [{ id: one, template: t1, subject: s }] }
`, []string{`f.yaml:5: segment "general": when: expected a mapping, got "hot"`}},
		{"segment with when after one taking its interests", `version: 1
default_segment: general
segments:
  - id: hot-first
    interests: [ops]
    when: { band_in: [hot] }
    sequence: { id: s1, steps: [{ id: one, template: t1, subject: s }] }
  - id: analytics
    interests: [analytics, ops]
    sequence: { id: s2, steps: [{ id: one, template: t1, subject: s }] }
  - id: analytics-hot
    interests: [reporting, Analytics]
    when: { band_in: [hot] }
    sequence: { id: s3, steps: [{ id: one, template: t1, subject: s }] }
  - id: ops-again
    interests: [ops]
    sequence: { id: s4, steps: [{ id: one, template: t1, subject: s }] }
  - id: general
    sequence: { id: s5, steps: [{ id: one, template: t1, subject: s }] }
`, []string{
			`f.yaml:12: segment "analytics-hot": never chosen for interest "Analytics": segment "analytics" (line 9) comes first with it and has no when, so it takes every such lead`,
			`f.yaml:16: segment "ops-again": interest "ops" is already claimed by segment "analytics" (line 9)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cat, diags := Parse("f.yaml", []byte(tt.yaml), featureOptions)
			assert.Nil(t, cat)
			assert.Equal(t, tt.want, lines(diags))
		})
	}
}

// Without Options.EventTypes a goal may name any event type; with it, only known ones.
func TestGoalEventTypesOptional(t *testing.T) {
	t.Parallel()
	file := one("      goal: { event: trial_started }\n" + oneStep)
	cat, diags := Parse("f.yaml", []byte(file), Options{})
	require.Empty(t, diags)
	assert.Equal(t, "trial_started", cat.Segments[0].Sequence.Goal.Event)
	_, diags = Parse("f.yaml", []byte(file), featureOptions)
	require.Len(t, diags, 1)
	assert.True(t, strings.Contains(diags[0].Message, `unknown event type "trial_started"`), diags[0].Message)
}
