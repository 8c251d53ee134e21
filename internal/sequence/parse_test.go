package sequence

import (
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"maps"
	"slices"
	"strings"
	"testing"
	texttemplate "text/template"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/lifecycle"
)

var exitStages = []lifecycle.Stage{
	lifecycle.MQL, lifecycle.SAL, lifecycle.SQL, lifecycle.Opportunity,
	lifecycle.Customer, lifecycle.Evangelist, lifecycle.Disqualified,
}

func TestExamples(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file     string
		window   Window
		maxWait  time.Duration
		segments []string
		holdout  float64 // of automation-series
	}{
		{"../../examples/sequences.yaml", Window{Cron: "* * * * *", TimeZone: "Europe/Berlin"}, 2 * time.Minute,
			[]string{"analytics", "automation", "security", "general"}, 0},
		{"../../examples/sequences-production.yaml", Window{Cron: "* 9-16 * * MON-FRI", TimeZone: "Europe/Berlin", Spread: 2 * time.Hour}, 7 * 24 * time.Hour,
			[]string{"analytics", "automation", "security-regulated", "security", "general"}, 0.1},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			cat, err := Load(tt.file, Options{TemplateExists: templateExists, EventTypes: []string{"demo_request", "page_view"}})
			require.NoError(t, err)

			assert.Equal(t, "general", cat.DefaultSegment)
			assert.Equal(t, tt.window, cat.Window)
			var ids []string
			for _, seg := range cat.Segments {
				ids = append(ids, seg.ID)
				seq := seg.Sequence
				assert.Equal(t, tt.window, seq.Window, seg.ID)
				assert.Equal(t, Exit{Stages: exitStages, Unsubscribed: true}, seq.Exit, seg.ID)
				require.Len(t, seq.Steps, 3, seg.ID)
				assert.Zero(t, seq.Steps[0].Wait, "%s: the first email goes out at once", seg.ID)
				for i, st := range seq.Steps {
					if seg.When == nil {
						assert.Equal(t, fmt.Sprintf("%s-%d", seg.ID, i+1), st.Template)
					}
					assert.LessOrEqual(t, st.Wait, tt.maxWait)
				}
			}
			assert.Equal(t, tt.segments, ids)
			general, ok := cat.Segment("general")
			require.True(t, ok)
			assert.Equal(t, []lifecycle.Stage{lifecycle.Subscriber, lifecycle.Lead}, general.Sequence.Steps[2].When.StageIn)
			assert.Equal(t, &Goal{Stage: lifecycle.MQL}, general.Sequence.Goal)

			analytics, _ := cat.Segment("analytics")
			assert.Equal(t, &Goal{Event: "demo_request"}, analytics.Sequence.Goal)
			deepDive := analytics.Sequence.Steps[1]
			assert.Equal(t, []Variant{
				{ID: "fix-it", Template: "analytics-2", Subject: deepDive.Subject, Weight: 1},
				{ID: "question", Template: "analytics-2", Subject: "Does anyone read your weekly report?", Weight: 1},
			}, deepDive.Variants)
			automation, _ := cat.Segment("automation")
			assert.Equal(t, tt.holdout, automation.Sequence.Holdout)

			// A security lead from a regulated industry gets the regulated series where there is one.
			want := "security"
			if slices.Contains(tt.segments, "security-regulated") {
				want = "security-regulated"
			}
			f := Facts{Stage: lifecycle.Lead, Band: "cold", Attributes: map[string]string{"industry": "Fintech"}}
			assert.Equal(t, want, cat.SegmentForLead([]string{"sso"}, f).ID)
			f.Attributes["industry"] = "retail"
			assert.Equal(t, "security", cat.SegmentForLead([]string{"sso"}, f).ID)
			assert.Equal(t, "security", cat.SegmentFor([]string{"sso"}).ID, "without facts, a conditional segment is not chosen")
		})
	}
}

