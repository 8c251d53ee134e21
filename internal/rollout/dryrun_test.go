package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/sequence"
	"github.com/tendhq/tend/workflows"
)

// fakeStates answers queries with crafted states, as the lead workflows would, and records which
// leads were asked and how many queries ran at once.
type fakeStates struct {
	mu       sync.Mutex
	states   map[string]*workflows.LeadState
	errs     map[string]error
	asked    []string
	inFlight int
	maxSeen  int
}

func (f *fakeStates) LeadState(ctx context.Context, leadID string) (*workflows.LeadState, error) {
	f.mu.Lock()
	f.asked = append(f.asked, leadID)
	f.inFlight++
	f.maxSeen = max(f.maxSeen, f.inFlight)
	st, err := f.states[leadID], f.errs[leadID]
	f.mu.Unlock()
	time.Sleep(2 * time.Millisecond) // let queries overlap, as real ones do
	f.mu.Lock()
	f.inFlight--
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, serviceerror.NewNotFound("workflow not found")
	}
	return st, nil
}

type dryRunLeads struct {
	store *db.Store
	ids   map[string][]string // by name given in the test
}

func (l *dryRunLeads) add(t *testing.T, name, segment string, interests ...string) string {
	t.Helper()
	c, err := l.store.RecordCapture(context.Background(), db.Capture{Email: name + "@example.com", Source: "api",
		Segment: segment, Stage: "lead", Interests: interests})
	require.NoError(t, err)
	l.ids[name] = append(l.ids[name], c.Lead.ID)
	return c.Lead.ID
}

