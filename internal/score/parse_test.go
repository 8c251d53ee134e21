package score

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/yamlcheck"
)

const exampleFile = "../../examples/scoring.yaml"

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustParse parses a model written inline in a test.
func mustParse(t testing.TB, src string) *Model {
	t.Helper()
	m, diags := Parse("test.yaml", []byte(src))
	require.Empty(t, diags)
	return m
}

func TestExample(t *testing.T) {
	t.Parallel()
	m, err := Load(exampleFile)
	require.NoError(t, err)

	assert.Equal(t, Bands{Warm: 50, Hot: 80}, m.Bands)
	assert.Equal(t, 50.0, m.MQLThreshold, "threshold 50 = MQL")
	assert.Equal(t, []string{EventDemoRequest, EventQuoteRequest, EventCallbackRequest}, m.HandRaise)
	assert.Equal(t, &Decay{PerWeek: 5, After: 14 * 24 * time.Hour}, m.Decay)

	behaviour := map[string]float64{}
	for _, r := range m.Behaviour {
		behaviour[r.ID] = r.Points
	}
	fit := map[string]float64{}
	for _, r := range m.Fit {
		fit[r.ID] = r.Points
	}
	// The numbers from the source material.
	assert.Equal(t, 5.0, behaviour["ebook"])
	assert.Equal(t, 5.0, behaviour["newsletter-signup"])
	assert.Equal(t, 15.0, behaviour["pricing-page"])
	assert.Equal(t, 30.0, behaviour["demo-request"])
	assert.Greater(t, behaviour["webinar-registration"], behaviour["blog-post"], "webinar > blog post")
	assert.Equal(t, 3.0, fit["phone-given"])
	assert.Equal(t, 10.0, fit["large-company"])
	assert.Equal(t, -20.0, fit["non-target-region"])
}

func TestBadFile(t *testing.T) {
	t.Parallel()
	const events = "(valid: open, click, page_view, content_download, webinar_registration, webinar_attended, demo_request, " +
		"quote_request, callback_request, form_submit, reply, newsletter_signup, unsubscribe, bounce, complaint)"
	const idRule = `use up to 63 lowercase letters, digits, "-" and "_", starting with a letter or digit`
	want := []string{
		`testdata/bad.yaml:2: unsupported version 2 (supported: 1)`,
		`testdata/bad.yaml:5: bands: hot (40) must be above warm (60)`,
		`testdata/bad.yaml:6: bands: unknown field "cold" (valid: warm, hot)`,
		`testdata/bad.yaml:7: mql_threshold: must be positive, got 0`,
		`testdata/bad.yaml:8: hand_raise: unknown event type "meeting_request" ` + events,
		`testdata/bad.yaml:8: hand_raise: "demo_request" is listed twice`,
		`testdata/bad.yaml:9: unknown field "colour" (valid: version, bands, mql_threshold, hand_raise, decay, behaviour, fit, negative)`,
		`testdata/bad.yaml:11: decay: half_life: must be positive, got -3d`,
		`testdata/bad.yaml:12: decay: set only one of "half_life" and "per_week"`,
		`testdata/bad.yaml:14: decay: unknown field "speed" (valid: half_life, per_week, after)`,
		`testdata/bad.yaml:17: behaviour rule "email-open": event: unknown event type "opne" ` + events,
		`testdata/bad.yaml:19: behaviour rule "email-open": cap: points: must be positive, got 0`,
		`testdata/bad.yaml:19: behaviour rule "email-open": cap: per: must be positive, got 0d`,
		`testdata/bad.yaml:22: behaviour rule "email-click": points: sign mismatch: -3 is negative, but behaviour rules add points (put penalties under negative)`,
		`testdata/bad.yaml:23: behaviour rule "email-click": cap: unknown field "window" (valid: points, per)`,
		`testdata/bad.yaml:24: behaviour rule #3: invalid rule id "Pricing Page": ` + idRule,
		`testdata/bad.yaml:26: behaviour rule #3: tag: must not be empty`,
		`testdata/bad.yaml:27: behaviour rule #3: points: 15.555 has more than two decimals`,
		`testdata/bad.yaml:28: duplicate rule id "email-open" (first on line 16)`,
		`testdata/bad.yaml:30: behaviour rule "email-open": points: expected a number, got "lots"`,
		`testdata/bad.yaml:31: behaviour rule "email-open": cap: expected a mapping, got "5"`,
		`testdata/bad.yaml:32: behaviour rule #5: missing required field "id"`,
		`testdata/bad.yaml:33: behaviour rule #5: points: 0 scores nothing`,
		`testdata/bad.yaml:34: behaviour rule #5: unknown field "weight" (valid: id, event, tag, points, cap)`,
		`testdata/bad.yaml:38: behaviour rule "ebook": duplicate field "points" (first on line 37)`,
		`testdata/bad.yaml:40: fit rule "large-company": set one of "in" or "present"`,
		`testdata/bad.yaml:43: duplicate rule id "ebook" (first on line 35)`,
		`testdata/bad.yaml:45: fit rule "ebook": in: "Software" is listed twice`,
		`testdata/bad.yaml:45: fit rule "ebook": in: empty value`,
		`testdata/bad.yaml:46: fit rule "ebook": set only one of "in" and "present"`,
		`testdata/bad.yaml:50: fit rule "phone-given": present: expected true or false, got "yes"`,
		`testdata/bad.yaml:51: fit rule "phone-given": unknown field "boost" (valid: id, attribute, in, present, points)`,
		`testdata/bad.yaml:53: fit rule "no-points": missing required field "points"`,
		`testdata/bad.yaml:55: fit rule "no-points": in: expected a list, got "antarctica"`,
		`testdata/bad.yaml:59: negative rule "unsubscribed": points: sign mismatch: 50 is positive, but negative rules take points away (put rewards under behaviour or fit)`,
		`testdata/bad.yaml:61: negative rule "inactive": inactive_for: must be positive, got 0d`,
		`testdata/bad.yaml:62: negative rule "inactive": unknown field "reason" (valid: id, event, tag, inactive_for, points)`,
		`testdata/bad.yaml:65: negative rule "gone-quiet": inactive_for: invalid duration "60 days": unknown unit " days" (use s, m, h, d or w)`,
		`testdata/bad.yaml:66: negative rule "gone-quiet": set only one of "event" and "inactive_for"`,
		`testdata/bad.yaml:68: negative rule "no-signal": set one of "event" or "inactive_for"`,
		`testdata/bad.yaml:69: negative rule "no-signal": tag: only applies to event rules`,
		`testdata/bad.yaml:71: negative rule #5: expected a mapping, got "not a rule"`,
	}
	const file = "testdata/bad.yaml"
	m, diags := Parse(file, mustRead(t, file))
	assert.Nil(t, m)
	got := make([]string, len(diags))
	for i, d := range diags {
		got[i] = d.String()
	}
	assert.Equal(t, want, got)
	assert.Equal(t, strings.Join(want, "\n"), diags.Error())
}

