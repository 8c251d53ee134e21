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

// funnel is the order of the main funnel, for deciding what counts as moving forward.
var funnel = map[Stage]int{Subscriber: 0, Lead: 1, MQL: 2, SAL: 3, SQL: 4, Opportunity: 5, Customer: 6, Evangelist: 7}

// CheckTransition says whether a lead may move from one stage to another, and why not. Leads move
// forward through the funnel (skipping is allowed: a rep may qualify a lead straight to SQL);
// MQL, SAL and SQL leads may be recycled back to nurture; a recycled lead re-enters as lead or
// MQL; any open lead may be disqualified; subscribers and leads may be marked other. Nothing
// moves backwards otherwise, and customers only move on to evangelist.
func CheckTransition(from, to Stage) error {
	if _, err := Parse(string(to)); err != nil {
		return err
	}
	if from == to {
		return fmt.Errorf("lead is already %s", to)
	}
	fi, fromFunnel := funnel[from]
	ti, toFunnel := funnel[to]
	switch {
	case fromFunnel && toFunnel:
		if ti > fi {
			return nil
		}
		return fmt.Errorf("cannot move a lead back from %s to %s", from, to)
	case to == Recycled:
		if from == MQL || from == SAL || from == SQL || from == Opportunity {
			return nil
		}
	case from == Recycled:
		if to == Lead || to == MQL || to == Disqualified || to == SAL {
			return nil
		}
	case to == Disqualified:
		if from != Customer && from != Evangelist {
			return nil
		}
	case to == Other:
		if from == Subscriber || from == Lead {
			return nil
		}
	case from == Other && toFunnel:
		return nil
	}
	return fmt.Errorf("cannot move a lead from %s to %s", from, to)
}

// Reached reports whether a lead in stage has reached goal: it is goal, or a later funnel stage
// when both are in the funnel.
func Reached(stage, goal Stage) bool {
	if stage == goal {
		return true
	}
	si, sok := funnel[stage]
	gi, gok := funnel[goal]
	return sok && gok && si > gi
}