func TestBadFile(t *testing.T) {
	t.Parallel()
	const stages = "(valid: subscriber, lead, mql, sal, sql, opportunity, customer, evangelist, other, recycled, disqualified)"
	const idRule = `use up to 63 lowercase letters, digits, "-" and "_", starting with a letter or digit`
	want := []string{
		`testdata/bad.yaml:2: unsupported version 2 (supported: 1)`,
		`testdata/bad.yaml:3: default_segment: no segment has id "nobody" (ids: analytics, automation, empty, no-sequence)`,
		`testdata/bad.yaml:4: unknown field "colour" (valid: version, default_segment, send_window, frequency_cap, quiet_hours, reengagement, consent, segments)`,
		`testdata/bad.yaml:6: send_window: invalid cron spec "* 25 * * *": end of range (25) above maximum (23): 25`,
		`testdata/bad.yaml:7: send_window: unknown time zone "Mars/Base"`,
		`testdata/bad.yaml:8: send_window: unknown field "timezone" (valid: cron, time_zone, spread)`,
		`testdata/bad.yaml:11: segment "analytics": unknown field "intrests" (valid: id, name, interests, inactive_after, when, sequence)`,
		`testdata/bad.yaml:12: segment "analytics": interest "reporting" is listed twice`,
		`testdata/bad.yaml:12: segment "analytics": empty interest`,
		`testdata/bad.yaml:16: sequence "analytics-series": exit: stages: unknown stage "prospect" ` + stages,
		`testdata/bad.yaml:17: sequence "analytics-series": exit: unsubscribed: false is not allowed: unsubscribed leads always exit`,
		`testdata/bad.yaml:20: step "intro": unknown template "analytics-9"`,
		`testdata/bad.yaml:21: step "intro": invalid subject: template: subject:1: bad character U+007D '}'`,
		`testdata/bad.yaml:22: step "intro": wait: must not be negative, got -1h`,
		`testdata/bad.yaml:23: sequence "analytics-series": duplicate step id "intro" (first on line 19)`,
		`testdata/bad.yaml:25: step "intro": subject uses unknown field .Frist (have .FirstName, .Name, .Company, .Email; use attr "key" "fallback" for other lead attributes)`,
		`testdata/bad.yaml:26: step "intro": wait: invalid duration "3 days": unknown unit " days" (use s, m, h, d or w)`,
		`testdata/bad.yaml:28: step "intro": when: stage_in: unknown stage "Lead" ` + stages,
		`testdata/bad.yaml:29: step "intro": when: unknown field "stage" (valid: stage_in, previous_clicked, band_in, score, attributes)`,
		`testdata/bad.yaml:34: step "late": never sent: every stage in when.stage_in is an exit stage of the sequence`,
		`testdata/bad.yaml:35: duplicate segment id "analytics" (first on line 10)`,
		`testdata/bad.yaml:36: segment "analytics": interest "REPORTING" is already claimed by segment "analytics" (line 12)`,
		`testdata/bad.yaml:38: duplicate sequence id "analytics-series" (first on line 14)`,
		`testdata/bad.yaml:40: sequence "analytics-series": send_window: invalid cron spec "TZ=Europe/Berlin * * * * *": put the time zone in time_zone, not in the spec`,
		`testdata/bad.yaml:41: sequence "analytics-series": steps: must list at least one step`,
		`testdata/bad.yaml:42: segment #3: invalid segment id "Security Team": ` + idRule,
		`testdata/bad.yaml:46: sequence "security_series": step #1: missing required field "id"`,
		`testdata/bad.yaml:49: sequence "security_series": step #2: invalid step id "-nope": ` + idRule,
		`testdata/bad.yaml:49: sequence "security_series": step #2: missing required field "template"`,
		`testdata/bad.yaml:49: sequence "security_series": step #2: missing required field "subject"`,
		`testdata/bad.yaml:52: segment "automation": sequence: missing required field "id"`,
		`testdata/bad.yaml:52: segment "automation": sequence: exit: stages: expected a list, got "mql"`,
		`testdata/bad.yaml:53: segment "automation": sequence: steps: expected a list, got a mapping`,
		`testdata/bad.yaml:54: segment #5: missing required field "id"`,
		`testdata/bad.yaml:59: step "s1": duplicate field "id" (first on line 58)`,
		`testdata/bad.yaml:64: sequence "empty-series": missing required field "steps"`,
		`testdata/bad.yaml:65: segment "no-sequence": missing required field "sequence"`,
	}
	const file = "testdata/bad.yaml"
	cat, diags := Parse(file, mustRead(t, file), Options{TemplateExists: func(name string) bool { return name != "analytics-9" }})
	assert.Nil(t, cat)
	got := make([]string, len(diags))
	for i, d := range diags {
		got[i] = d.String()
	}
	assert.Equal(t, want, got)
	assert.Equal(t, strings.Join(want, "\n"), diags.Error())
}

