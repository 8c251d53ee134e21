// Package content owns what marketers publish — the sequences, the scoring model, the sales team
// and the email templates — as numbered versions in Postgres, and the live copy every server and
// worker reads: a new version is in use within seconds, without a restart.
package content

import (
	"sync/atomic"

	"github.com/tendhq/tend/internal/render"
	"github.com/tendhq/tend/internal/sales"
	"github.com/tendhq/tend/internal/score"
	"github.com/tendhq/tend/internal/sequence"
)

// Kind is one of the four kinds of content, each versioned on its own.
type Kind string

// The kinds of content.
const (
	Sequences Kind = "sequences"
	Scoring   Kind = "scoring"
	Sales     Kind = "sales"
	Templates Kind = "templates"
)

// Kinds lists every kind, in the order they are checked (templates first: sequences name them;
// sequences before sales: the team names segments).
var Kinds = []Kind{Templates, Sequences, Scoring, Sales}

// Set is one consistent state of the content: every kind, parsed and checked against the others.
type Set struct {
	Catalog  *sequence.Catalog
	Model    *score.Model
	Team     *sales.Team // nil when sales handoff is off
	Renderer *render.Renderer
	// Versions are the published version of each kind the Set was built from; 0 for content that
	// did not come from the store (a test's fixed content).
	Versions map[Kind]int
	// Source is the text the Set was built from (nil for a Set assembled in code): what a new
	// version is compared with.
	Source Source
}

// Version returns the set's version of kind.
func (s *Set) Version(k Kind) int {
	if s == nil {
		return 0
	}
	return s.Versions[k]
}

// Live holds the content in use. Readers take Current once per operation, so one activity sees one
// consistent Set even while a new version is swapped in.
type Live struct {
	cur atomic.Pointer[Set]
}

// Static returns a Live that always holds s: content read from files, in tests.
func Static(s *Set) *Live {
	l := &Live{}
	l.cur.Store(s)
	return l
}

// Current returns the content in use.
func (l *Live) Current() *Set { return l.cur.Load() }

// Swap puts s in use.
func (l *Live) Swap(s *Set) { l.cur.Store(s) }
