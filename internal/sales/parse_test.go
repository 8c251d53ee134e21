package sales

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

	"github.com/tendhq/tend/internal/score"
	"github.com/tendhq/tend/internal/yamlcheck"
)

const exampleFile = "../../examples/sales-production.yaml"

// exampleOptions are the segments of examples/sequences.yaml and every event type tend knows.
var exampleOptions = Options{
	Segments:   []string{"analytics", "automation", "security", "general"},
	EventTypes: score.EventTypes(),
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustParse parses a team written inline in a test.
func mustParse(t testing.TB, src string) *Team {
	t.Helper()
	team, diags := Parse("test.yaml", []byte(src), Options{})
	require.Empty(t, diags)
	return team
}

func TestExample(t *testing.T) {
	t.Parallel()
	team, err := Load(exampleFile, exampleOptions)
	require.NoError(t, err)

	require.Len(t, team.Calendars, 1)
	cal := team.Calendars[0]
	assert.Equal(t, "Europe/Berlin", cal.TimeZone)
	assert.Equal(t, []Hours{{Days: "MON-FRI", From: "09:00", To: "18:00"}}, cal.Hours)
	assert.Contains(t, cal.Holidays, "2026-12-25")

	assert.Equal(t, []Manager{{ID: "mgr-eva", Name: "Eva Schmidt", Email: "eva@acme.test"}}, team.Managers)
	require.Len(t, team.Reps, 3)
	assert.Equal(t, Rep{
		ID: "rep-jonas", Name: "Jonas Weber", Email: "jonas@acme.test", TimeZone: "Europe/Berlin",
		Calendar: "berlin-office", Manager: "mgr-eva", Territories: []string{"analytics", "general"},
	}, team.Reps[0])
	leon, ok := team.Rep("rep-leon")
	require.True(t, ok)
	assert.True(t, leon.Away)
	assert.Equal(t, []string{"*"}, leon.Territories)

	assert.Equal(t, Assignment{Strategy: StrategyRoundRobin, Fallback: "rep-jonas"}, team.Assignment)
	assert.Equal(t, []Policy{
		{ID: "hand-raise", HandRaise: []string{"demo_request", "quote_request", "callback_request"}, Response: time.Hour},
		{ID: "mql", Response: 2 * time.Hour},
	}, team.Policies)
	assert.Equal(t, Escalation{RemindBefore: 30 * time.Minute, ReassignAfter: 2}, team.Escalation)
	assert.Equal(t, Recycle{NotReadySegment: "general", CoolOff: 14 * 24 * time.Hour}, team.Recycle)

	// Every rep's calendar resolves, in the rep's zone or the calendar's.
	for _, r := range team.Reps {
		cal, loc, err := team.CalendarOf(r)
		require.NoError(t, err, r.ID)
		assert.Equal(t, "berlin-office", cal.ID)
		assert.Equal(t, "Europe/Berlin", loc.String())
	}
}

func TestBadFile(t *testing.T) {
	t.Parallel()
	const idRule = `use up to 63 lowercase letters, digits, "-" and "_", starting with a letter or digit`
	const segments = "(segments: analytics, automation, security, general)"
	want := []string{
		`testdata/bad.yaml:2: unsupported version 2 (supported: 1)`,
		`testdata/bad.yaml:5: calendar "office": time_zone: unknown time zone "Mars/Olympus"`,
		`testdata/bad.yaml:7: calendar "office": hours #1: days: invalid days "MON-FRY": use MON, TUE, WED, THU, FRI, SAT, SUN, ranges such as MON-FRI and lists such as MON,WED,FRI`,
		`testdata/bad.yaml:7: calendar "office": hours #1: from: invalid time "9:00": use HH:MM, such as 09:00`,
		`testdata/bad.yaml:8: calendar "office": hours #2: to (10:00) must be after from (14:00)`,
		`testdata/bad.yaml:9: calendar "office": hours #3: unknown field "until" (valid: days, from, to)`,
		`testdata/bad.yaml:9: calendar "office": hours #3: missing required field "to"`,
		`testdata/bad.yaml:10: calendar "office": holidays: invalid date "2026-13-01": use YYYY-MM-DD`,
		`testdata/bad.yaml:10: calendar "office": holidays: "2026-12-24" is listed twice`,
		`testdata/bad.yaml:11: calendar "office": missing required field "time_zone"`,
		`testdata/bad.yaml:11: duplicate calendar id "office" (first on line 4)`,
		`testdata/bad.yaml:12: calendar "office": hours: must list at least one span of hours`,
		`testdata/bad.yaml:14: manager "mgr-eva": email: "Eva <eva@acme.test>": give the bare address, without a display name or angle brackets`,
		`testdata/bad.yaml:15: manager #2: invalid manager id "Mgr Bob": ` + idRule,
		`testdata/bad.yaml:15: manager #2: email: invalid address "bob-at-acme"`,
		`testdata/bad.yaml:17: rep "rep-jonas": territories: unknown segment "sales" ` + segments,
		`testdata/bad.yaml:17: rep "rep-jonas": calendar: no calendar has id "nowhere" (ids: office)`,
		`testdata/bad.yaml:17: rep "rep-jonas": manager: no manager has id "mgr-zed" (ids: mgr-eva)`,
		`testdata/bad.yaml:18: rep "rep-mia": territories: "security" is listed twice`,
		`testdata/bad.yaml:18: rep "rep-mia": away: expected true or false, got "maybe"`,
		`testdata/bad.yaml:19: rep "rep-jonas": unknown field "phone" (valid: id, name, email, time_zone, calendar, territories, away, manager)`,
		`testdata/bad.yaml:19: duplicate rep id "rep-jonas" (first on line 17)`,
		`testdata/bad.yaml:19: rep "rep-jonas": name: must not be empty`,
		`testdata/bad.yaml:19: rep "rep-jonas": territories: must list at least one segment, or "*" for every segment`,
		`testdata/bad.yaml:20: rep "rep-leon": missing required field "name"`,
		`testdata/bad.yaml:20: rep "rep-leon": time_zone: unknown time zone "Europe/Berln"`,
		`testdata/bad.yaml:22: assignment: strategy: unknown strategy "least_busy" (valid: round_robin)`,
		`testdata/bad.yaml:23: assignment: fallback: rep "rep-leon" is away; the fallback must be an active rep`,
		`testdata/bad.yaml:26: policy "hand-raise": hand_raise: unknown event type "meeting_request" (valid: ` + strings.Join(score.EventTypes(), ", ") + `)`,
		`testdata/bad.yaml:26: policy "hand-raise": hand_raise: "demo_request" is listed twice`,
		`testdata/bad.yaml:26: policy "hand-raise": response: must be positive, got 0m`,
		`testdata/bad.yaml:27: policy "quote": hand_raise: "demo_request" is already covered by policy "hand-raise", which comes first`,
		`testdata/bad.yaml:28: policy "catch-all": response: invalid duration "3 hours": unknown unit " hours" (use s, m, h, d or w)`,
		`testdata/bad.yaml:28: policy "catch-all": only one policy may leave out hand_raise; policy "mql" on line 25 already does`,
		`testdata/bad.yaml:29: policy "also-catch-all": hand_raise: must list at least one event type (leave it out for the default policy)`,
		`testdata/bad.yaml:31: escalation: remind_before: 90m must be less than the response time of policy "quote" (1h)`,
		`testdata/bad.yaml:32: escalation: reassign_after: must be at least 1, got 0`,
		`testdata/bad.yaml:33: escalation: unknown field "notify" (valid: remind_before, reassign_after)`,
		`testdata/bad.yaml:35: recycle: not_ready_segment: unknown segment "gardening" ` + segments,
		`testdata/bad.yaml:36: unknown field "colour" (valid: version, calendars, managers, reps, assignment, policies, escalation, recycle)`,
	}
	const file = "testdata/bad.yaml"
	team, diags := Parse(file, mustRead(t, file), exampleOptions)
	assert.Nil(t, team)
	got := make([]string, len(diags))
	for i, d := range diags {
		got[i] = d.String()
	}
	assert.Equal(t, want, got)
}

// valid is a small valid team; the cases below break one thing in it at a time.
const valid = `version: 1
reps:
  - { id: rep-a, name: A, email: a@acme.test, territories: [analytics] }
assignment: { fallback: rep-a }
policies:
  - { id: demo, hand_raise: [demo_request], response: 1h }
  - { id: mql, response: 2h }
`

func TestParseMistakes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"empty file", "", []string{
			`x.yaml:1: missing required field "version"`,
			`x.yaml:1: missing required field "reps"`,
			`x.yaml:1: missing required field "assignment"`,
			`x.yaml:1: missing required field "policies"`,
		}},
		{"invalid YAML", "version: [1\n", []string{`x.yaml:1: invalid YAML: did not find expected ',' or ']'`}},
		{"not a mapping", "- 1\n", []string{`x.yaml:1: expected a mapping, got a list`}},
		{"no reps", strings.Replace(valid, "reps:\n  - { id: rep-a, name: A, email: a@acme.test, territories: [analytics] }", "reps: []", 1), []string{
			`x.yaml:2: reps: must list at least one rep`,
			`x.yaml:3: assignment: fallback: no rep has id "rep-a"`,
		}},
		{"unknown fallback", strings.Replace(valid, "fallback: rep-a", "fallback: rep-b", 1), []string{
			`x.yaml:4: assignment: fallback: no rep has id "rep-b" (ids: rep-a)`,
		}},
		{"no fallback", strings.Replace(valid, "{ fallback: rep-a }", "{ strategy: round_robin }", 1), []string{
			`x.yaml:4: assignment: missing required field "fallback"`,
		}},
		{"no policies", valid[:strings.Index(valid, "policies:")] + "policies: []\n", []string{
			`x.yaml:5: policies: must list at least one policy`,
		}},
		{"no default policy", strings.Replace(valid, "{ id: mql, response: 2h }", "{ id: mql, hand_raise: [quote_request], response: 2h }", 1), []string{
			`x.yaml:6: policies: one policy must leave out hand_raise, to cover every other handoff`,
		}},
		{"default policy not last", strings.Replace(valid,
			"  - { id: demo, hand_raise: [demo_request], response: 1h }\n  - { id: mql, response: 2h }\n",
			"  - { id: mql, response: 2h }\n  - { id: demo, hand_raise: [demo_request], response: 1h }\n", 1), []string{
			`x.yaml:6: policy "mql": the default policy (without hand_raise) must come last, since the first policy that matches wins`,
		}},
		{"duplicate policy id", strings.Replace(valid, "id: demo", "id: mql", 1), []string{
			`x.yaml:7: duplicate policy id "mql" (first on line 6)`,
		}},
		{"ids are unique per kind only", valid + "managers: [{ id: rep-a, name: A, email: a@acme.test }]\n", nil},
		{"negative reminder", valid + "escalation: { remind_before: -5m, reassign_after: two }\n", []string{
			`x.yaml:8: escalation: remind_before: must not be negative, got -5m`,
			`x.yaml:8: escalation: reassign_after: expected a whole number, got "two"`,
		}},
		{"reminder equal to a response", valid + "escalation: { remind_before: 1h }\n", []string{
			`x.yaml:8: escalation: remind_before: 1h must be less than the response time of policy "demo" (1h)`,
		}},
		{"calendar hours", valid + `calendars:
  - id: office
    time_zone: Local
    hours:
      - { days: "sat-sun", from: "10:00", to: "24:01" }
      - { days: "MON,,FRI", from: "10:00", to: "24:00" }
    holidays: [2026-02-30, 20261224]
`, []string{
			`x.yaml:10: calendar "office": time_zone: unknown time zone "Local": name an IANA zone such as Europe/Berlin`,
			`x.yaml:12: calendar "office": hours #1: days: invalid days "sat-sun": use MON, TUE, WED, THU, FRI, SAT, SUN, ranges such as MON-FRI and lists such as MON,WED,FRI`,
			`x.yaml:12: calendar "office": hours #1: to: invalid time "24:01": use HH:MM, such as 09:00`,
			`x.yaml:13: calendar "office": hours #2: days: invalid days "MON,,FRI": use MON, TUE, WED, THU, FRI, SAT, SUN, ranges such as MON-FRI and lists such as MON,WED,FRI`,
			`x.yaml:14: calendar "office": holidays: invalid date "2026-02-30": use YYYY-MM-DD`,
			`x.yaml:14: calendar "office": holidays: invalid date "20261224": use YYYY-MM-DD`,
		}},
		{"wrong shapes", `version: "1"
reps: { id: rep-a }
assignment: rep-a
policies:
  - demo
  - { id: mql, hand_raise: demo_request, response: [2h] }
escalation: 3
recycle: { not_ready_segment: [a] }
`, []string{
			`x.yaml:1: version: expected a number, got "1"`,
			`x.yaml:2: reps: expected a list, got a mapping`,
			`x.yaml:3: assignment: expected a mapping, got "rep-a"`,
			`x.yaml:5: policy #1: expected a mapping, got "demo"`,
			`x.yaml:5: policies: one policy must leave out hand_raise, to cover every other handoff`,
			`x.yaml:6: policy "mql": hand_raise: expected a list, got "demo_request"`,
			`x.yaml:6: policy "mql": response: expected a string, got a list`,
			`x.yaml:7: escalation: expected a mapping, got "3"`,
			`x.yaml:8: recycle: not_ready_segment: expected a string, got a list`,
		}},
		{"segments unchecked without options", valid + "recycle: { not_ready_segment: Gardening }\n", []string{
			`x.yaml:8: recycle: not_ready_segment: invalid segment id "Gardening"`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			team, diags := Parse("x.yaml", []byte(tc.src), Options{})
			got := make([]string, len(diags))
			for i, d := range diags {
				got[i] = d.String()
			}
			if len(tc.want) == 0 {
				assert.Empty(t, got)
				assert.NotNil(t, team)
				return
			}
			assert.Equal(t, tc.want, got)
			assert.Nil(t, team)
		})
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	team := mustParse(t, valid)
	assert.Equal(t, StrategyRoundRobin, team.Assignment.Strategy)
	assert.Equal(t, Escalation{ReassignAfter: DefaultReassignAfter}, team.Escalation)
	assert.Empty(t, team.Recycle.NotReadySegment)

	// A rep without a calendar counts every hour, in UTC unless it has a zone.
	cal, loc, err := team.CalendarOf(team.Reps[0])
	require.NoError(t, err)
	assert.Equal(t, time.UTC, loc)
	start := time.Date(2026, 6, 6, 23, 0, 0, 0, time.UTC) // a Saturday night
	assert.Equal(t, start.Add(2*time.Hour), cal.Add(start, 2*time.Hour, loc))
}

