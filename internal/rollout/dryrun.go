package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/sequence"
	"github.com/tendhq/tend/workflows"
)

// States reads a lead's workflow state (QueryState). An implementation returns an error that
// matches ErrNotRunning, or Temporal's *serviceerror.NotFound, for a lead without an open
// workflow.
type States interface {
	LeadState(ctx context.Context, leadID string) (*workflows.LeadState, error)
}

// ErrNotRunning says that a lead has no open workflow: it was never started, or it finished.
var ErrNotRunning = errors.New("the lead has no open workflow")

// notRunning reports whether err means the lead has no open workflow.
func notRunning(err error) bool {
	var nf *serviceerror.NotFound
	return errors.Is(err, ErrNotRunning) || errors.As(err, &nf)
}

// Candidates pages through the leads a change may reach; *db.Store is one.
type Candidates interface {
	RolloutCandidates(ctx context.Context, f db.CandidateFilter, after string, limit int) ([]db.RolloutCandidate, error)
	CountRolloutCandidates(ctx context.Context, f db.CandidateFilter) (int, error)
}

// FinishThenSegment is the placement of a lead running a sequence the new version removes: it
// finishes the steps it has where it is, then follows the segment its interests and facts map to
// in the new version (Group.To).
const FinishThenSegment workflows.PlacementKind = "finish_then_segment"

// Defaults of a DryRunner.
const (
	DefaultInFlight     = 8
	DefaultMaxQueries   = 50_000
	DefaultQueryTimeout = 10 * time.Second
)

// candidatePage is how many candidates the dry run reads from Postgres at once.
const candidatePage = 500

// DryRunner predicts what publishing a new version of the sequences does to the leads running
// them, from their workflows' state.
type DryRunner struct {
	Leads  Candidates
	States States
	// InFlight is how many workflow queries run at once (DefaultInFlight when 0): queries are
	// Temporal operations, the scarce resource.
	InFlight int
	// Max caps the workflows queried (DefaultMaxQueries when 0); beyond it the report is a
	// sample (leads are read in id order, and ids are random).
	Max int
	// QueryTimeout bounds one query (DefaultQueryTimeout when 0): a lead whose worker does not
	// answer is reported as unreadable instead of stalling the report.
	QueryTimeout time.Duration
	Log          *slog.Logger
}

// Report is a dry run: per sequence and step, how many leads wait there now and what the new
// version does to them.
type Report struct {
	Changes []SequenceChange `json:"changes"`
	Scope   Scope            `json:"scope"`
	// Candidates is how many leads the scope reaches in Postgres; Queried how many of their
	// workflows were asked. Sample: the cap was reached, and the counts below are of the leads
	// queried only.
	Candidates int              `json:"candidates"`
	Queried    int              `json:"queried"`
	Sample     bool             `json:"sample,omitempty"`
	Sequences  []SequenceReport `json:"sequences"`
	// NotAffected are the leads whose workflow is open but runs no sequence now (completed,
	// exited, or running none), by status.
	NotAffected []StatusCount `json:"not_affected"`
	// NotRunning are the leads without an open workflow; Unreadable those whose query failed.
	NotRunning Count `json:"not_running"`
	Unreadable Count `json:"unreadable"`
}

// SequenceReport is one sequence in which leads wait now.
type SequenceReport struct {
	ID     string       `json:"id"`
	Change Change       `json:"change"`
	Steps  []StepReport `json:"steps"`
}

// StepReport is one step of a sequence: the leads waiting for it now, and what becomes of them.
type StepReport struct {
	// Step is the step the leads wait for; "" for leads past the sequence's last step.
	Step    string  `json:"step"`
	Waiting int     `json:"waiting"`
	Groups  []Group `json:"groups"`
}

// Group is the leads of a step that the new version treats alike.
type Group struct {
	Kind workflows.PlacementKind `json:"kind"`
	// To is the step they wait for in the new version, or, for FinishThenSegment, the segment
	// they follow next ("" for the re-engagement series: they return to their nurture).
	To string `json:"to,omitempty"`
	// For Rescheduled, DueBefore and Due are the old and the new due time, to the minute. For
	// Moved and Unchanged, Due and LastDue are the earliest and the latest new due time.
	DueBefore time.Time `json:"due_before,omitzero"`
	Due       time.Time `json:"due,omitzero"`
	LastDue   time.Time `json:"last_due,omitzero"`
	// EmailChanged counts the leads whose next email (template, subject or variants) changed.
	EmailChanged int `json:"email_changed,omitempty"`
	Count
}

// Count is a number of leads, with up to three of their ids as examples (the smallest ids, so
// that the report is the same from run to run).
type Count struct {
	Count    int      `json:"count"`
	Examples []string `json:"examples,omitempty"`
}

// StatusCount is a number of leads in one workflow status.
type StatusCount struct {
	Status string `json:"status"`
	Count
}

const examplesKept = 3

func (c *Count) add(leadID string) {
	c.Count++
	i, _ := slices.BinarySearch(c.Examples, leadID)
	c.Examples = slices.Insert(c.Examples, i, leadID)
	if len(c.Examples) > examplesKept {
		c.Examples = c.Examples[:examplesKept]
	}
}

