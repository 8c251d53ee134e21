package capture_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/sequence"
)

func TestSegmentAfterRecapture(t *testing.T) {
	t.Parallel()
	// analytics, automation, security, then general (the default), in that order.
	cat, err := sequence.Load("../../examples/sequences.yaml", sequence.Options{})
	require.NoError(t, err)
	tests := []struct {
		name      string
		stored    db.Lead
		interests []string
		want      string
	}{
		{"no interests keep the segment",
			db.Lead{Segment: "security", Interests: []string{"sso"}}, nil, "security"},
		{"no interests keep a segment a click chose",
			db.Lead{Segment: "automation", Interests: []string{"sso"}}, nil, "automation"},
		{"an interest no segment claims keeps the segment",
			db.Lead{Segment: "security", Interests: []string{"sso"}}, []string{"gardening"}, "security"},
		{"an interest no segment claims keeps a segment the preference centre chose",
			db.Lead{Segment: "general", Interests: []string{"sso"}, OptedOutInterests: []string{"sso"}}, []string{"gardening"}, "general"},
		{"the default segment's lead moves to its new interest's segment",
			db.Lead{Segment: "general"}, []string{"workflows"}, "automation"},
		{"a new interest of a later segment moves the lead there",
			db.Lead{Segment: "analytics", Interests: []string{"reporting"}}, []string{"sso"}, "security"},
		{"a new interest of an earlier segment moves the lead there",
			db.Lead{Segment: "security", Interests: []string{"sso"}}, []string{"reporting"}, "analytics"},
		{"interests of two segments: the first in file order",
			db.Lead{Segment: "general"}, []string{"sso", "workflows", "gardening"}, "automation"},
		{"an interest declared again counts again",
			db.Lead{Segment: "automation", Interests: []string{"reporting", "workflows"}}, []string{"reporting"}, "analytics"},
		{"an opted-out interest declared again changes nothing",
			db.Lead{Segment: "security", Interests: []string{"reporting", "sso"}, OptedOutInterests: []string{"reporting"}},
			[]string{"reporting"}, "security"},
		{"opted-out interests do not count",
			db.Lead{Segment: "security", Interests: []string{"reporting", "sso"}, OptedOutInterests: []string{"reporting"}},
			[]string{"reporting", "workflows"}, "automation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, capture.SegmentAfter(cat, tt.stored, tt.interests))
		})
	}
}

// A segment with a when is chosen by the lead's facts too: a recapture of a banker interested in
// SSO lands in the regulated-industries series, anyone else's in the plain security series.
func TestSegmentAfterRecaptureHonoursWhen(t *testing.T) {
	t.Parallel()
	cat, err := sequence.Load("../../examples/sequences-production.yaml", sequence.Options{})
	require.NoError(t, err)
	banker := db.Lead{Segment: "general", Stage: "lead", Band: "cold", Attributes: map[string]string{"industry": "Banking"}}
	retailer := db.Lead{Segment: "general", Stage: "lead", Band: "cold", Attributes: map[string]string{"industry": "retail"}}
	assert.Equal(t, "security-regulated", capture.SegmentAfter(cat, banker, []string{"sso"}))
	assert.Equal(t, "security", capture.SegmentAfter(cat, retailer, []string{"sso"}))
}
