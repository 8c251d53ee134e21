package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/workflows"
)

func quietSuite() *testsuite.WorkflowTestSuite {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	return &suite
}

// continuedAs returns the input of the run a workflow continued as.
func continuedAs[T any](t *testing.T, env *testsuite.TestWorkflowEnvironment, name string) T {
	t.Helper()
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &can, "the run continues as new")
	require.Equal(t, name, can.WorkflowType.Name)
	var in T
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &in))
	return in
}

// The rollout pages through the leads 200 at a time, continues as new every 50 pages with its
// cursor and totals, survives a failed page (retried from the same cursor), and ends when a page
// says no lead is left. 120 pages make three runs.
func TestRolloutPagesAndContinuesAsNew(t *testing.T) {
	t.Parallel()
	suite := quietSuite()
	const pages = 120
	var mu sync.Mutex
	var cursors []string
	failed := false
	batch := func(_ context.Context, in BatchInput) (BatchResult, error) {
		mu.Lock()
		defer mu.Unlock()
		if in.Version != 7 || in.Limit != BatchSize || !in.Filter.All || !slices.Equal(in.Filter.Segments, []string{"analytics"}) {
			return BatchResult{}, fmt.Errorf("unexpected page input %+v", in)
		}
		cursors = append(cursors, in.Cursor)
		n := 0
		if in.Cursor != "" {
			_, _ = fmt.Sscanf(in.Cursor, "lead-%d", &n)
		}
		if n == 70 && !failed {
			failed = true
			return BatchResult{}, errors.New("temporal unavailable")
		}
		return BatchResult{Next: fmt.Sprintf("lead-%03d", n+1), Signalled: 199, Skipped: 1, Done: n+1 == pages}, nil
	}
	run := func(in RolloutInput) *testsuite.TestWorkflowEnvironment {
		env := suite.NewTestWorkflowEnvironment()
		Register(env, &Activities{})
		var a *Activities
		env.OnActivity(a.SignalBatch, mock.Anything, mock.Anything).Return(batch)
		env.ExecuteWorkflow(RolloutWorkflowName, in)
		require.True(t, env.IsWorkflowCompleted())
		return env
	}

	env := run(RolloutInput{Version: 7, SequenceIDs: []string{"analytics-series", "reengagement"}, Segments: []string{"analytics"},
		ReengagementChanged: true})
	second := continuedAs[RolloutInput](t, env, RolloutWorkflowName)
	assert.Equal(t, RolloutInput{Version: 7, SequenceIDs: []string{"analytics-series", "reengagement"}, Segments: []string{"analytics"},
		ReengagementChanged: true, Cursor: "lead-050", Signalled: 50 * 199, Skipped: 50}, second)

	env = run(second)
	third := continuedAs[RolloutInput](t, env, RolloutWorkflowName)
	assert.Equal(t, "lead-100", third.Cursor)

	env = run(third)
	require.NoError(t, env.GetWorkflowError())
	var res RolloutResult
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.Equal(t, RolloutResult{Signalled: pages * 199, Skipped: pages}, res)

	require.Len(t, cursors, pages+1, "every page once, and the failed one again")
	assert.Equal(t, "", cursors[0])
	assert.Equal(t, cursors[70], cursors[71], "the failed page is retried from its cursor")
}

// A resume pages through its held sends carrying the index of each page's first lead, continues
// as new with it, and releases the held sends once every lead was told.
func TestResumeCarriesTheRampIndexAndReleasesAtTheEnd(t *testing.T) {
	t.Parallel()
	suite := quietSuite()
	env := suite.NewTestWorkflowEnvironment()
	Register(env, &Activities{})
	var a *Activities
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	var indexes []int
	released := 0
	env.OnActivity(a.ResumeBatch, mock.Anything, mock.Anything).Return(func(_ context.Context, in ResumeInput) (ResumeBatchResult, error) {
		indexes = append(indexes, in.Index)
		read := min(BatchSize, in.N-in.Index)
		return ResumeBatchResult{Next: db.HeldCursor{HeldAt: at, LeadID: fmt.Sprint(in.Index + read)}, Read: read, Signalled: read,
			Done: read < BatchSize}, nil
	})
	env.OnActivity(a.ReleaseHeld, mock.Anything, mock.Anything).Return(func(_ context.Context, in ResumeInput) error {
		assert.Equal(t, at, in.ResumedAt)
		assert.Equal(t, len(indexes), 3, "released after the last page")
		released++
		return nil
	})
	env.ExecuteWorkflow(ResumeWorkflowName, ResumeInput{SequenceID: "analytics-series", StepID: "deep-dive", ResumedAt: at, Ramp: time.Hour, N: 450})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res RolloutResult
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.Equal(t, RolloutResult{Signalled: 450}, res)
	assert.Equal(t, []int{0, 200, 400}, indexes)
	assert.Equal(t, 1, released)
}

