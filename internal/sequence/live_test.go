package sequence

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/lifecycle"
)

// leads returns n random lead ids, as the database makes them.
func leads(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	return ids
}

func abStep(weights ...int) Step {
	st := Step{ID: "deep-dive", Template: "analytics-2", Subject: "Why your weekly report gets ignored"}
	for i, w := range weights {
		st.Variants = append(st.Variants, Variant{ID: string(rune('a' + i)), Template: "analytics-2", Subject: "subject " + string(rune('a'+i)), Weight: w})
	}
	return st
}

// Each lead keeps its variant: on every call, and after the step has travelled as JSON (as it does
// in a Temporal payload, across continue-as-new and versions).
func TestVariantForIsStable(t *testing.T) {
	t.Parallel()
	st := abStep(1, 1, 1)
	b, err := json.Marshal(st)
	require.NoError(t, err)
	var back Step
	require.NoError(t, json.Unmarshal(b, &back))
	for _, id := range leads(500) {
		first := st.VariantFor(id, "analytics-series")
		assert.Equal(t, first, st.VariantFor(id, "analytics-series"), id)
		assert.Equal(t, first, back.VariantFor(id, "analytics-series"), id)
	}
}

// Over 10,000 leads each variant gets its weight's share, within 2 percentage points.
func TestVariantForFollowsTheWeights(t *testing.T) {
	t.Parallel()
	ids := leads(10_000)
	for _, weights := range [][]int{{50, 50}, {70, 20, 10}, {1, 1}, {7, 2, 1}} {
		st := abStep(weights...)
		total := 0
		for _, w := range weights {
			total += w
		}
		got := map[string]int{}
		for _, id := range ids {
			got[st.VariantFor(id, "analytics-series").ID]++
		}
		require.Len(t, got, len(weights), "every variant is chosen: %v", weights)
		for _, v := range st.Variants {
			want := float64(v.Weight) / float64(total)
			share := float64(got[v.ID]) / float64(len(ids))
			assert.InDelta(t, want, share, 0.02, "weights %v: variant %s", weights, v.ID)
		}
	}
}

// A step without variants sends its own email; a variant's id is empty then, so sends record none.
func TestVariantForWithoutVariants(t *testing.T) {
	t.Parallel()
	st := Step{ID: "intro", Template: "analytics-1", Subject: "Hi"}
	assert.Equal(t, Variant{Template: "analytics-1", Subject: "Hi"}, st.VariantFor(uuid.NewString(), "analytics-series"))
}

// What a lead gets at one step is independent of everything else: other steps' tests, a new step,
// the holdout, another sequence running the same test.
func TestVariantForIgnoresTheRestOfTheSequence(t *testing.T) {
	t.Parallel()
	before := Sequence{ID: "analytics-series", Steps: []Step{
		{ID: "intro", Template: "analytics-1", Subject: "Hi"},
		abStep(50, 50),
		{ID: "case-study", Template: "analytics-3", Subject: "A case"},
	}}
	after := Sequence{ID: "analytics-series", Holdout: 0.2, Steps: []Step{
		abStep(1, 1),
		{ID: "new", Template: "analytics-1", Subject: "New"},
		abStep(50, 50),
		{ID: "case-study", Template: "analytics-3", Subject: "Changed", Variants: abStep(3, 1).Variants},
	}}
	after.Steps[0].ID = "intro"
	ids := leads(2_000)
	for _, id := range ids {
		assert.Equal(t, before.Steps[1].VariantFor(id, before.ID), after.Steps[2].VariantFor(id, after.ID), id)
	}
	// Two sequences testing a step of the same id split their leads independently, so one test's
	// winner says nothing about which leads the other sends which variant.
	same := 0
	for _, id := range ids {
		if abStep(1, 1).VariantFor(id, "analytics-series").ID == abStep(1, 1).VariantFor(id, "security-series").ID {
			same++
		}
	}
	assert.InDelta(t, 0.5, float64(same)/float64(len(ids)), 0.05)
}

