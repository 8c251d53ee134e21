package simulate_test

import (
	"fmt"
	"strings"
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
// start the re-engagement series, and silence to its end sunsets the lead. The window's spread
// (2h) sends what waited for the window at the lead's own offset after the opening.
func TestProductionCalendarForASilentLead(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	cat := production(t)
	r, err := simulate.Run(cat, simulate.Lead{Segment: "analytics", Start: time.Date(2026, 11, 27, 18, 0, 0, 0, berlin),
		For: 120 * 24 * time.Hour})
	require.NoError(t, err)
	at := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 9, 0, 0, 0, berlin) }
	intro := cat.Window.SpreadOffset(simulate.DefaultLeadID, "analytics-series", "intro")
	still := cat.Window.SpreadOffset(simulate.DefaultLeadID, "reengagement", "still-interested")
	want := []sent{
		{"analytics-series/intro", at(2026, 11, 30).Add(intro)},        // Monday, the window's first 2h
		{"analytics-series/deep-dive", at(2026, 12, 3).Add(intro)},     // + 3 days, inside the window: on time
		{"analytics-series/case-study", at(2026, 12, 10).Add(intro)},   // + 7 days
		{"reengagement/still-interested", at(2026, 12, 28).Add(still)}, // 30 days after enrolment fall on a Sunday
		{"reengagement/last-call", at(2027, 1, 11).Add(still)},         // + 14 days
	}
	got := sends(r)
	require.Len(t, got, len(want))
	for i := range want {
		assert.Equal(t, want[i].step, got[i].step)
		assert.True(t, want[i].at.Equal(got[i].at), "%s at %s, want %s", got[i].step, got[i].at.In(berlin), want[i].at)
	}
	assert.Equal(t, workflows.ModeSunset, r.Mode)
}

// The spread's slot is the lead's own: two leads captured at the same moment get the weekend's
// email at different times of Monday's first two hours.
func TestSpreadDependsOnTheLead(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	monday := time.Date(2026, 11, 30, 9, 0, 0, 0, berlin)
	var at []time.Time
	for _, id := range []string{"3f1c0a3e-0000-4000-8000-000000000001", "3f1c0a3e-0000-4000-8000-000000000002"} {
		r, err := simulate.Run(production(t), simulate.Lead{ID: id, Segment: "analytics", Start: time.Date(2026, 11, 27, 18, 0, 0, 0, berlin),
			For: 7 * 24 * time.Hour})
		require.NoError(t, err)
		got := sends(r)
		require.NotEmpty(t, got, id)
		assert.False(t, got[0].at.Before(monday), "%s: intro at %s, before the window", id, got[0].at.In(berlin))
		assert.True(t, got[0].at.Before(monday.Add(2*time.Hour)), "%s: intro at %s, after the spread", id, got[0].at.In(berlin))
		at = append(at, got[0].at)
	}
	assert.False(t, at[0].Equal(at[1]), "both leads at %s", at[0].In(berlin))
}

// A click is engagement: the inactivity clock restarts from it, in the lead's own time zone.
func TestClickDelaysReengagement(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	cat := production(t)
	r, err := simulate.Run(cat, simulate.Lead{Segment: "analytics", TimeZone: "America/New_York",
		Start: time.Date(2026, 11, 27, 18, 0, 0, 0, ny), Clicks: []string{"intro"}, ClickDelay: time.Hour, For: 90 * 24 * time.Hour})
	require.NoError(t, err)
	got := sends(r)
	require.Len(t, got, 5)
	intro := time.Date(2026, 11, 30, 9, 0, 0, 0, ny).Add(cat.Window.SpreadOffset(simulate.DefaultLeadID, "analytics-series", "intro"))
	assert.True(t, intro.Equal(got[0].at), "intro in New York business hours, got %s", got[0].at.In(ny))
	// Clicked an hour later; 30 days after that is Wednesday 30 December, inside the window: on time.
	assert.True(t, intro.Add(time.Hour).AddDate(0, 0, 30).Equal(got[3].at), "re-engagement at %s", got[3].at.In(ny))
}

func TestUnknownSegment(t *testing.T) {
	_, err := simulate.Run(production(t), simulate.Lead{Segment: "nope", Start: time.Now(), For: time.Hour})
	require.ErrorIs(t, err, simulate.ErrNoSegment)
}

// abCatalog is the production example with an A/B test on analytics-series/intro: variant a
// changes only the subject, variant b the template and the subject.
func abCatalog(t *testing.T) *sequence.Catalog {
	t.Helper()
	cat := production(t)
	seg, ok := cat.Segment("analytics")
	require.True(t, ok)
	for i := range cat.Segments {
		if cat.Segments[i].ID == seg.ID {
			intro := &cat.Segments[i].Sequence.Steps[0]
			require.Equal(t, "intro", intro.ID)
			intro.Variants = []sequence.Variant{
				{ID: "a", Subject: "Subject A", Weight: 1},
				{ID: "b", Template: "analytics-intro-b", Subject: "Subject B", Weight: 1},
			}
		}
	}
	return cat
}

func record(t *testing.T, r simulate.Result, step string) simulate.Record {
	t.Helper()
	for _, rec := range r.Records {
		if rec.SequenceID+"/"+rec.StepID == step {
			return rec
		}
	}
	require.Failf(t, "no record", "of %s in %v", step, r.Records)
	return simulate.Record{}
}