// The dry run asks the workflows of the leads in changed and removed sequences for their state
// and reports, per sequence and step, how many wait there and what the new version does to them:
// the exact placement the workflow will follow (workflows.Place), grouped, with example ids.
func TestDryRunReportsWhatTheNewVersionDoesToEachWaitingLead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	leads := &dryRunLeads{store: store, ids: map[string][]string{}}
	cur := currentCatalog()
	analytics, _ := cur.Sequence("analytics-series")
	webinar, _ := cur.Sequence("webinar-series")
	reengagement, _ := cur.Sequence("reengagement")
	base := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	states := &fakeStates{states: map[string]*workflows.LeadState{}, errs: map[string]error{}}
	state := func(id string, seq sequence.Sequence, next int, stepBase time.Time) *workflows.LeadState {
		st := &workflows.LeadState{LeadID: id, Status: workflows.StatusRunning, Sequence: &seq, NextStep: next, StepBase: stepBase}
		states.states[id] = st
		return st
	}

	// Waiting for deep-dive, whose wait drops from 2 days to 1: rescheduled, with its new subject.
	for i := range 4 {
		id := leads.add(t, fmt.Sprintf("deep%d", i), "analytics", "analytics")
		state(id, analytics, 1, base)
	}
	// One of them started its wait an hour later: its own group.
	late := leads.add(t, "late", "analytics", "analytics")
	state(late, analytics, 1, base.Add(time.Hour))
	// Waiting for the removed case study: moved to the wrap-up that replaces it.
	caseStudy := leads.add(t, "case", "analytics", "analytics")
	state(caseStudy, analytics, 2, base)
	// Waiting for the intro (wait 0, unchanged).
	intro := leads.add(t, "intro", "analytics", "analytics")
	state(intro, analytics, 0, base)
	// Completed and exited: not affected. No workflow: not running. A query that fails: unreadable.
	done := leads.add(t, "done", "analytics")
	states.states[done] = &workflows.LeadState{LeadID: done, Status: workflows.StatusCompleted, Sequence: &analytics, NextStep: 3}
	exited := leads.add(t, "exited", "analytics")
	states.states[exited] = &workflows.LeadState{LeadID: exited, Status: workflows.StatusExited, Sequence: &analytics, NextStep: 1}
	none := leads.add(t, "none", "analytics")
	broken := leads.add(t, "broken", "analytics")
	states.errs[broken] = errors.New("context deadline exceeded")
	// In the removed webinars segment: they finish where they are, then follow the segment their
	// interests map to in the new version.
	toAnalytics := leads.add(t, "webinar-analytics", "webinars", "webinars", "analytics")
	state(toAnalytics, webinar, 1, base)
	toGeneral := leads.add(t, "webinar-general", "webinars", "webinars")
	state(toGeneral, webinar, 1, base)
	// An analytics lead that went quiet runs the unchanged re-engagement series: unchanged.
	quiet := leads.add(t, "quiet", "analytics", "analytics")
	qst := state(quiet, reengagement, 1, base)
	qst.Mode = workflows.ModeReengaging
	// Not in scope: an unchanged sequence's lead, and an unsubscribed lead.
	other := leads.add(t, "automation", "automation", "automation")
	gone := leads.add(t, "gone", "analytics", "analytics")
	_, err := store.Unsubscribe(ctx, gone, "", "link")
	require.NoError(t, err)

	d := &DryRunner{Leads: store, States: states, InFlight: 3}
	r, err := d.DryRun(ctx, set(cur), set(proposedCatalog()))
	require.NoError(t, err)

	assert.NotContains(t, states.asked, other, "a lead of an unchanged sequence is not queried")
	assert.NotContains(t, states.asked, gone, "an unsubscribed lead is not queried")
	assert.Len(t, states.asked, 14)
	assert.LessOrEqual(t, states.maxSeen, 3, "no more queries in flight than asked for")
	assert.Equal(t, 14, r.Candidates)
	assert.Equal(t, 14, r.Queried)
	assert.False(t, r.Sample)

	sorted := func(ids ...string) []string { s := slices.Clone(ids); slices.Sort(s); return s }
	deep := sorted(leads.ids["deep0"][0], leads.ids["deep1"][0], leads.ids["deep2"][0], leads.ids["deep3"][0])
	want := []SequenceReport{
		{ID: "analytics-series", Change: Changed, Steps: []StepReport{
			{Step: "intro", Waiting: 1, Groups: []Group{
				{Kind: workflows.Unchanged, To: "intro", Due: base, LastDue: base, Count: Count{Count: 1, Examples: []string{intro}}},
			}},
			{Step: "deep-dive", Waiting: 5, Groups: []Group{
				{Kind: workflows.Rescheduled, To: "deep-dive", DueBefore: base.Add(2 * day), Due: base.Add(day), EmailChanged: 4,
					Count: Count{Count: 4, Examples: deep[:3]}},
				{Kind: workflows.Rescheduled, To: "deep-dive", DueBefore: base.Add(2*day + time.Hour), Due: base.Add(day + time.Hour), EmailChanged: 1,
					Count: Count{Count: 1, Examples: []string{late}}},
			}},
			{Step: "case-study", Waiting: 1, Groups: []Group{
				{Kind: workflows.Moved, To: "wrap-up", Due: base.Add(3 * day), LastDue: base.Add(3 * day), Count: Count{Count: 1, Examples: []string{caseStudy}}},
			}},
		}},
		{ID: "webinar-series", Change: Removed, Steps: []StepReport{
			{Step: "replay", Waiting: 2, Groups: []Group{
				{Kind: FinishThenSegment, To: "analytics", Count: Count{Count: 1, Examples: []string{toAnalytics}}},
				{Kind: FinishThenSegment, To: "general", Count: Count{Count: 1, Examples: []string{toGeneral}}},
			}},
		}},
		{ID: "reengagement", Change: Unchanged, Steps: []StepReport{
			{Step: "last-call", Waiting: 1, Groups: []Group{
				{Kind: workflows.Unchanged, To: "last-call", Due: base.Add(7 * day), LastDue: base.Add(7 * day), Count: Count{Count: 1, Examples: []string{quiet}}},
			}},
		}},
	}
	assert.Equal(t, want, r.Sequences)
	assert.Equal(t, []StatusCount{
		{Status: workflows.StatusCompleted, Count: Count{Count: 1, Examples: []string{done}}},
		{Status: workflows.StatusExited, Count: Count{Count: 1, Examples: []string{exited}}},
	}, r.NotAffected)
	assert.Equal(t, Count{Count: 1, Examples: []string{none}}, r.NotRunning)
	assert.Equal(t, Count{Count: 1, Examples: []string{broken}}, r.Unreadable)

	text := r.Text()
	for _, line := range []string{
		"Sequences: analytics-series changed, webinar-series removed, pricing-series added.",
		"14 leads may be in a changed sequence; every one was queried.",
		"  analytics-series / intro: 1 waiting — 1 unchanged (e.g. " + intro + ")",
		"  analytics-series / deep-dive: 5 waiting",
		"    4 rescheduled from 2026-12-05 09:00 to 2026-12-04 09:00, 4 of them with a new email (e.g. " + strings.Join(deep[:3], ", ") + ")",
		"    1 rescheduled from 2026-12-05 10:00 to 2026-12-04 10:00, 1 of them with a new email (e.g. " + late + ")",
		"  analytics-series / case-study: 1 waiting — 1 moved to wrap-up, due 2026-12-06 09:00 (e.g. " + caseStudy + ")",
		"    1 finish where they are, then segment analytics (e.g. " + toAnalytics + ")",
		"    1 finish where they are, then segment general (e.g. " + toGeneral + ")",
		"Not affected: 1 completed, 1 exited (e.g. " + strings.Join(sorted(done, exited), ", ") + ").",
		"Not running (no open workflow): 1 (e.g. " + none + ").",
		"Could not be read (the query failed): 1 (e.g. " + broken + ").",
	} {
		assert.Contains(t, text, line+"\n")
	}
	t.Log("\n" + text)

	js, err := r.JSON()
	require.NoError(t, err)
	assert.Contains(t, string(js), `"kind": "rescheduled"`)
	assert.Contains(t, string(js), `"due": "2026-12-04T09:00:00Z"`)
}

