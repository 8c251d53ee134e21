package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/sequence"
	"github.com/tendhq/tend/internal/simulate"
)

const productionFile = "../../examples/sequences-production.yaml"

// The calendar names the A/B variant each step carries and its subject; a chosen variant is the
// one shown.
func TestSimulationShowsVariants(t *testing.T) {
	cat, err := sequence.Load(productionFile, sequence.Options{})
	require.NoError(t, err)
	for i := range cat.Segments {
		if cat.Segments[i].ID == "analytics" {
			cat.Segments[i].Sequence.Steps[0].Variants = []sequence.Variant{
				{ID: "short", Subject: "Three numbers that matter", Weight: 1},
				{ID: "long", Subject: "A field guide to your analytics", Weight: 1},
			}
		}
	}
	seg, _ := cat.Segment("analytics")
	berlin, _ := time.LoadLocation("Europe/Berlin")
	start := time.Date(2026, 11, 27, 18, 0, 0, 0, berlin)
	for _, variant := range []string{"short", "long"} {
		res, err := simulate.Run(cat, simulate.Lead{Segment: "analytics", Start: start, For: 20 * 24 * time.Hour,
			Variants: []simulate.Choice{{Step: "analytics-series/intro", Variant: variant}}})
		require.NoError(t, err)
		var out bytes.Buffer
		printSimulation(&out, res, cat, seg, start, berlin, nil, 0, 20, false)
		subject := map[string]string{"short": "Three numbers that matter", "long": "A field guide to your analytics"}[variant]
		assert.Contains(t, out.String(), `  Mon 30 Nov 2026 10:04  +2d16h4m   analytics-series/intro                   sent  variant `+variant+`: "`+subject+`"`)
		assert.Regexp(t, `(?m)^  Thu 10 Dec 2026 10:04  \+7d +analytics-series/case-study +sent  "[^"]+"$`, out.String(), "a step without variants shows its subject")
		assert.Contains(t, out.String(), "lead "+simulate.DefaultLeadID+"\n")
	}
}

// --holdout shows the lead's calendar with nothing mailed, and says so.
func TestSequencesSimulateHoldout(t *testing.T) {
	r := tend(t, nil, "sequences", "simulate", productionFile, "--segment", "analytics", "--at", "2026-11-27T18:00", "--days", "20",
		"--holdout", "--lead", "6f1c1f4e-3a0b-4c55-9d0e-5b8f1d2a7c10")
	require.NoError(t, r.err, r.stderr)
	assert.Contains(t, r.stdout, "lead 6f1c1f4e-3a0b-4c55-9d0e-5b8f1d2a7c10\n")
	assert.Contains(t, r.stdout, "holdout: this lead would receive no email from analytics-series (--holdout)\n")
	assert.Contains(t, r.stdout, "  Mon 30 Nov 2026 09:07  +2d15h8m   analytics-series/intro                   held_out (holdout: nothing mailed)")
	assert.Contains(t, r.stdout, "\n0 email(s) sent.")
	assert.Equal(t, 3, strings.Count(r.stdout, "held_out"))
}

func TestSequencesSimulateBadVariant(t *testing.T) {
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--variant", "intro"}, `"intro" is not STEP=VARIANT`},
		{[]string{"--variant", "=b"}, `"=b" is not STEP=VARIANT`},
		{[]string{"--variant", "intro=b"}, `step "intro" is in analytics-series/intro and automation-series/intro and security-series/intro; name one as SEQUENCE/STEP`},
		{[]string{"--variant", "outro=b"}, `no sequence has a step "outro"`},
		{[]string{"--variant", "general-series/welcome=b"}, "step general-series/welcome has no variants"},
		{[]string{"--lead", "lead-1"}, `--lead: "lead-1" is not a lead id`},
	} {
		r := tend(t, nil, append([]string{"sequences", "simulate", productionFile, "--segment", "analytics"}, c.args...)...)
		require.ErrorIs(t, r.err, errUsage, "%v", c.args)
		assert.Contains(t, r.err.Error(), c.msg)
		assert.Empty(t, r.stdout, "nothing is simulated")
	}
}
