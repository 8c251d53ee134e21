package sales

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// team has three reps on analytics, one away rep covering everything, and one rep on its own in
// automation; rep-a is the fallback.
const team = `version: 1
calendars:
  - { id: office, time_zone: Europe/Berlin, hours: [{ days: MON-FRI, from: "09:00", to: "18:00" }] }
managers:
  - { id: mgr, name: M, email: m@acme.test }
reps:
  - { id: rep-a, name: A, email: a@acme.test, territories: [analytics, general], calendar: office, manager: mgr }
  - { id: rep-b, name: B, email: b@acme.test, territories: [analytics, security], calendar: office, time_zone: America/New_York }
  - { id: rep-c, name: C, email: c@acme.test, territories: ["*"], away: true }
  - { id: rep-d, name: D, email: d@acme.test, territories: [analytics] }
  - { id: rep-e, name: E, email: e@acme.test, territories: [automation] }
assignment: { fallback: rep-a }
policies:
  - { id: demo, hand_raise: [demo_request], response: 30m }
  - { id: hand-raise, hand_raise: [quote_request, demo_request_dup, callback_request], response: 1h }
  - { id: mql, response: 2h }
`

func ids(reps []Rep) []string {
	out := make([]string, len(reps))
	for i, r := range reps {
		out[i] = r.ID
	}
	return out
}

func TestLookups(t *testing.T) {
	t.Parallel()
	tm := mustParse(t, team)
	r, ok := tm.Rep("rep-b")
	assert.True(t, ok)
	assert.Equal(t, "B", r.Name)
	_, ok = tm.Rep("rep-z")
	assert.False(t, ok)
	m, ok := tm.Manager("mgr")
	assert.True(t, ok)
	assert.Equal(t, "m@acme.test", m.Email)
	_, ok = tm.Manager("rep-a")
	assert.False(t, ok)
}

func TestEligible(t *testing.T) {
	t.Parallel()
	tm := mustParse(t, team)
	assert.Equal(t, []string{"rep-a", "rep-b", "rep-d"}, ids(tm.Eligible("analytics")), "file order, away rep skipped")
	assert.Equal(t, []string{"rep-b"}, ids(tm.Eligible("security")))
	assert.Equal(t, []string{"rep-e"}, ids(tm.Eligible("automation")))
	assert.Empty(t, tm.Eligible("billing"), `the only "*" rep is away`)
}

func TestPickRoundRobin(t *testing.T) {
	t.Parallel()
	tm := mustParse(t, team)
	counts := map[string]int{}
	for c := range int64(300) {
		r, key := tm.Pick("analytics", c)
		assert.Equal(t, "analytics", key)
		assert.Contains(t, r.Territories, "analytics", "territories respected")
		counts[r.ID]++
	}
	assert.Equal(t, map[string]int{"rep-a": 100, "rep-b": 100, "rep-d": 100}, counts, "fair, and the away rep gets none")

	// Consecutive counters never give the same rep twice in a row.
	prev, _ := tm.Pick("analytics", 0)
	for c := int64(1); c < 10; c++ {
		r, _ := tm.Pick("analytics", c)
		assert.NotEqual(t, prev.ID, r.ID)
		prev = r
	}

	r, key := tm.Pick("security", 7)
	assert.Equal(t, "rep-b", r.ID)
	assert.Equal(t, "security", key)

	r, _ = tm.Pick("analytics", -1)
	assert.Equal(t, "rep-d", r.ID, "a negative counter still wraps")

	r, key = tm.Pick("billing", 5)
	assert.Equal(t, "rep-a", r.ID, "nobody covers billing: the fallback rep")
	assert.Equal(t, FallbackKey, key)
	assert.Equal(t, FallbackKey, tm.TerritoryKey("billing"))
	assert.Equal(t, "analytics", tm.TerritoryKey("analytics"))

	// When the away rep comes back, it covers billing.
	tm.Reps[2].Away = false
	r, key = tm.Pick("billing", 5)
	assert.Equal(t, "rep-c", r.ID)
	assert.Equal(t, "billing", key)
}