func TestLoad(t *testing.T) {
	t.Parallel()
	_, err := Load("testdata/missing.yaml", Options{})
	require.ErrorIs(t, err, os.ErrNotExist)

	_, err = Load("testdata/bad.yaml", exampleOptions)
	var diags Diagnostics
	require.True(t, errors.As(err, &diags))
	assert.NotEmpty(t, diags)
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
	raw := mustRead(t, "../../schemas/sales.schema.json")
	require.NoError(t, json.Unmarshal(raw, &schema))
	keys := func(m map[string]json.RawMessage) []string { return slices.Sorted(maps.Keys(m)) }
	sorted := func(s []string) []string { return slices.Sorted(slices.Values(s)) }

	objects := map[string]object{"team": schema.object}
	for _, name := range []string{"assignment", "escalation", "recycle"} {
		var o object
		require.NoError(t, json.Unmarshal(schema.Properties[name], &o), name)
		objects[name] = o
	}
	for _, name := range []string{"calendar", "hours", "manager", "rep", "policy"} {
		objects[name] = schema.Defs[name]
	}
	for name, fields := range map[string][]string{
		"team": teamFields, "assignment": assignmentFields, "escalation": escalationFields,
		"recycle": recycleFields, "calendar": calendarFields, "hours": hoursFields,
		"manager": managerFields, "rep": repFields, "policy": policyFields,
	} {
		o := objects[name]
		assert.Equal(t, sorted(fields), keys(o.Properties), name)
		if assert.NotNil(t, o.AdditionalProperties, name) {
			assert.False(t, *o.AdditionalProperties, name)
		}
	}
	assert.Equal(t, sorted([]string{"version", "reps", "assignment", "policies"}), sorted(schema.Required))
	assert.Equal(t, sorted([]string{"id", "name", "email", "territories"}), sorted(objects["rep"].Required))
	assert.Equal(t, sorted([]string{"id", "response"}), sorted(objects["policy"].Required))
	assert.Contains(t, string(raw), strings.ReplaceAll(yamlcheck.IDPattern.String(), `\`, `\\`))
}

func FuzzParse(f *testing.F) {
	for _, file := range []string{"testdata/bad.yaml", exampleFile} {
		f.Add(mustRead(f, file))
	}
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		team, diags := Parse("fuzz.yaml", data, exampleOptions)
		if (team == nil) == (len(diags) == 0) {
			t.Fatalf("team %v with %d diagnostics", team, len(diags))
		}
	})
}