// Past the cap the dry run queries no more workflows and says the report is a sample of how
// many candidates.
func TestDryRunPastTheCapIsASample(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	leads := &dryRunLeads{store: store, ids: map[string][]string{}}
	analytics, _ := currentCatalog().Sequence("analytics-series")
	states := &fakeStates{states: map[string]*workflows.LeadState{}}
	for i := range 7 {
		id := leads.add(t, fmt.Sprintf("lead%d", i), "analytics", "analytics")
		seq := analytics
		states.states[id] = &workflows.LeadState{LeadID: id, Status: workflows.StatusRunning, Sequence: &seq, NextStep: 1,
			StepBase: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
	}
	r, err := (&DryRunner{Leads: store, States: states, Max: 3}).DryRun(ctx, set(currentCatalog()), set(proposedCatalog()))
	require.NoError(t, err)
	assert.Len(t, states.asked, 3)
	assert.True(t, r.Sample)
	assert.Equal(t, 7, r.Candidates)
	assert.Equal(t, 3, r.Queried)
	require.Len(t, r.Sequences, 1)
	assert.Equal(t, 3, r.Sequences[0].Steps[0].Waiting)
	assert.Contains(t, r.Text(), "7 leads may be in a changed sequence; a sample of 3 was queried")
}

// When no workflow answers (Temporal is down), the dry run fails instead of reporting every lead
// as unreadable; with no change in scope it queries nothing.
func TestDryRunFailsWhenNoWorkflowAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	leads := &dryRunLeads{store: store, ids: map[string][]string{}}
	states := &fakeStates{errs: map[string]error{}}
	for i := range 3 {
		states.errs[leads.add(t, fmt.Sprintf("lead%d", i), "analytics")] = errors.New("connection refused")
	}
	_, err := (&DryRunner{Leads: store, States: states}).DryRun(ctx, set(currentCatalog()), set(proposedCatalog()))
	assert.ErrorContains(t, err, "no workflow of the 3 leads could be queried: connection refused")

	states.asked = nil
	r, err := (&DryRunner{Leads: store, States: states}).DryRun(ctx, set(currentCatalog()), set(currentCatalog()))
	require.NoError(t, err)
	assert.Empty(t, states.asked)
	assert.Equal(t, "No sequence changes: no running lead is affected.\n", r.Text())
}