func TestParseDocument(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"empty file", "", []string{
			`f.yaml:1: missing required field "version"`,
			`f.yaml:1: missing required field "default_segment"`,
			`f.yaml:1: missing required field "segments"`,
		}},
		{"not a mapping", "- 1\n- 2\n", []string{`f.yaml:1: expected a mapping, got a list`}},
		{"invalid YAML", "version: 1\nsegments: [\n", []string{`f.yaml:2: invalid YAML: did not find expected node content`}},
		{"tabs", "version: 1\n\tsegments: []\n", []string{`f.yaml:2: invalid YAML: found a tab character that violates indentation`}},
		{"version not a number", "version: one\ndefault_segment: a\nsegments: []\n", []string{
			`f.yaml:1: version: expected a number, got "one"`,
			`f.yaml:2: default_segment: no segment has id "a"`,
			`f.yaml:3: segments: must list at least one segment`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cat, diags := Parse("f.yaml", []byte(tt.yaml), Options{})
			assert.Nil(t, cat)
			var got []string
			for _, d := range diags {
				got = append(got, d.String())
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

const minimal = `
version: 1
default_segment: general
send_window: {cron: "* 9-16 * * MON-FRI", time_zone: Europe/Berlin}
segments:
  - id: ops
    interests: [Automation, workflows]
    sequence:
      id: ops-series
      send_window: {time_zone: America/New_York}
      steps:
        - {id: one, template: t, subject: "Hi {{attr \"role\" \"there\"}}", wait: 1d12h}
  - id: data
    interests: [analytics, automation-extra]
    sequence:
      id: data-series
      send_window: {cron: "* * * * *"}
      steps: [{id: one, template: t, subject: s}]
  - id: general
    sequence:
      id: general-series
      steps: [{id: one, template: t, subject: s, wait: 0}]
`

func parseMinimal(t *testing.T) *Catalog {
	t.Helper()
	cat, diags := Parse("minimal.yaml", []byte(minimal), Options{})
	require.Empty(t, diags)
	return cat
}

func TestWindowOverride(t *testing.T) {
	t.Parallel()
	cat := parseMinimal(t)
	want := map[string]Window{
		"ops":     {Cron: "* 9-16 * * MON-FRI", TimeZone: "America/New_York"},
		"data":    {Cron: "* * * * *", TimeZone: "Europe/Berlin"},
		"general": {Cron: "* 9-16 * * MON-FRI", TimeZone: "Europe/Berlin"},
	}
	for id, w := range want {
		seg, ok := cat.Segment(id)
		require.True(t, ok, id)
		assert.Equal(t, w, seg.Sequence.Window, id)
	}
	ops, _ := cat.Segment("ops")
	assert.Equal(t, 36*time.Hour, ops.Sequence.Steps[0].Wait)
	assert.True(t, ops.Sequence.Exit.Unsubscribed, "unsubscribed leads exit even when the file does not say so")
}

func TestSegmentFor(t *testing.T) {
	t.Parallel()
	cat := parseMinimal(t)
	tests := []struct {
		interests []string
		want      string
	}{
		{nil, "general"},
		{[]string{"gardening"}, "general"},
		{[]string{"workflows"}, "ops"},
		{[]string{"AUTOMATION"}, "ops"},
		{[]string{" automation "}, "ops"},
		{[]string{"automation-extra"}, "data"},
		{[]string{"analytics", "workflows"}, "ops"}, // file order decides, not the lead's order
		{[]string{"gardening", "Analytics"}, "data"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, cat.SegmentFor(tt.interests).ID, "%q", tt.interests)
	}
	_, ok := cat.Segment("nope")
	assert.False(t, ok)
}

func TestConditionAndExit(t *testing.T) {
	t.Parallel()
	assert.True(t, Condition{}.Holds(lifecycle.Customer))
	c := Condition{StageIn: []lifecycle.Stage{lifecycle.Subscriber, lifecycle.Lead}}
	assert.True(t, c.Holds(lifecycle.Lead))
	assert.False(t, c.Holds(lifecycle.MQL))

	assert.False(t, Exit{}.Reached(lifecycle.Customer))
	e := Exit{Stages: []lifecycle.Stage{lifecycle.Customer}}
	assert.True(t, e.Reached(lifecycle.Customer))
	assert.False(t, e.Reached(lifecycle.Lead))
}

func TestCatalogTravelsAsJSON(t *testing.T) {
	t.Parallel()
	cat := parseMinimal(t)
	b, err := json.Marshal(cat)
	require.NoError(t, err)
	var back Catalog
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, *cat, back)
}

func TestLoad(t *testing.T) {
	t.Parallel()
	_, err := Load("testdata/missing.yaml", Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "load sequences: ")

	_, err = Load("testdata/bad.yaml", Options{})
	var diags Diagnostics
	require.ErrorAs(t, err, &diags)
	assert.NotEmpty(t, diags)
}

// TestSchemaMatchesParser keeps the editor schema and the parser from drifting apart.
func TestSchemaMatchesParser(t *testing.T) {
	t.Parallel()
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       map[string]struct {
			Properties           map[string]json.RawMessage `json:"properties"`
			AdditionalProperties *bool                      `json:"additionalProperties"`
		} `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(mustRead(t, "../../schemas/sequences.schema.json"), &schema))
	keys := func(m map[string]json.RawMessage) []string { return slices.Sorted(maps.Keys(m)) }

	assert.Equal(t, slices.Sorted(slices.Values(catalogFields)), keys(schema.Properties), "catalog")
	for def, fields := range map[string][]string{
		"window": windowFields, "segment": segmentFields, "sequence": sequenceFields,
		"exit": exitFields, "step": stepFields, "condition": conditionFields,
		"segment_condition": segmentConditionFields, "goal": goalFields, "variant": variantFields,
		"range": rangeFields, "attribute_test": attributeTestFields,
	} {
		d := schema.Defs[def]
		assert.Equal(t, slices.Sorted(slices.Values(fields)), keys(d.Properties), def)
		if assert.NotNil(t, d.AdditionalProperties, def) {
			assert.False(t, *d.AdditionalProperties, def)
		}
	}
}

// TestExampleTemplates renders every template the examples use, as the mailer will: lead fields on
// dot and an attr function.
func TestExampleTemplates(t *testing.T) {
	t.Parallel()
	cat, err := Load("../../examples/sequences.yaml", Options{TemplateExists: templateExists})
	require.NoError(t, err)
	data := map[string]string{"FirstName": "Ada", "Name": "Ada Lovelace", "Company": "Analytical Engines", "Email": "ada@example.com"}
	attr := func(key, fallback string) string { return fallback }
	for _, seg := range cat.Segments {
		for _, st := range seg.Sequence.Steps {
			var out strings.Builder
			ht, err := htmltemplate.New("content").Funcs(htmltemplate.FuncMap{"attr": attr}).Option("missingkey=error").
				Parse(string(mustRead(t, templatesDir+"/"+st.Template+".html")))
			require.NoError(t, err, st.Template)
			require.NoError(t, ht.Execute(&out, data), st.Template)
			assert.Contains(t, out.String(), "Hi Ada,")

			out.Reset()
			tt, err := texttemplate.New("content").Funcs(texttemplate.FuncMap{"attr": attr}).Option("missingkey=error").
				Parse(string(mustRead(t, templatesDir+"/"+st.Template+".txt")))
			require.NoError(t, err, st.Template)
			require.NoError(t, tt.Execute(&out, data), st.Template)
			assert.NotContains(t, out.String(), "<", "%s.txt is plain text", st.Template)
		}
	}
}

func TestDiagnosticString(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "a.yaml:3: boom", Diagnostic{File: "a.yaml", Line: 3, Message: "boom"}.String())
	assert.Equal(t, "a.yaml: boom", Diagnostic{File: "a.yaml", Message: "boom"}.String())
	var err error = Diagnostics{{File: "a", Line: 1, Message: "x"}, {File: "a", Line: 2, Message: "y"}}
	assert.EqualError(t, err, "a:1: x\na:2: y")
	assert.True(t, errors.As(err, new(Diagnostics)))
}

func FuzzParse(f *testing.F) {
	for _, file := range []string{"testdata/bad.yaml", "../../examples/sequences.yaml", "../../examples/sequences-production.yaml"} {
		f.Add(mustRead(f, file))
	}
	f.Add([]byte(minimal))
	f.Add([]byte(features))
	f.Add([]byte(bandSegments))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("segments: &s [{id: a, sequence: *s}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cat, diags := Parse("fuzz.yaml", data, Options{TemplateExists: func(string) bool { return true }})
		if (cat == nil) == (len(diags) == 0) {
			t.Fatalf("catalog %v with %d diagnostics", cat != nil, len(diags))
		}
		if cat != nil {
			cat.SegmentFor([]string{"x"})
		}
	})
}