// DryRun predicts what publishing proposed over current does to the running leads. It queries the
// workflow of every lead the change reaches (Scope), up to Max, and places each running lead in
// the new version of its sequence with workflows.Place, the rule the workflow follows when told.
func (d *DryRunner) DryRun(ctx context.Context, current, proposed *content.Set) (*Report, error) {
	if current == nil || current.Catalog == nil || proposed == nil || proposed.Catalog == nil {
		return nil, errors.New("dry run: both the current and the proposed content need sequences")
	}
	inFlight, maxQueries, timeout := d.InFlight, d.Max, d.QueryTimeout
	if inFlight <= 0 {
		inFlight = DefaultInFlight
	}
	if maxQueries <= 0 {
		maxQueries = DefaultMaxQueries
	}
	if timeout <= 0 {
		timeout = DefaultQueryTimeout
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	cur, next := current.Catalog, proposed.Catalog
	r := &Report{Changes: ChangedSequences(cur, next), Scope: ScopeOf(cur, next)}
	if r.Scope.Empty() {
		return r, nil
	}
	agg := newAggregate(cur, next)
	var firstErr error
	var mu sync.Mutex
	work := make(chan db.RolloutCandidate)
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for c := range work {
				qctx, cancel := context.WithTimeout(ctx, timeout)
				st, err := d.States.LeadState(qctx, c.ID)
				cancel()
				if err != nil && !notRunning(err) {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
				agg.add(c, st, err)
			}
		})
	}

	filter, after := r.Scope.Filter(), ""
	var readErr error
read:
	for r.Queried < maxQueries {
		page, err := d.Leads.RolloutCandidates(ctx, filter, after, min(candidatePage, maxQueries-r.Queried))
		if err != nil {
			readErr = fmt.Errorf("dry run: %w", err)
			break
		}
		for _, c := range page {
			select {
			case work <- c:
				r.Queried++
			case <-ctx.Done():
				readErr = ctx.Err()
				break read
			}
		}
		if len(page) == 0 || r.Queried >= maxQueries {
			break
		}
		after = page[len(page)-1].ID
	}
	close(work)
	wg.Wait()
	if readErr != nil {
		return nil, readErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dry run: %w", err)
	}

	r.Candidates = r.Queried
	if r.Queried >= maxQueries {
		n, err := d.Leads.CountRolloutCandidates(ctx, filter)
		if err != nil {
			return nil, fmt.Errorf("dry run: %w", err)
		}
		r.Candidates, r.Sample = n, n > r.Queried
	}
	agg.fill(r)
	if r.Unreadable.Count > 0 {
		log.Warn("dry run: some workflows could not be queried", "count", r.Unreadable.Count,
			"example_lead", r.Unreadable.Examples[0], "error", firstErr)
		if r.Unreadable.Count == r.Queried {
			return nil, fmt.Errorf("dry run: no workflow of the %d leads could be queried: %w", r.Queried, firstErr)
		}
	}
	return r, nil
}

// aggregate collects the outcomes of the queries, from several goroutines.
type aggregate struct {
	cur, next *sequence.Catalog

	mu          sync.Mutex
	steps       map[stepKey]*StepReport
	groups      map[groupKey]*Group
	notAffected map[string]*Count
	notRunning  Count
	unreadable  Count
}

type stepKey struct{ seq, step string }

type groupKey struct {
	stepKey
	kind           workflows.PlacementKind
	to             string
	dueBefore, due time.Time
}

func newAggregate(cur, next *sequence.Catalog) *aggregate {
	return &aggregate{cur: cur, next: next, steps: map[stepKey]*StepReport{}, groups: map[groupKey]*Group{},
		notAffected: map[string]*Count{}}
}

// add records one lead: its state st, or the error its query returned.
func (a *aggregate) add(c db.RolloutCandidate, st *workflows.LeadState, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case err != nil && notRunning(err), err == nil && st == nil:
		a.notRunning.add(c.ID)
		return
	case err != nil:
		a.unreadable.add(c.ID)
		return
	case st.Status != workflows.StatusRunning || st.Sequence == nil:
		status := st.Status
		if status == workflows.StatusRunning {
			status = "running no sequence"
		}
		if a.notAffected[status] == nil {
			a.notAffected[status] = &Count{}
		}
		a.notAffected[status].add(c.ID)
		return
	}

	var p workflows.Placement
	g := groupKey{}
	if seq, ok := a.next.Sequence(st.Sequence.ID); ok {
		p = workflows.Place(st, seq)
		g.kind, g.to = p.Kind, p.StepID
		if p.Kind == workflows.Rescheduled {
			g.dueBefore, g.due = p.DueBefore.Truncate(time.Minute), p.Due.Truncate(time.Minute)
		}
	} else {
		p.From = currentStep(st)
		g.kind = FinishThenSegment
		// A lead in the re-engagement series returns to its nurture when the series ends; any
		// other finishes its series and then follows the segment it maps to now.
		if st.Mode != workflows.ModeReengaging {
			g.to = a.next.SegmentForLead(c.Interests, sequence.Facts{Stage: lifecycle.Stage(c.Stage), Band: c.Band,
				Score: c.Score, Attributes: c.Attributes}).ID
		}
	}
	g.stepKey = stepKey{seq: st.Sequence.ID, step: p.From}

	s := a.steps[g.stepKey]
	if s == nil {
		s = &StepReport{Step: p.From}
		a.steps[g.stepKey] = s
	}
	s.Waiting++
	grp := a.groups[g]
	if grp == nil {
		grp = &Group{Kind: g.kind, To: g.to, DueBefore: g.dueBefore, Due: g.due}
		a.groups[g] = grp
	}
	grp.add(c.ID)
	if p.EmailChanged {
		grp.EmailChanged++
	}
	if g.kind == workflows.Moved || g.kind == workflows.Unchanged {
		due := p.Due.Truncate(time.Minute)
		if grp.Due.IsZero() || due.Before(grp.Due) {
			grp.Due = due
		}
		if due.After(grp.LastDue) {
			grp.LastDue = due
		}
	}
}