// A chosen variant is the one the simulated lead receives, whatever its id gives it; without a
// choice the lead gets the variant production would give it. The catalog is not changed.
func TestVariantChoice(t *testing.T) {
	cat := abCatalog(t)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	start := time.Date(2026, 11, 27, 18, 0, 0, 0, berlin)
	seg, _ := cat.Segment("analytics")
	own := seg.Sequence.Steps[0].VariantFor(simulate.DefaultLeadID, "analytics-series").ID
	other := map[string]string{"a": "b", "b": "a"}[own]

	r, err := simulate.Run(cat, simulate.Lead{Segment: "analytics", Start: start, For: 30 * 24 * time.Hour})
	require.NoError(t, err)
	assert.Equal(t, own, record(t, r, "analytics-series/intro").Variant, "the lead's own variant")
	assert.Equal(t, "", record(t, r, "analytics-series/case-study").Variant, "a step without variants")
	assert.Equal(t, seg.Sequence.Steps[2].Subject, record(t, r, "analytics-series/case-study").Subject)

	// The step's id alone names it only when one sequence has it (intro is in three).
	chosen, err := simulate.Run(cat, simulate.Lead{Segment: "analytics", Start: start, For: 30 * 24 * time.Hour,
		Variants: []simulate.Choice{{Step: "analytics-series/intro", Variant: other}}})
	require.NoError(t, err)
	intro := record(t, chosen, "analytics-series/intro")
	assert.Equal(t, "sent", intro.Outcome)
	assert.Equal(t, other, intro.Variant)
	assert.Equal(t, "Subject "+strings.ToUpper(other), intro.Subject, "the variant's subject is the one sent")
	if other == "b" {
		assert.Equal(t, "analytics-intro-b", intro.Template)
	} else {
		assert.Equal(t, seg.Sequence.Steps[0].Template, intro.Template, "a subject-only variant keeps the step's template")
	}
	assert.Equal(t, sends(r), sends(chosen), "the calendar is otherwise the same")
	seg, _ = cat.Segment("analytics")
	assert.Len(t, seg.Sequence.Steps[0].Variants, 2, "the caller's catalog keeps its variants")
}

// A choice that names no step, an ambiguous step, a step without variants or a variant the step
// does not have is an error naming it, and nothing is simulated.
func TestVariantChoiceErrors(t *testing.T) {
	cat := abCatalog(t)
	for _, c := range []struct {
		choice simulate.Choice
		msg    string
	}{
		{simulate.Choice{Step: "outro", Variant: "a"}, `no sequence has a step "outro"`},
		{simulate.Choice{Step: "nurture/intro", Variant: "a"}, `no step "intro" in a sequence "nurture"`},
		{simulate.Choice{Step: "intro", Variant: "a"}, `step "intro" is in analytics-series/intro and automation-series/intro and security-series/intro; name one as SEQUENCE/STEP`},
		{simulate.Choice{Step: "welcome", Variant: "a"}, "step general-series/welcome has no variants"},
		{simulate.Choice{Step: "analytics-series/intro", Variant: "c"}, `step analytics-series/intro has no variant "c" (it has a, b)`},
	} {
		_, err := simulate.Run(cat, simulate.Lead{Segment: "analytics", Start: time.Now(), For: time.Hour, Variants: []simulate.Choice{c.choice}})
		require.ErrorIs(t, err, simulate.ErrVariantChoice, "%+v", c.choice)
		assert.Contains(t, err.Error(), c.msg)
	}
	_, err := simulate.Run(cat, simulate.Lead{Segment: "analytics", Start: time.Now(), For: time.Hour, Variants: []simulate.Choice{
		{Step: "analytics-series/intro", Variant: "a"}, {Step: "analytics-series/intro", Variant: "b"}}})
	require.ErrorContains(t, err, `step analytics-series/intro is already given variant "a"`)
}

// A held-out lead walks its sequence's calendar with nothing mailed, whether it is put in the
// holdout or its id falls there; clicks it was to make never happen.
func TestHoldout(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	start := time.Date(2026, 11, 27, 18, 0, 0, 0, berlin)
	base, err := simulate.Run(production(t), simulate.Lead{Segment: "analytics", Start: start, For: 20 * 24 * time.Hour})
	require.NoError(t, err)
	require.Len(t, sends(base), 3)
	assert.Empty(t, base.HeldOut)

	forced, err := simulate.Run(production(t), simulate.Lead{Segment: "analytics", Start: start, For: 20 * 24 * time.Hour,
		HeldOut: true, Clicks: []string{"intro"}, ClickDelay: time.Hour})
	require.NoError(t, err)
	assert.Equal(t, []string{"analytics-series"}, forced.HeldOut)
	assert.Empty(t, sends(forced), "nothing is mailed")
	require.Len(t, forced.Records, len(base.Records))
	for i, rec := range forced.Records {
		assert.Equal(t, simulate.OutcomeHeldOut, rec.Outcome, rec.StepID)
		assert.True(t, base.Records[i].At.Equal(rec.At), "%s falls due when it would be sent", rec.StepID)
	}

	// With a 50% holdout, some lead ids fall in it and others do not.
	cat := production(t)
	for i := range cat.Segments {
		if cat.Segments[i].ID == "analytics" {
			cat.Segments[i].Sequence.Holdout = 0.5
		}
	}
	seg, _ := cat.Segment("analytics")
	var in, out string
	for n := 0; in == "" || out == ""; n++ {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
		if seg.Sequence.HeldOut(id) {
			in = id
		} else {
			out = id
		}
	}
	r, err := simulate.Run(cat, simulate.Lead{Segment: "analytics", Start: start, For: 20 * 24 * time.Hour, ID: in})
	require.NoError(t, err)
	assert.Equal(t, in, r.LeadID)
	assert.Equal(t, []string{"analytics-series"}, r.HeldOut)
	assert.Empty(t, sends(r))
	r, err = simulate.Run(cat, simulate.Lead{Segment: "analytics", Start: start, For: 20 * 24 * time.Hour, ID: out})
	require.NoError(t, err)
	assert.Empty(t, r.HeldOut)
	assert.Len(t, sends(r), 3)
}
