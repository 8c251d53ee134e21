package simulate_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/examples"
	"github.com/tendhq/tend/internal/sequence"
	"github.com/tendhq/tend/internal/simulate"
	"github.com/tendhq/tend/workflows"
)

func production(t *testing.T) *sequence.Catalog {
	t.Helper()
	raw, err := examples.FS.ReadFile("sequences-production.yaml")
	require.NoError(t, err)
	cat, diags := sequence.Parse("sequences-production.yaml", raw, sequence.Options{})
	require.Empty(t, diags)
	return cat
}

type sent struct {
	step string
	at   time.Time
}

func sends(r simulate.Result) []sent {
	var out []sent
	for _, rec := range r.Records {
		if rec.Outcome == "sent" {
			out = append(out, sent{rec.SequenceID + "/" + rec.StepID, rec.At})
		}
	}
	return out
}

// A lead captured on a Friday evening in Berlin gets the analytics series in business hours
// (09:00-16:59 on weekdays), three days and then seven apart; 30 days of silence after enrolment
// start the re-engagement series, and silence to its end sunsets the lead.
func TestProductionCalendarForASilentLead(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	r, err := simulate.Run(production(t), simulate.Lead{Segment: "analytics", Start: time.Date(2026, 11, 27, 18, 0, 0, 0, berlin),
		For: 120 * 24 * time.Hour})
	require.NoError(t, err)
	at := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 9, 0, 0, 0, berlin) }
	want := []sent{
		{"analytics-series/intro", at(2026, 11, 30)},        // Monday 09:00, the window's first minute
		{"analytics-series/deep-dive", at(2026, 12, 3)},     // + 3 days
		{"analytics-series/case-study", at(2026, 12, 10)},   // + 7 days
		{"reengagement/still-interested", at(2026, 12, 28)}, // 30 days after enrolment fall on a Sunday
		{"reengagement/last-call", at(2027, 1, 11)},         // + 14 days
	}
	got := sends(r)
	require.Len(t, got, len(want))
	for i := range want {
		assert.Equal(t, want[i].step, got[i].step)
		assert.True(t, want[i].at.Equal(got[i].at), "%s at %s, want %s", got[i].step, got[i].at.In(berlin), want[i].at)
	}
	assert.Equal(t, workflows.ModeSunset, r.Mode)
}

// A click is engagement: the inactivity clock restarts from it, in the lead's own time zone.
func TestClickDelaysReengagement(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	r, err := simulate.Run(production(t), simulate.Lead{Segment: "analytics", TimeZone: "America/New_York",
		Start: time.Date(2026, 11, 27, 18, 0, 0, 0, ny), Clicks: []string{"intro"}, ClickDelay: time.Hour, For: 90 * 24 * time.Hour})
	require.NoError(t, err)
	got := sends(r)
	require.Len(t, got, 5)
	assert.True(t, time.Date(2026, 11, 30, 9, 0, 0, 0, ny).Equal(got[0].at), "intro in New York business hours, got %s", got[0].at.In(ny))
	// Clicked Monday 10:00; 30 days later is Wednesday 30 December 10:00, inside the window.
	assert.True(t, time.Date(2026, 12, 30, 10, 0, 0, 0, ny).Equal(got[3].at), "re-engagement at %s", got[3].at.In(ny))
}

func TestUnknownSegment(t *testing.T) {
	_, err := simulate.Run(production(t), simulate.Lead{Segment: "nope", Start: time.Now(), For: time.Hour})
	require.ErrorIs(t, err, simulate.ErrNoSegment)
}