// currentStep is the id of the step st waits for, "" past the last.
func currentStep(st *workflows.LeadState) string {
	if st.NextStep >= 0 && st.NextStep < len(st.Sequence.Steps) {
		return st.Sequence.Steps[st.NextStep].ID
	}
	return ""
}

// fill puts the collected counts into r, in the order a marketer reads them: sequences as the
// catalogs list them, steps in sequence order, groups by kind and time.
func (a *aggregate) fill(r *Report) {
	r.NotRunning, r.Unreadable = a.notRunning, a.unreadable
	r.NotAffected = []StatusCount{}
	for status, c := range a.notAffected {
		r.NotAffected = append(r.NotAffected, StatusCount{Status: status, Count: *c})
	}
	sort.Slice(r.NotAffected, func(i, j int) bool { return r.NotAffected[i].Status < r.NotAffected[j].Status })

	change := map[string]Change{}
	order := map[string]int{}
	for i, c := range r.Changes {
		change[c.ID], order[c.ID] = c.Change, i
	}
	bySeq := map[string]*SequenceReport{}
	for k, s := range a.steps {
		sr := bySeq[k.seq]
		if sr == nil {
			ch, ok := change[k.seq]
			if !ok {
				ch = Removed // a version older than the current one, gone from both catalogs
			}
			sr = &SequenceReport{ID: k.seq, Change: ch}
			bySeq[k.seq] = sr
		}
		for gk, g := range a.groups {
			if gk.stepKey == k {
				s.Groups = append(s.Groups, *g)
			}
		}
		sort.Slice(s.Groups, func(i, j int) bool { return groupLess(s.Groups[i], s.Groups[j]) })
		sr.Steps = append(sr.Steps, *s)
	}
	r.Sequences = []SequenceReport{}
	for _, sr := range bySeq {
		stepOrder := a.stepOrder(sr.ID)
		sort.Slice(sr.Steps, func(i, j int) bool {
			return stepLess(stepOrder, sr.Steps[i].Step, sr.Steps[j].Step)
		})
		r.Sequences = append(r.Sequences, *sr)
	}
	sort.Slice(r.Sequences, func(i, j int) bool {
		oi, iok := order[r.Sequences[i].ID]
		oj, jok := order[r.Sequences[j].ID]
		if iok != jok {
			return iok
		}
		if oi != oj {
			return oi < oj
		}
		return r.Sequences[i].ID < r.Sequences[j].ID
	})
}

// stepOrder indexes the steps of sequence id as the current catalog lists them, then the
// proposed one's.
func (a *aggregate) stepOrder(id string) map[string]int {
	order := map[string]int{}
	for _, c := range []*sequence.Catalog{a.cur, a.next} {
		if seq, ok := c.Sequence(id); ok {
			for _, st := range seq.Steps {
				if _, seen := order[st.ID]; !seen {
					order[st.ID] = len(order)
				}
			}
		}
	}
	return order
}

func stepLess(order map[string]int, a, b string) bool {
	if (a == "") != (b == "") {
		return b == "" // past the last step comes last
	}
	oa, aok := order[a]
	ob, bok := order[b]
	if aok != bok {
		return aok
	}
	if oa != ob {
		return oa < ob
	}
	return a < b
}

var kindOrder = map[workflows.PlacementKind]int{workflows.Unchanged: 0, workflows.Rescheduled: 1, workflows.Moved: 2,
	workflows.Finished: 3, FinishThenSegment: 4}

func groupLess(a, b Group) bool {
	if a.Kind != b.Kind {
		return kindOrder[a.Kind] < kindOrder[b.Kind]
	}
	if !a.Due.Equal(b.Due) {
		return a.Due.Before(b.Due)
	}
	if !a.DueBefore.Equal(b.DueBefore) {
		return a.DueBefore.Before(b.DueBefore)
	}
	return a.To < b.To
}
