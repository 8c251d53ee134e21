// Package rollout brings a new version of the sequences, or the resume of a paused one, to the
// leads already inside them: it predicts what the new version does to each running lead before it
// is published (the dry run, computed from the workflows' own state by the rule the workflow
// follows, workflows.Place), and tells the running leads' workflows durably afterwards (a Temporal
// workflow that pages through the leads in Postgres and signals each).
package rollout

import (
	"encoding/json"
	"slices"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/sequence"
)

// Change is what a new version of the sequences does to one sequence.
type Change string

// The changes a sequence may undergo.
const (
	Unchanged Change = "unchanged"
	Changed   Change = "changed"
	Removed   Change = "removed"
	Added     Change = "added"
)

// SequenceChange is one sequence's change.
type SequenceChange struct {
	ID     string `json:"id"`
	Change Change `json:"change"`
	// Reengagement: the sequence is the re-engagement series, which any lead may be in.
	Reengagement bool `json:"reengagement,omitempty"`
}

// ChangedSequences compares every sequence of current with the one of the same id in proposed,
// the re-engagement series included: the current catalog's sequences first, in file order, then
// the ones proposed adds. Two sequences are the same when their JSON is (their steps, waits,
// conditions, exit, goal, holdout and send window, the catalog's default folded in), which is what
// a running lead's workflow carries.
func ChangedSequences(current, proposed *sequence.Catalog) []SequenceChange {
	var out []SequenceChange
	seen := map[string]bool{}
	for _, s := range sequencesOf(current) {
		seen[s.seq.ID] = true
		c := SequenceChange{ID: s.seq.ID, Reengagement: s.reengagement, Change: Removed}
		if proposed != nil {
			if next, ok := proposed.Sequence(s.seq.ID); ok {
				c.Change = Changed
				if same(s.seq, next) {
					c.Change = Unchanged
				}
			}
		}
		out = append(out, c)
	}
	for _, s := range sequencesOf(proposed) {
		if !seen[s.seq.ID] {
			out = append(out, SequenceChange{ID: s.seq.ID, Reengagement: s.reengagement, Change: Added})
		}
	}
	return out
}

type catalogSequence struct {
	seq          sequence.Sequence
	reengagement bool
}

func sequencesOf(c *sequence.Catalog) []catalogSequence {
	if c == nil {
		return nil
	}
	var out []catalogSequence
	for _, s := range c.Segments {
		out = append(out, catalogSequence{seq: s.Sequence})
	}
	if c.Reengagement != nil {
		out = append(out, catalogSequence{seq: c.Reengagement.Sequence, reengagement: true})
	}
	return out
}

func same(a, b sequence.Sequence) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// Scope is what a change of the sequences reaches: the sequences whose running leads must be
// told, and how to find those leads in Postgres. The dry run queries exactly the leads the
// rollout signals.
type Scope struct {
	// Sequences are the ids of the changed and removed sequences.
	Sequences []string `json:"sequences"`
	// Segments are the current catalog's segments whose sequence changed or was removed: the
	// segments stored on the leads to tell.
	Segments []string `json:"segments"`
	// Reengagement: the re-engagement series changed, was added or removed; any lead may be in
	// it, so every lead is told.
	Reengagement bool `json:"reengagement"`
}

// Empty reports whether the change reaches no running lead.
func (s Scope) Empty() bool { return len(s.Segments) == 0 && !s.Reengagement }

// Filter is the Postgres filter of the scope's leads.
func (s Scope) Filter() db.CandidateFilter {
	return db.CandidateFilter{Segments: s.Segments, Sequences: s.Sequences, All: s.Reengagement}
}

// ScopeOf is the scope of the change from current to proposed.
func ScopeOf(current, proposed *sequence.Catalog) Scope {
	sc := Scope{Segments: []string{}, Sequences: []string{}}
	var touched []string
	for _, c := range ChangedSequences(current, proposed) {
		if c.Reengagement && c.Change != Unchanged {
			sc.Reengagement = true
		}
		if c.Change == Changed || c.Change == Removed {
			sc.Sequences = append(sc.Sequences, c.ID)
			touched = append(touched, c.ID)
		}
	}
	if current != nil {
		for _, seg := range current.Segments {
			if slices.Contains(touched, seg.Sequence.ID) {
				sc.Segments = append(sc.Segments, seg.ID)
			}
		}
	}
	return sc
}