func TestNext(t *testing.T) {
	t.Parallel()
	tm := mustParse(t, team)
	next := func(segment, current string, counter int64) string {
		r, ok := tm.Next(segment, current, counter)
		if !ok {
			return ""
		}
		return r.ID
	}
	assert.Equal(t, "rep-b", next("analytics", "rep-a", 0))
	assert.Equal(t, "rep-d", next("analytics", "rep-b", 0))
	assert.Equal(t, "rep-a", next("analytics", "rep-d", 0), "wraps")
	assert.Equal(t, "rep-b", next("analytics", "rep-c", 1), "an away rep's lead goes to the counter's rep")
	assert.Equal(t, "rep-a", next("security", "rep-b", 0), "alone in the territory: the fallback takes over")
	assert.Empty(t, next("general", "rep-a", 0), "alone and the fallback: nobody else")
	assert.Equal(t, "rep-a", next("automation", "rep-e", 0))
	assert.Equal(t, "rep-a", next("billing", "rep-c", 0), "nobody eligible: the fallback")
	assert.Empty(t, next("billing", "rep-a", 0))

	for _, segment := range []string{"analytics", "security", "general", "automation", "billing"} {
		for _, r := range tm.Reps {
			for c := range int64(4) {
				got, ok := tm.Next(segment, r.ID, c)
				if ok {
					assert.NotEqual(t, r.ID, got.ID, "%s from %s", segment, r.ID)
					assert.False(t, got.Away, "%s from %s", segment, r.ID)
				}
			}
		}
	}
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	tm := mustParse(t, team)
	assert.Equal(t, "demo", tm.Policy("demo_request").ID)
	assert.Equal(t, 30*time.Minute, tm.Policy("demo_request").Response)
	assert.Equal(t, "hand-raise", tm.Policy("quote_request").ID)
	assert.Equal(t, "hand-raise", tm.Policy("callback_request").ID)
	assert.Equal(t, "mql", tm.Policy("").ID, "a handoff by score")
	assert.Equal(t, "mql", tm.Policy("click").ID, "not a hand-raise of any policy")
	assert.Equal(t, Policy{}, (&Team{}).Policy("demo_request"))
}

func TestCalendarOf(t *testing.T) {
	t.Parallel()
	tm := mustParse(t, team)
	a, _ := tm.Rep("rep-a")
	cal, loc, err := tm.CalendarOf(a)
	require.NoError(t, err)
	assert.Equal(t, "office", cal.ID)
	assert.Equal(t, "Europe/Berlin", loc.String(), "the calendar's zone")

	b, _ := tm.Rep("rep-b")
	cal, loc, err = tm.CalendarOf(b)
	require.NoError(t, err)
	assert.Equal(t, "office", cal.ID)
	assert.Equal(t, "America/New_York", loc.String(), "the rep's zone wins")
	// 09:00 in New York is 15:00 in Berlin: the same handoff is due later for rep-b.
	start := time.Date(2026, 6, 8, 13, 0, 0, 0, time.UTC) // Monday 15:00 Berlin, 09:00 New York
	assert.True(t, time.Date(2026, 6, 8, 15, 0, 0, 0, time.UTC).Equal(cal.Add(start, 2*time.Hour, loc)))

	d, _ := tm.Rep("rep-d")
	cal, loc, err = tm.CalendarOf(d)
	require.NoError(t, err)
	assert.Empty(t, cal.Hours)
	assert.Equal(t, time.UTC, loc)

	_, _, err = tm.CalendarOf(Rep{ID: "rep-x", Calendar: "nowhere"})
	assert.Error(t, err)
	_, _, err = tm.CalendarOf(Rep{ID: "rep-x", TimeZone: "Local"})
	assert.Error(t, err)
}