// The holdout keeps its share of leads, and the variants keep their weights among the leads that
// are not held out: the two splits are independent.
func TestHeldOut(t *testing.T) {
	t.Parallel()
	q := Sequence{ID: "automation-series", Holdout: 0.1, Steps: []Step{abStep(50, 50)}}
	ids := leads(10_000)
	held, treated, a := 0, 0, 0
	for _, id := range ids {
		if q.HeldOut(id) {
			held++
			continue
		}
		treated++
		if q.Steps[0].VariantFor(id, q.ID).ID == "a" {
			a++
		}
	}
	assert.InDelta(t, 0.1, float64(held)/float64(len(ids)), 0.015)
	assert.InDelta(t, 0.5, float64(a)/float64(treated), 0.02)

	// Raising the holdout only adds leads to it: a lead already held out is never suddenly mailed,
	// and one already mailed leaves only if the share grows past it.
	wider := q
	wider.Holdout = 0.2
	for _, id := range ids {
		if q.HeldOut(id) {
			assert.True(t, wider.HeldOut(id), id)
		}
	}
	none := q
	none.Holdout = 0
	for _, id := range ids[:1000] {
		assert.False(t, none.HeldOut(id), "no holdout holds out nobody")
	}
	// Another sequence's holdout is another group of leads.
	other := Sequence{ID: "security-series", Holdout: 0.1}
	both := 0
	for _, id := range ids {
		if q.HeldOut(id) && other.HeldOut(id) {
			both++
		}
	}
	assert.InDelta(t, 0.01, float64(both)/float64(len(ids)), 0.005)
}

func steps(ids ...string) Sequence {
	q := Sequence{ID: "s"}
	for _, id := range ids {
		q.Steps = append(q.Steps, Step{ID: id})
	}
	return q
}