// recorder records the signals sent, as Temporal would receive them; leads in missing have no
// open workflow, and a lead in failing fails its signal.
type recorder struct {
	mu      sync.Mutex
	signals map[string]workflows.ContentChange // by workflow id
	missing map[string]bool
	failing string
}

func (r *recorder) SignalWorkflow(_ context.Context, workflowID, runID, signalName string, arg any) error {
	if runID != "" || signalName != workflows.SignalContent {
		return fmt.Errorf("unexpected signal %q to run %q", signalName, runID)
	}
	if r.missing[workflowID] {
		return serviceerror.NewNotFound("workflow execution already completed")
	}
	if workflowID == workflows.LeadWorkflowID(r.failing) {
		return serviceerror.NewUnavailable("frontend unavailable")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.signals[workflowID]; dup {
		return fmt.Errorf("%s signalled twice", workflowID)
	}
	r.signals[workflowID] = arg.(workflows.ContentChange)
	return nil
}

// SignalBatch tells the workflow of every subscribed lead of the changed segments, page by page,
// about the version; a lead without an open workflow is skipped, not started; a failed signal
// fails the page, so that it is retried.
func TestSignalBatchTellsTheLeadsOfTheChangedSegments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	leads := &dryRunLeads{store: store, ids: map[string][]string{}}
	var want []string
	for i := range 5 {
		want = append(want, leads.add(t, fmt.Sprintf("analytics%d", i), "analytics"))
	}
	closed := leads.add(t, "closed", "analytics")
	other := leads.add(t, "automation", "automation")
	gone := leads.add(t, "gone", "analytics")
	_, err := store.Unsubscribe(ctx, gone, "", "link")
	require.NoError(t, err)

	rec := &recorder{signals: map[string]workflows.ContentChange{}, missing: map[string]bool{workflows.LeadWorkflowID(closed): true}}
	a := &Activities{Store: store, Signal: rec}
	in := BatchInput{Version: 7, Filter: db.CandidateFilter{Segments: []string{"analytics"}}, Limit: 2}
	signalled, skipped, pages := 0, 0, 0
	for {
		out, err := a.SignalBatch(ctx, in)
		require.NoError(t, err)
		pages++
		signalled += out.Signalled
		skipped += out.Skipped
		if out.Done {
			break
		}
		require.Greater(t, out.Next, in.Cursor, "the cursor moves on")
		in.Cursor = out.Next
		require.Less(t, pages, 10, "paging ends")
	}
	assert.Equal(t, 3, pages, "6 leads in pages of 2")
	assert.Equal(t, 5, signalled)
	assert.Equal(t, 1, skipped, "the lead without an open workflow")
	got := map[string]workflows.ContentChange{}
	for _, id := range want {
		got[workflows.LeadWorkflowID(id)] = workflows.ContentChange{Version: 7}
	}
	assert.Equal(t, got, rec.signals, "every analytics lead with a workflow, told version 7; not the automation nor the unsubscribed lead")
	assert.NotContains(t, rec.signals, workflows.LeadWorkflowID(other))

	rec.signals, rec.failing = map[string]workflows.ContentChange{}, want[0]
	_, err = a.SignalBatch(ctx, BatchInput{Version: 8, Filter: db.CandidateFilter{Segments: []string{"analytics"}}})
	assert.ErrorContains(t, err, "signal lead "+want[0])
}

// fakeStarts records the workflows started, as the Temporal client would start them.
type fakeStarts struct {
	options []client.StartWorkflowOptions
	inputs  []any
	err     error
}

func (f *fakeStarts) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	f.options = append(f.options, o)
	f.inputs = append(f.inputs, args[0])
	return nil, f.err
}