func TestParseDocument(t *testing.T) {
	t.Parallel()
	const head = "version: 1\nbands: {warm: 25, hot: 50}\nmql_threshold: 50\nbehaviour: [{id: a, event: click, points: 1}]\n"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"empty file", "", []string{
			`f.yaml:1: missing required field "version"`,
			`f.yaml:1: missing required field "bands"`,
			`f.yaml:1: missing required field "mql_threshold"`,
			`f.yaml:1: missing required field "behaviour"`,
		}},
		{"not a mapping", "- 1\n- 2\n", []string{`f.yaml:1: expected a mapping, got a list`}},
		{"invalid YAML", "version: 1\nbehaviour: [\n", []string{`f.yaml:2: invalid YAML: did not find expected node content`}},
		{"tabs", "version: 1\n\tbands: {}\n", []string{`f.yaml:2: invalid YAML: found a tab character that violates indentation`}},
		{"wrong types", "version: one\nbands: [25, 50]\nmql_threshold: \"50\"\nbehaviour: []\nfit: {}\n", []string{
			`f.yaml:1: version: expected a number, got "one"`,
			`f.yaml:2: bands: expected a mapping, got a list`,
			`f.yaml:3: mql_threshold: expected a number, got "50"`,
			`f.yaml:4: behaviour: must list at least one rule`,
			`f.yaml:5: fit: expected a list, got a mapping`,
		}},
		{"bands incomplete", "version: 1\nbands: {warm: 30}\nmql_threshold: -1\nbehaviour: [{id: a, event: click, points: 1}]\n", []string{
			`f.yaml:2: bands: missing required field "hot"`,
			`f.yaml:3: mql_threshold: must be positive, got -1`,
		}},
		{"warm equals hot", "version: 1\nbands:\n  warm: 50\n  hot: 50\nmql_threshold: 50\nbehaviour: [{id: a, event: click, points: 1}]\n", []string{
			`f.yaml:4: bands: hot (50) must be above warm (50)`,
		}},
		{"decay without a kind", head + "decay: {after: 14d}\n", []string{
			`f.yaml:5: decay: set one of "half_life" or "per_week"`,
			`f.yaml:5: decay: after: only applies with per_week`,
		}},
		{"decay after with half-life, bad numbers", head + "decay:\n  half_life: 30d\n  after: -1d\n", []string{
			`f.yaml:7: decay: after: only applies with per_week`,
			`f.yaml:7: decay: after: must not be negative, got -1d`,
		}},
		{"per_week not positive", head + "decay: {per_week: -5, after: 0}\n", []string{
			`f.yaml:5: decay: per_week: must be positive, got -5`,
		}},
		{"duplicate id across kinds", head + "fit: [{id: a, attribute: phone, present: true, points: 3}]\nnegative:\n  - {id: a, event: bounce, points: -1}\n", []string{
			`f.yaml:5: duplicate rule id "a" (first on line 4)`,
			`f.yaml:7: duplicate rule id "a" (first on line 4)`,
		}},
		{"numbers out of range", head + "fit:\n  - {id: b, attribute: x, present: true, points: .nan}\n  - {id: c, attribute: \" \", present: false, points: 1e9}\n", []string{
			`f.yaml:6: fit rule "b": points: expected a number, got ".nan"`,
			`f.yaml:7: fit rule "c": attribute: must not be empty`,
			`f.yaml:7: fit rule "c": points: 1e9 is too large (at most 1000000)`,
		}},
		{"negative zero and missing fields", head + "negative:\n  - id: x\n    event: bounce\n    points: 0\n  - {event: complaint}\n", []string{
			`f.yaml:8: negative rule "x": points: 0 scores nothing`,
			`f.yaml:9: negative rule #2: missing required field "id"`,
			`f.yaml:9: negative rule #2: missing required field "points"`,
		}},
		{"unsupported duration unit", head + "negative: [{id: x, inactive_for: 2mo, points: -1}]\n", []string{
			`f.yaml:5: negative rule "x": inactive_for: invalid duration "2mo": unknown unit "mo" (use s, m, h, d or w)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, diags := Parse("f.yaml", []byte(tt.yaml))
			assert.Nil(t, m)
			var got []string
			for _, d := range diags {
				got = append(got, d.String())
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseValues(t *testing.T) {
	t.Parallel()
	m := mustParse(t, `
version: 1
bands: {warm: 12.5, hot: 40}
mql_threshold: 30.25
hand_raise: [quote_request]
decay: {half_life: 2w}
behaviour:
  - {id: pricing, event: page_view, tag: " Pricing ", points: 15, cap: {points: 30, per: 1d12h}}
fit:
  - {id: no-phone, attribute: phone, present: false, points: -2}
negative:
  - {id: idle, inactive_for: 60d, points: -10}
  - {id: spam, event: complaint, points: -0.5}
`)
	present := false
	want := &Model{
		Version:      1,
		Bands:        Bands{Warm: 12.5, Hot: 40},
		MQLThreshold: 30.25,
		HandRaise:    []string{EventQuoteRequest},
		Decay:        &Decay{HalfLife: 14 * 24 * time.Hour},
		Behaviour: []BehaviourRule{
			{ID: "pricing", Event: EventPageView, Tag: "Pricing", Points: 15, Cap: &Cap{Points: 30, Per: 36 * time.Hour}},
		},
		Fit: []FitRule{{ID: "no-phone", Attribute: "phone", Present: &present, Points: -2}},
		Negative: []NegativeRule{
			{ID: "idle", InactiveFor: 60 * 24 * time.Hour, Points: -10},
			{ID: "spam", Event: EventComplaint, Points: -0.5},
		},
	}
	assert.Equal(t, want, m)
}

func TestModelTravelsAsJSON(t *testing.T) {
	t.Parallel()
	m, err := Load(exampleFile)
	require.NoError(t, err)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	var back Model
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, *m, back)
}

func TestLoad(t *testing.T) {
	t.Parallel()
	_, err := Load("testdata/missing.yaml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "load scoring model: ")

	_, err = Load("testdata/bad.yaml")
	var diags Diagnostics
	require.ErrorAs(t, err, &diags)
	assert.NotEmpty(t, diags)
	assert.True(t, errors.As(err, new(Diagnostics)))
}

// TestSchemaMatchesParser keeps the editor schema and the parser from drifting apart.
func TestSchemaMatchesParser(t *testing.T) {
	t.Parallel()
	type object struct {
		Properties           map[string]json.RawMessage `json:"properties"`
		AdditionalProperties *bool                      `json:"additionalProperties"`
		Required             []string                   `json:"required"`
	}
	var schema struct {
		object
		Defs map[string]object `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(mustRead(t, "../../schemas/scoring.schema.json"), &schema))
	keys := func(m map[string]json.RawMessage) []string { return slices.Sorted(maps.Keys(m)) }
	sorted := func(s []string) []string { return slices.Sorted(slices.Values(s)) }

	objects := map[string]object{"model": schema.object}
	for _, name := range []string{"bands", "decay"} {
		var o object
		require.NoError(t, json.Unmarshal(schema.Properties[name], &o), name)
		objects[name] = o
	}
	for _, name := range []string{"behaviourRule", "cap", "fitRule", "negativeRule"} {
		objects[name] = schema.Defs[name]
	}
	for name, fields := range map[string][]string{
		"model": modelFields, "bands": bandFields, "decay": decayFields, "behaviourRule": behaviourFields,
		"cap": capFields, "fitRule": fitFields, "negativeRule": negativeFields,
	} {
		o := objects[name]
		assert.Equal(t, sorted(fields), keys(o.Properties), name)
		if assert.NotNil(t, o.AdditionalProperties, name) {
			assert.False(t, *o.AdditionalProperties, name)
		}
	}
	assert.Equal(t, sorted([]string{"version", "bands", "mql_threshold", "behaviour"}), sorted(schema.Required))

	var raw struct {
		Defs map[string]json.RawMessage `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(mustRead(t, "../../schemas/scoring.schema.json"), &raw))
	var event struct {
		Enum []string `json:"enum"`
	}
	require.NoError(t, json.Unmarshal(raw.Defs["event"], &event))
	assert.Equal(t, EventTypes(), event.Enum)
	assert.Contains(t, string(raw.Defs["id"]), yamlcheck.IDPattern.String())
}

func TestEventTypes(t *testing.T) {
	t.Parallel()
	assert.Len(t, EventTypes(), 15)
	assert.True(t, ValidEventType(EventBounce))
	assert.False(t, ValidEventType("Bounce"))
	var engagement []string
	for _, e := range EventTypes() {
		if IsEngagement(e) {
			engagement = append(engagement, e)
		}
	}
	assert.Equal(t, []string{
		EventClick, EventPageView, EventContentDownload, EventWebinarRegistration, EventWebinarAttended,
		EventDemoRequest, EventQuoteRequest, EventCallbackRequest, EventFormSubmit, EventReply,
	}, engagement, "opens are not engagement: machines open mail")
}

func FuzzParse(f *testing.F) {
	for _, file := range []string{"testdata/bad.yaml", exampleFile} {
		f.Add(mustRead(f, file))
	}
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("behaviour: &b [{id: a, event: click, points: 1, cap: *b}]\n"))
	f.Add([]byte("version: 1\nbands: {warm: 1, hot: 2}\nmql_threshold: 1\ndecay: {half_life: 1ns}\nbehaviour: [{id: a, event: open, points: 1000000, cap: {points: 0.01, per: 1ns}}]\n"))
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	events := []Event{
		{ID: "1", Type: EventOpen, At: now.Add(-400 * 24 * time.Hour)},
		{ID: "2", Type: EventPageView, Tags: []string{"pricing"}, At: now.Add(-time.Hour)},
		{ID: "3", Type: EventDemoRequest, At: now},
		{ID: "4", Type: EventUnsubscribe, At: time.Time{}},
	}
	lead := Lead{Attributes: map[string]string{"company_size": "1000+", "phone": "1"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, diags := Parse("fuzz.yaml", data)
		if (m == nil) == (len(diags) == 0) {
			t.Fatalf("model %v with %d diagnostics", m != nil, len(diags))
		}
		for _, d := range diags {
			if d.Message == "" {
				t.Fatal("empty diagnostic")
			}
		}
		if m == nil {
			return
		}
		r := m.Score(lead, events, now)
		for _, v := range []float64{r.Total, r.Fit, r.Behaviour, r.Negative, r.Decay} {
			if v != v {
				t.Fatalf("NaN in %+v", r)
			}
		}
		if r.Decay > 0 {
			t.Fatalf("positive decay in %+v", r)
		}
	})
}
