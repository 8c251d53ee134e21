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
		{"interests already declared keep a segment a click chose",
			db.Lead{Segment: "automation", Interests: []string{"sso"}}, []string{"sso"}, "automation"},
		{"an interest no segment claims keeps the segment",
			db.Lead{Segment: "security", Interests: []string{"sso"}}, []string{"gardening"}, "security"},
		{"the default segment's lead moves to its first interest's segment",
			db.Lead{Segment: "general"}, []string{"workflows"}, "automation"},
		{"a new interest of an earlier segment moves the lead there",
			db.Lead{Segment: "security", Interests: []string{"sso"}}, []string{"reporting"}, "analytics"},
		{"a new interest of a later segment keeps the lead in the earlier one",
			db.Lead{Segment: "analytics", Interests: []string{"reporting"}}, []string{"sso"}, "analytics"},
		{"an opted-out interest declared again changes nothing",
			db.Lead{Segment: "security", Interests: []string{"reporting", "sso"}, OptedOutInterests: []string{"reporting"}},
			[]string{"reporting"}, "security"},
		{"opted-out interests do not count in the mapping",
			db.Lead{Segment: "security", Interests: []string{"reporting", "sso"}, OptedOutInterests: []string{"reporting"}},
			[]string{"workflows"}, "automation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, capture.SegmentAfter(cat, tt.stored, tt.interests))
		})
	}
}
