package workflows

import (
	"slices"
	"time"

	"github.com/tendhq/tend/internal/sequence"
)

// PlacementKind says what a new version of its sequence does to a lead waiting in it.
type PlacementKind string

// The kinds of placement.
const (
	// Unchanged: the same step, due at the same time.
	Unchanged PlacementKind = "unchanged"
	// Rescheduled: the same step, due at another time (its wait changed; counted from the
	// original start of the wait).
	Rescheduled PlacementKind = "rescheduled"
	// Moved: another step is next (the one waited for was removed, or one was inserted before it).
	Moved PlacementKind = "moved"
	// Finished: no step of the new version is left for the lead.
	Finished PlacementKind = "finished"
)

// Placement is where a lead running a sequence stands in a new version of it.
type Placement struct {
	Kind PlacementKind `json:"kind"`
	// NextStep indexes the new version's steps; len(Steps) when Finished.
	NextStep int `json:"next_step"`
	// From is the step the lead waits for now, StepID the one it waits for in the new version.
	From   string `json:"from"`
	StepID string `json:"step_id,omitempty"`
	// Due is when that step falls due, before the send window, quiet hours and the frequency cap
	// move it; DueBefore when the lead's current step falls due.
	Due       time.Time `json:"due,omitzero"`
	DueBefore time.Time `json:"due_before,omitzero"`
	// EmailChanged: the step stays but its template, subject or variants changed; the next send
	// uses the new ones.
	EmailChanged bool `json:"email_changed,omitempty"`
}

// Place computes where st, a lead running a sequence, stands in next, a new version of it: its
// position is mapped by sequence.Position from the steps it passed, and the wait of its next step
// counts from the start of its current wait (StepBase). The workflow follows exactly this, and the
// dry run reports it.
func Place(st *LeadState, next sequence.Sequence) Placement {
	cur := st.Sequence
	var passed []string
	for _, s := range cur.Steps[:min(st.NextStep, len(cur.Steps))] {
		passed = append(passed, s.ID)
	}
	p := Placement{NextStep: sequence.Position(next, passed)}
	var old *sequence.Step
	if st.NextStep < len(cur.Steps) {
		old = &cur.Steps[st.NextStep]
		p.From = old.ID
		p.DueBefore = st.StepBase.Add(stepWait(*old, st.previousClicked()))
	}
	if p.NextStep >= len(next.Steps) {
		p.Kind = Finished
		return p
	}
	step := next.Steps[p.NextStep]
	p.StepID = step.ID
	p.Due = st.StepBase.Add(stepWait(step, st.previousClicked()))
	switch {
	case old == nil || old.ID != step.ID:
		p.Kind = Moved
	case !p.Due.Equal(p.DueBefore):
		p.Kind = Rescheduled
	default:
		p.Kind = Unchanged
	}
	if old != nil && old.ID == step.ID {
		p.EmailChanged = old.Template != step.Template || old.Subject != step.Subject || !slices.Equal(old.Variants, step.Variants)
	}
	return p
}

// stepWait is the wait before step: WaitIfClicked when the lead clicked the previous email.
func stepWait(step sequence.Step, previousClicked bool) time.Duration {
	if step.WaitIfClicked != nil && previousClicked {
		return *step.WaitIfClicked
	}
	return step.Wait
}