// A resume of four held sends over an hour tells the leads, in the order their sends fell due,
// to send at 0, 15, 30 and 45 minutes after the resume; then their held sends are released.
func TestResumeSpreadsTheHeldSendsOverTheRamp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	leads := &dryRunLeads{store: store, ids: map[string][]string{}}
	var order []string
	past := time.Now().Add(-time.Hour)
	for i := range 4 {
		id := leads.add(t, fmt.Sprintf("held%d", i), "analytics")
		order = append([]string{id}, order...) // held in reverse order of capture
		_, err := store.Pool().Exec(ctx, `INSERT INTO held_sends (lead_id, sequence_id, step_id, held_at) VALUES ($1, 'analytics-series', 'deep-dive', $2)`,
			id, past.Add(-time.Duration(i)*time.Minute))
		require.NoError(t, err)
	}

	starts := &fakeStarts{}
	n, err := (&Starter{Client: starts, Store: store}).Resume(ctx, "analytics-series", "deep-dive", time.Hour)
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	require.Len(t, starts.options, 1)
	in := starts.inputs[0].(ResumeInput)
	assert.Equal(t, ResumeWorkflowID("analytics-series", "deep-dive", in.ResumedAt), starts.options[0].ID)
	assert.True(t, strings.HasPrefix(starts.options[0].ID, "content-resume-analytics-series-deep-dive-"))
	assert.Equal(t, ResumeInput{SequenceID: "analytics-series", StepID: "deep-dive", ResumedAt: in.ResumedAt, Ramp: time.Hour, N: 4}, in)

	rec := &recorder{signals: map[string]workflows.ContentChange{}}
	a := &Activities{Store: store, Signal: rec}
	out, err := a.ResumeBatch(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, 4, out.Read)
	assert.True(t, out.Done)
	for i, id := range order {
		assert.Equal(t, workflows.ContentChange{Resume: true, NotBefore: in.ResumedAt.Add(time.Duration(i) * 15 * time.Minute)},
			rec.signals[workflows.LeadWorkflowID(id)], "lead %d in held order", i)
	}

	require.NoError(t, a.ReleaseHeld(ctx, in))
	_, left, err := store.CountHeldSends(ctx, "analytics-series", "")
	require.NoError(t, err)
	assert.Zero(t, left)

	n, err = (&Starter{Client: starts, Store: store}).Resume(ctx, "analytics-series", "deep-dive", time.Hour)
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Len(t, starts.options, 1, "nothing held: nothing started")
}

func TestSlot(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	var got []time.Duration
	for i := range 4 {
		got = append(got, Slot(at, time.Hour, i, 4).Sub(at))
	}
	assert.Equal(t, []time.Duration{0, 15 * time.Minute, 30 * time.Minute, 45 * time.Minute}, got)
	assert.Equal(t, at, Slot(at, 0, 3, 4), "no ramp: all at once")
}

// Follow starts one rollout per version, with the segments whose sequence changed fixed from the
// version before; a repeated publish joins it (or finds it done); a change that reaches no
// running lead starts nothing.
func TestFollowStartsOneRolloutPerVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	starts := &fakeStarts{}
	s := &Starter{Client: starts}
	require.NoError(t, s.Follow(ctx, 7, set(currentCatalog()), set(proposedCatalog())))
	require.Len(t, starts.options, 1)
	o := starts.options[0]
	assert.Equal(t, "content-rollout-sequences-7", o.ID)
	assert.Equal(t, workflows.TaskQueue, o.TaskQueue)
	assert.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, o.WorkflowIDReusePolicy)
	assert.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING, o.WorkflowIDConflictPolicy)
	assert.Equal(t, RolloutInput{Version: 7, SequenceIDs: []string{"analytics-series", "webinar-series"},
		Segments: []string{"analytics", "webinars"}}, starts.inputs[0])

	starts.err = serviceerror.NewWorkflowExecutionAlreadyStarted("done", "", "")
	assert.NoError(t, s.Follow(ctx, 7, set(currentCatalog()), set(proposedCatalog())), "a version rolled out already")
	starts.err = serviceerror.NewUnavailable("down")
	assert.ErrorContains(t, s.Follow(ctx, 8, set(currentCatalog()), set(proposedCatalog())), "roll out sequences version 8")

	starts.err, starts.options = nil, nil
	require.NoError(t, s.Follow(ctx, 9, set(currentCatalog()), set(currentCatalog())))
	assert.Empty(t, starts.options)
	assert.ErrorContains(t, s.Follow(ctx, 0, set(currentCatalog()), set(proposedCatalog())), "version must be positive")
}