// Position is the rule a marketer reads in the README: where a waiting lead goes in a new version.
func TestPosition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		next   Sequence
		passed []string
		want   string // the next step's id; "" when nothing is left
	}{
		{"unchanged", steps("a", "b", "c"), []string{"a"}, "b"},
		{"nothing passed yet", steps("a", "b", "c"), nil, "a"},
		{"removed the step it waited for: the next remaining one", steps("a", "c"), []string{"a"}, "c"},
		{"removed a step it passed", steps("a", "c"), []string{"a", "b"}, "c"},
		{"removed every step it passed", steps("c", "d"), []string{"a", "b"}, "c"},
		{"inserted after its position: picked up", steps("a", "x", "b", "c"), []string{"a"}, "x"},
		{"inserted before its position: never sent", steps("x", "a", "b", "c"), []string{"a", "b"}, "c"},
		{"inserted at the end after all passed", steps("a", "b", "c", "d"), []string{"a", "b", "c"}, "d"},
		{"moved a step before its position: not sent again or late", steps("c", "a", "b"), []string{"a"}, "b"},
		{"all passed", steps("a", "b", "c"), []string{"a", "b", "c"}, ""},
		{"all passed, one removed", steps("a", "c"), []string{"a", "b", "c"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			at := Position(tt.next, tt.passed)
			require.GreaterOrEqual(t, at, 0)
			require.LessOrEqual(t, at, len(tt.next.Steps))
			got := ""
			if at < len(tt.next.Steps) {
				got = tt.next.Steps[at].ID
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

const bandSegments = `version: 1
default_segment: general
segments:
  - id: analytics-hot
    interests: [analytics]
    when: { band_in: [hot] }
    sequence: { id: hot-series, steps: [{ id: one, template: t, subject: s }] }
  - id: analytics-warm
    interests: [analytics]
    when: { band_in: [warm], score: { min: 60 } }
    sequence: { id: warm-series, steps: [{ id: one, template: t, subject: s }] }
  - id: analytics
    interests: [analytics]
    sequence: { id: analytics-series, steps: [{ id: one, template: t, subject: s }] }
  - id: enterprise
    when:
      stage_in: [lead]
      attributes:
        employees: { min: 1000 }
        country: { in: [de, at, ch] }
    sequence: { id: enterprise-series, steps: [{ id: one, template: t, subject: s }] }
  - id: named
    interests: [ops]
    when: { attributes: { industry: { equals: SaaS }, phone: { present: true } } }
    sequence: { id: named-series, steps: [{ id: one, template: t, subject: s }] }
  - id: general
    sequence: { id: general-series, steps: [{ id: one, template: t, subject: s }] }
`

// Cold, warm and hot leads with the same interest get different series; a segment without
// interests is chosen by its when alone; the default catches the rest.
func TestSegmentForLead(t *testing.T) {
	t.Parallel()
	cat, diags := Parse("bands.yaml", []byte(bandSegments), Options{})
	require.Empty(t, diags)
	big := map[string]string{"employees": "5000", "country": "DE"}
	tests := []struct {
		name      string
		interests []string
		facts     Facts
		want      string
	}{
		{"hot", []string{"Analytics"}, Facts{Stage: lifecycle.Lead, Band: "hot", Score: 90}, "analytics-hot"},
		{"warm with score", []string{"analytics"}, Facts{Stage: lifecycle.Lead, Band: "warm", Score: 65}, "analytics-warm"},
		{"warm below the score", []string{"analytics"}, Facts{Stage: lifecycle.Lead, Band: "warm", Score: 55}, "analytics"},
		{"cold", []string{"analytics"}, Facts{Stage: lifecycle.Lead, Band: "cold", Score: 10}, "analytics"},
		{"hot and big: file order", []string{"analytics"}, Facts{Stage: lifecycle.Lead, Band: "hot", Attributes: big}, "analytics-hot"},
		{"big, no interests", nil, Facts{Stage: lifecycle.Lead, Band: "cold", Attributes: big}, "enterprise"},
		{"big with another interest", []string{"gardening"}, Facts{Stage: lifecycle.Lead, Attributes: big}, "enterprise"},
		{"big but a subscriber", nil, Facts{Stage: lifecycle.Subscriber, Attributes: big}, "general"},
		{"big elsewhere", nil, Facts{Stage: lifecycle.Lead, Attributes: map[string]string{"employees": "5000", "country": "fr"}}, "general"},
		{"size not a number", nil, Facts{Stage: lifecycle.Lead, Attributes: map[string]string{"employees": "lots", "country": "de"}}, "general"},
		{"small", nil, Facts{Stage: lifecycle.Lead, Attributes: map[string]string{"employees": "999", "country": "de"}}, "general"},
		{"every attribute holds", []string{"ops"}, Facts{Attributes: map[string]string{"industry": " saas ", "phone": "+49 30 1"}}, "named"},
		{"one attribute missing", []string{"ops"}, Facts{Attributes: map[string]string{"industry": "saas"}}, "general"},
		{"nothing known", nil, Facts{}, "general"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, cat.SegmentForLead(tt.interests, tt.facts).ID, tt.name)
	}
	// Without facts, the conditional segments are passed over.
	assert.Equal(t, "analytics", cat.SegmentFor([]string{"analytics"}).ID)
	assert.Equal(t, "general", cat.SegmentFor([]string{"ops"}).ID)
}

func TestCatalogSequenceAndSegmentOf(t *testing.T) {
	t.Parallel()
	cat, diags := Parse("p.yaml", []byte(policiesHead+`reengagement:
  after: 30d
  sequence:
    id: reengage
    steps:
      - { id: still-there, template: reengage-1, subject: "Still interested?" }
`+policiesTail), Options{})
	require.Empty(t, diags)
	q, ok := cat.Sequence("general-series")
	require.True(t, ok)
	assert.Equal(t, "one", q.Steps[0].ID)
	q, ok = cat.Sequence("reengage")
	require.True(t, ok)
	assert.Equal(t, "still-there", q.Steps[0].ID)
	_, ok = cat.Sequence("nope")
	assert.False(t, ok)
	seg, ok := cat.SegmentOf("general-series")
	require.True(t, ok)
	assert.Equal(t, "general", seg.ID)
	_, ok = cat.SegmentOf("reengage")
	assert.False(t, ok, "the re-engagement series belongs to no segment")
}

func TestGoalReached(t *testing.T) {
	t.Parallel()
	stage := &Goal{Stage: lifecycle.SQL}
	assert.True(t, stage.ReachedByStage(lifecycle.SQL))
	assert.True(t, stage.ReachedByStage(lifecycle.Customer))
	assert.False(t, stage.ReachedByStage(lifecycle.MQL))
	assert.False(t, stage.ReachedByStage(lifecycle.Disqualified))
	assert.False(t, stage.ReachedByEvent("demo_request", nil))

	event := &Goal{Event: "demo_request", Tag: "pricing"}
	assert.True(t, event.ReachedByEvent("demo_request", []string{"x", "Pricing"}))
	assert.False(t, event.ReachedByEvent("demo_request", []string{"x"}))
	assert.False(t, event.ReachedByEvent("quote_request", []string{"pricing"}))
	assert.False(t, event.ReachedByStage(lifecycle.Customer))
	assert.True(t, (&Goal{Event: "demo_request"}).ReachedByEvent("demo_request", nil))

	var none *Goal
	assert.False(t, none.ReachedByStage(lifecycle.Customer))
	assert.False(t, none.ReachedByEvent("demo_request", nil))
}

func TestConditionMatches(t *testing.T) {
	t.Parallel()
	f := func(v float64) *float64 { return &v }
	yes, no := true, false
	de := "de"
	c := Condition{
		StageIn: []lifecycle.Stage{lifecycle.Lead}, PreviousClicked: &yes, BandIn: []string{"warm"},
		Score: &Range{Min: f(50), Max: f(79)},
		Attributes: []AttributeCondition{
			{Name: "country", Equals: &de}, {Name: "phone", Present: &yes}, {Name: "fax", Present: &no},
			{Name: "industry", In: []string{"saas", "fintech"}}, {Name: "employees", Range: &Range{Min: f(50)}},
		},
	}
	ok := Facts{Stage: lifecycle.Lead, PreviousClicked: true, Band: "warm", Score: 50,
		Attributes: map[string]string{"country": "DE", "phone": "1", "industry": "FinTech", "employees": "50"}}
	assert.True(t, c.Matches(ok))
	for name, change := range map[string]func(*Facts){
		"stage":     func(f *Facts) { f.Stage = lifecycle.MQL },
		"click":     func(f *Facts) { f.PreviousClicked = false },
		"band":      func(f *Facts) { f.Band = "hot" },
		"score":     func(f *Facts) { f.Score = 79.5 },
		"country":   func(f *Facts) { f.Attributes["country"] = "at" },
		"phone":     func(f *Facts) { f.Attributes["phone"] = " " },
		"fax":       func(f *Facts) { f.Attributes["fax"] = "1" },
		"industry":  func(f *Facts) { f.Attributes["industry"] = "retail" },
		"employees": func(f *Facts) { f.Attributes["employees"] = "49" },
	} {
		g := ok
		g.Attributes = map[string]string{}
		for k, v := range ok.Attributes {
			g.Attributes[k] = v
		}
		change(&g)
		assert.False(t, c.Matches(g), name)
		// The workflow's part of the condition does not look at attributes; the send's does.
		attr := name == "country" || name == "phone" || name == "fax" || name == "industry" || name == "employees"
		assert.Equal(t, attr, c.HoldsFor(g), name)
		assert.Equal(t, !attr, c.AttributesHold(g.Attributes), name)
	}
	assert.True(t, Condition{}.Matches(Facts{}))
	assert.True(t, (*Range)(nil).Contains(math.Inf(-1)))
}
