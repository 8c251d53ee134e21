package lifecycle

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheckTransition(t *testing.T) {
	for _, tc := range []struct {
		from, to Stage
		ok       bool
	}{
		{Subscriber, Lead, true},
		{Lead, MQL, true},
		{Subscriber, MQL, true}, // a hand-raise can skip a stage
		{MQL, SAL, true},
		{SAL, SQL, true},
		{Lead, SQL, true},
		{SQL, Opportunity, true},
		{Opportunity, Customer, true},
		{Customer, Evangelist, true},
		{MQL, Lead, false},
		{Customer, SQL, false},
		{Lead, Lead, false},
		{MQL, Recycled, true},
		{SAL, Recycled, true},
		{Lead, Recycled, false},
		{Recycled, Lead, true},
		{Recycled, MQL, true},
		{Recycled, Customer, false},
		{Lead, Disqualified, true},
		{SQL, Disqualified, true},
		{Customer, Disqualified, false},
		{Lead, Other, true},
		{MQL, Other, false},
		{Lead, Stage("vip"), false},
	} {
		err := CheckTransition(tc.from, tc.to)
		if tc.ok {
			assert.NoError(t, err, "%s -> %s", tc.from, tc.to)
		} else {
			assert.Error(t, err, "%s -> %s", tc.from, tc.to)
		}
	}
}
