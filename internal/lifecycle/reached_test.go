package lifecycle

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Reached decides when a stage goal is met: at the stage or past it in the funnel, never from a
// side exit.
func TestReached(t *testing.T) {
	for _, tc := range []struct {
		stage, goal Stage
		want        bool
	}{
		{SQL, SQL, true},
		{Opportunity, SQL, true},
		{Customer, MQL, true},
		{Evangelist, Subscriber, true},
		{MQL, SQL, false},
		{Subscriber, Lead, false},
		{Recycled, MQL, false}, // back in nurture: not qualified any more
		{Disqualified, SQL, false},
		{Other, Lead, false},
		{Customer, Recycled, false},
		{Recycled, Recycled, true},
		{Other, Other, true},
		{Stage("vip"), Lead, false},
	} {
		assert.Equal(t, tc.want, Reached(tc.stage, tc.goal), "%s reaches %s", tc.stage, tc.goal)
	}
}
