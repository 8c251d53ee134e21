package sequence

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const spreadFile = `version: 1
default_segment: general
send_window: { cron: "* 9-16 * * MON-FRI", time_zone: Europe/Berlin, spread: 2h }
reengagement:
  after: 30d
  sequence:
    id: reengage
    steps:
      - { id: still-there, template: t, subject: s, wait: 0s }
segments:
  - id: general
    sequence:
      id: general-series
      steps: [{ id: one, template: t, subject: s, wait: 0s }]
  - id: ops
    interests: [ops]
    sequence:
      id: ops-series
      send_window: { cron: "* 10-11 * * MON-FRI" }
      steps: [{ id: one, template: t, subject: s, wait: 0s }]
  - id: short
    interests: [short]
    sequence:
      id: short-series
      send_window: { spread: 90m }
      steps: [{ id: one, template: t, subject: s, wait: 0s }]
  - id: off
    interests: [off]
    sequence:
      id: off-series
      send_window: { spread: 0 }
      steps: [{ id: one, template: t, subject: s, wait: 0s }]
`

func TestSpreadIsParsedAndInherited(t *testing.T) {
	t.Parallel()
	cat, diags := Parse("s.yaml", []byte(spreadFile), Options{})
	require.Empty(t, diags)
	assert.Equal(t, Window{Cron: "* 9-16 * * MON-FRI", TimeZone: "Europe/Berlin", Spread: 2 * time.Hour}, cat.Window)
	want := map[string]Window{
		"general-series": cat.Window,
		"reengage":       cat.Window,
		// A sequence's window that leaves spread out keeps the file's.
		"ops-series":   {Cron: "* 10-11 * * MON-FRI", TimeZone: "Europe/Berlin", Spread: 2 * time.Hour},
		"short-series": {Cron: "* 9-16 * * MON-FRI", TimeZone: "Europe/Berlin", Spread: 90 * time.Minute},
		// spread: 0 turns the file's spread off for this sequence.
		"off-series": {Cron: "* 9-16 * * MON-FRI", TimeZone: "Europe/Berlin"},
	}
	for id, w := range want {
		seq, ok := cat.Sequence(id)
		require.True(t, ok, id)
		assert.Equal(t, w, seq.Window, id)
	}
}

func TestBadSpread(t *testing.T) {
	t.Parallel()
	_, diags := Parse("s.yaml", []byte(`version: 1
default_segment: general
send_window: { cron: "* 9-16 * * MON-FRI", spread: 25h }
segments:
  - id: general
    sequence:
      id: general-series
      send_window: { spread: -1h }
      steps: [{ id: one, template: t, subject: s, wait: 0s }]
  - id: ops
    interests: [ops]
    sequence:
      id: ops-series
      send_window:
        spread: soon
      steps: [{ id: one, template: t, subject: s, wait: 0s }]
`), Options{})
	var got []string
	for _, d := range diags {
		got = append(got, d.String())
	}
	assert.Equal(t, []string{
		`s.yaml:3: send_window: spread: must be at most 24h, got 25h`,
		`s.yaml:8: sequence "general-series": send_window: spread: must not be negative, got -1h`,
		`s.yaml:15: sequence "ops-series": send_window: spread: invalid duration "soon": expected a number`,
	}, got)
}

func TestSpreadAtMostADay(t *testing.T) {
	t.Parallel()
	for spread, ok := range map[string]bool{"24h": true, "1d": true, "1d1s": false, "0s": true} {
		_, diags := Parse("s.yaml", []byte(`version: 1
default_segment: general
send_window: { spread: `+spread+` }
segments:
  - id: general
    sequence:
      id: general-series
      steps: [{ id: one, template: t, subject: s, wait: 0s }]
`), Options{})
		assert.Equal(t, ok, len(diags) == 0, "spread %s: %v", spread, diags)
	}
}

func TestSpreadOffset(t *testing.T) {
	t.Parallel()
	w := Window{Cron: "* 9-16 * * MON-FRI", Spread: 2 * time.Hour}
	seen := map[time.Duration]bool{}
	var early, late int
	for i := range 1000 {
		lead := fmt.Sprintf("lead-%d", i)
		d := w.SpreadOffset(lead, "general-series", "two")
		require.GreaterOrEqual(t, d, time.Duration(0), lead)
		require.Less(t, d, w.Spread, lead)
		require.Zero(t, d%time.Second, "%s: whole seconds, got %s", lead, d)
		require.Equal(t, d, w.SpreadOffset(lead, "general-series", "two"), "%s: the same every time", lead)
		seen[d] = true
		if d < time.Hour {
			early++
		} else {
			late++
		}
	}
	// Spread out, not bunched: 1,000 leads over 7,200 slots rarely share one, and both halves fill.
	assert.Greater(t, len(seen), 900)
	assert.InDelta(t, 500, early, 80)
	assert.InDelta(t, 500, late, 80)

	// Another step or sequence gives the lead another slot, so no lead is always sent last.
	differs := 0
	for i := range 100 {
		lead := fmt.Sprintf("lead-%d", i)
		if w.SpreadOffset(lead, "general-series", "two") != w.SpreadOffset(lead, "general-series", "three") {
			differs++
		}
	}
	assert.Greater(t, differs, 90)

	assert.Zero(t, Window{}.SpreadOffset("lead-1", "s", "one"), "no spread: the opening itself")
	assert.Zero(t, Window{Spread: 900 * time.Millisecond}.SpreadOffset("lead-1", "s", "one"), "under a second rounds to the opening")
}

func TestWindowWithoutSpreadKeepsItsJSON(t *testing.T) {
	t.Parallel()
	// Lead states and plans saved before spread existed carry this JSON; without a spread a window
	// must still say exactly that.
	b, err := json.Marshal(Window{Cron: "* 9-16 * * MON-FRI", TimeZone: "Europe/Berlin"})
	require.NoError(t, err)
	assert.JSONEq(t, `{"cron":"* 9-16 * * MON-FRI","time_zone":"Europe/Berlin"}`, string(b))

	var w Window
	require.NoError(t, json.Unmarshal([]byte(`{"cron":"* * * * *","time_zone":"UTC","spread":7200000000000}`), &w))
	assert.Equal(t, 2*time.Hour, w.Spread)
}
