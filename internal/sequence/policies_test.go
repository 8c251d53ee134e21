package sequence

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const policiesHead = `version: 1
default_segment: general
`

const policiesTail = `segments:
  - id: general
    sequence:
      id: general-series
      steps:
        - { id: one, template: general-1, subject: "Hi", wait: 0s }
`

func TestFrequencyCapQuietHoursAndReengagement(t *testing.T) {
	c, diags := Parse("p.yaml", []byte(policiesHead+`frequency_cap: { max: 2, per: 7d }
quiet_hours: { from: "21:00", to: "08:00" }
reengagement:
  after: 30d
  sequence:
    id: reengage
    steps:
      - { id: still-there, template: reengage-1, subject: "Still interested?", wait: 0s }
      - { id: last-call, template: reengage-2, subject: "Should we stop?", wait: 7d }
`+policiesTail), Options{})
	require.Empty(t, diags)
	require.NotNil(t, c.FrequencyCap)
	assert.Equal(t, FrequencyCap{Max: 2, Per: 7 * 24 * time.Hour}, *c.FrequencyCap)
	assert.Equal(t, QuietHours{From: "21:00", To: "08:00"}, *c.QuietHours)
	require.NotNil(t, c.Reengagement)
	assert.Equal(t, 30*24*time.Hour, c.Reengagement.After)
	assert.Len(t, c.Reengagement.Sequence.Steps, 2)
}

func TestBadPolicies(t *testing.T) {
	_, diags := Parse("p.yaml", []byte(policiesHead+`frequency_cap: { max: 0, per: -1d }
quiet_hours: { from: "25:00", to: "25:00" }
reengagement:
  after: soon
`+policiesTail), Options{})
	var got []string
	for _, d := range diags {
		got = append(got, d.String())
	}
	assert.Equal(t, []string{
		`p.yaml:3: frequency_cap: max must be a whole number of at least 1, not "0"`,
		`p.yaml:3: frequency_cap: per: must be positive, got -1d`,
		`p.yaml:4: quiet_hours: from: "25:00" is not a time of day HH:MM`,
		`p.yaml:4: quiet_hours: to: "25:00" is not a time of day HH:MM`,
		`p.yaml:4: quiet_hours: from and to are the same: that would be no hours or all of them`,
		`p.yaml:6: reengagement: missing required field "sequence"`,
		`p.yaml:6: reengagement: after: invalid duration "soon": expected a number`,
	}, got)
}

func TestSegmentInactivityOverride(t *testing.T) {
	c, diags := Parse("p.yaml", []byte(policiesHead+`reengagement:
  after: 30d
  sequence:
    id: reengage
    steps:
      - { id: still-there, template: reengage-1, subject: "Still interested?", wait: 0s }
segments:
  - id: general
    inactive_after: 14d
    sequence:
      id: general-series
      steps:
        - { id: one, template: general-1, subject: "Hi", wait: 0s }
`), Options{})
	require.Empty(t, diags)
	seg, ok := c.Segment("general")
	require.True(t, ok)
	assert.Equal(t, 14*24*time.Hour, seg.InactiveAfter)
	_, diags = Parse("p.yaml", []byte(policiesHead+`segments:
  - id: general
    inactive_after: -1d
    sequence:
      id: general-series
      steps:
        - { id: one, template: general-1, subject: "Hi", wait: 0s }
`), Options{})
	require.Len(t, diags, 1)
	assert.Equal(t, `p.yaml:5: segment "general": inactive_after: must be positive, got -1d`, diags[0].String())
}
