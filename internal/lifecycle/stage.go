// Package lifecycle owns the names of the lifecycle stages a lead moves through, from subscriber to
// evangelist, and the side exits recycled and disqualified.
package lifecycle

import (
	"fmt"
	"strings"
)

// Stage is one lifecycle stage of a lead.
type Stage string

// The lifecycle stages, in funnel order, then the stages outside the funnel.
const (
	Subscriber   Stage = "subscriber"
	Lead         Stage = "lead"
	MQL          Stage = "mql"
	SAL          Stage = "sal"
	SQL          Stage = "sql"
	Opportunity  Stage = "opportunity"
	Customer     Stage = "customer"
	Evangelist   Stage = "evangelist"
	Other        Stage = "other"
	Recycled     Stage = "recycled"
	Disqualified Stage = "disqualified"
)

// All lists every stage: the funnel in order, then other, recycled and disqualified.
var All = []Stage{Subscriber, Lead, MQL, SAL, SQL, Opportunity, Customer, Evangelist, Other, Recycled, Disqualified}

// Parse returns the stage named s, or an error that lists the valid names.
func Parse(s string) (Stage, error) {
	for _, st := range All {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown stage %q (valid: %s)", s, Names())
}

// Names returns the valid stage names as one comma-separated string, for error messages.
func Names() string {
	names := make([]string, len(All))
	for i, st := range All {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}
