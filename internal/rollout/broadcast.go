package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/workflows"
)

// Workflow names.
const (
	// RolloutWorkflowName tells the running leads of the changed sequences about a new version.
	RolloutWorkflowName = "ContentRollout"
	// ResumeWorkflowName tells the leads held at a paused sequence or step that it resumed.
	ResumeWorkflowName = "ContentResume"
)

// Sizes of the broadcast.
const (
	// BatchSize is how many leads one activity signals.
	BatchSize = 200
	// batchesPerRun bound a run's history (about six events a batch): the workflow continues as
	// new after this many.
	batchesPerRun = 50
	// signalsInFlight is how many signals one activity sends at once.
	signalsInFlight = 8
)

// RolloutInput is the input of the Rollout workflow, carried across continue-as-new.
type RolloutInput struct {
	// Version is the published version of the sequences the leads are told about.
	Version int `json:"version"`
	// SequenceIDs are the changed and removed sequences (for the record and the logs).
	SequenceIDs []string `json:"sequence_ids"`
	// Segments are the stored segments whose leads are told: those whose sequence, in the version
	// before, changed or was removed. They are fixed when the rollout starts, because the live
	// catalog is by then the new one, which may not know them.
	Segments []string `json:"segments"`
	// ReengagementChanged tells every lead: any may be in the re-engagement series.
	ReengagementChanged bool `json:"reengagement_changed,omitempty"`
	// Cursor is the last lead told ("" before the first).
	Cursor string `json:"cursor,omitempty"`
	// Signalled and Skipped are the totals of the runs before this one.
	Signalled int `json:"signalled,omitempty"`
	Skipped   int `json:"skipped,omitempty"`
}

// RolloutResult is how many leads were told, and how many had no open workflow.
type RolloutResult struct {
	Signalled int `json:"signalled"`
	Skipped   int `json:"skipped"`
}

// BatchInput is one page of a rollout.
type BatchInput struct {
	Version int                `json:"version"`
	Filter  db.CandidateFilter `json:"filter"`
	Cursor  string             `json:"cursor,omitempty"`
	Limit   int                `json:"limit"`
}

// BatchResult is what a page did: Next is the cursor after it; Done when no lead is left.
type BatchResult struct {
	Next      string `json:"next,omitempty"`
	Signalled int    `json:"signalled"`
	Skipped   int    `json:"skipped"`
	Done      bool   `json:"done"`
}

// batchOptions: a page is a read and 200 signals, seconds at most; it is retried without end
// (a Temporal or Postgres outage delays the rollout, never loses it). A retried page signals its
// leads again: the lead workflow ignores a version it already follows.
var batchOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 2 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
	},
}

// Rollout tells the running leads of the changed sequences, page by page, that a new version is
// published (SignalContent with ContentChange{Version}). It continues as new every 50 pages, so
// a rollout over millions of leads keeps a small history.
func Rollout(ctx workflow.Context, in RolloutInput) (RolloutResult, error) {
	ctx = workflow.WithActivityOptions(ctx, batchOptions)
	filter := db.CandidateFilter{Segments: in.Segments, All: in.ReengagementChanged}
	var a *Activities
	for batch := 0; ; batch++ {
		if batch == batchesPerRun {
			return RolloutResult{}, workflow.NewContinueAsNewError(ctx, RolloutWorkflowName, in)
		}
		var out BatchResult
		err := workflow.ExecuteActivity(ctx, a.SignalBatch, BatchInput{Version: in.Version, Filter: filter,
			Cursor: in.Cursor, Limit: BatchSize}).Get(ctx, &out)
		if err != nil {
			return RolloutResult{}, fmt.Errorf("rollout of sequences version %d after lead %q: %w", in.Version, in.Cursor, err)
		}
		in.Signalled += out.Signalled
		in.Skipped += out.Skipped
		if out.Next != "" {
			in.Cursor = out.Next
		}
		if out.Done {
			workflow.GetLogger(ctx).Info("rollout done", "version", in.Version, "signalled", in.Signalled, "skipped", in.Skipped)
			return RolloutResult{Signalled: in.Signalled, Skipped: in.Skipped}, nil
		}
	}
}

// ResumeInput is the input of the Resume workflow, carried across continue-as-new.
type ResumeInput struct {
	SequenceID string `json:"sequence_id"`
	// StepID is the resumed step; "" resumes every step of the sequence.
	StepID string `json:"step_id,omitempty"`
	// ResumedAt is the database's clock when the resume was asked for: the held sends up to it
	// are resumed, the first at ResumedAt.
	ResumedAt time.Time `json:"resumed_at"`
	// Ramp spreads the N held sends: the i-th (in the order they fell due) at ResumedAt +
	// Ramp*i/N.
	Ramp time.Duration `json:"ramp"`
	N    int           `json:"n"`
	// Cursor and Index are where the resume stands: the last held send told, and how many
	// were told before it.
	Cursor db.HeldCursor `json:"cursor"`
	Index  int           `json:"index"`
	// Signalled and Skipped are the totals of the runs before this one.
	Signalled int `json:"signalled,omitempty"`
	Skipped   int `json:"skipped,omitempty"`
}

// ResumeBatchResult is what a page of a resume did.
type ResumeBatchResult struct {
	Next      db.HeldCursor `json:"next"`
	Read      int           `json:"read"`
	Signalled int           `json:"signalled"`
	Skipped   int           `json:"skipped"`
	Done      bool          `json:"done"`
}

// Resume tells the leads held at a resumed sequence or step, in the order their sends fell due,
// when each may send (SignalContent with ContentChange{Resume, NotBefore}): spread over the ramp
// instead of all at once. When every one is told it releases their held sends.
func Resume(ctx workflow.Context, in ResumeInput) (RolloutResult, error) {
	ctx = workflow.WithActivityOptions(ctx, batchOptions)
	var a *Activities
	for batch := 0; ; batch++ {
		if batch == batchesPerRun {
			return RolloutResult{}, workflow.NewContinueAsNewError(ctx, ResumeWorkflowName, in)
		}
		var out ResumeBatchResult
		if err := workflow.ExecuteActivity(ctx, a.ResumeBatch, in).Get(ctx, &out); err != nil {
			return RolloutResult{}, fmt.Errorf("resume of %s/%s: %w", in.SequenceID, in.StepID, err)
		}
		in.Cursor, in.Index = out.Next, in.Index+out.Read
		in.Signalled += out.Signalled
		in.Skipped += out.Skipped
		if out.Done {
			break
		}
	}
	if err := workflow.ExecuteActivity(ctx, a.ReleaseHeld, in).Get(ctx, nil); err != nil {
		return RolloutResult{}, fmt.Errorf("resume of %s/%s: %w", in.SequenceID, in.StepID, err)
	}
	workflow.GetLogger(ctx).Info("resume done", "sequence", in.SequenceID, "step", in.StepID,
		"signalled", in.Signalled, "skipped", in.Skipped)
	return RolloutResult{Signalled: in.Signalled, Skipped: in.Skipped}, nil
}

// Slot is when the i-th of n held sends may go out on a resume at resumedAt over ramp.
func Slot(resumedAt time.Time, ramp time.Duration, i, n int) time.Time {
	if n <= 0 || ramp <= 0 {
		return resumedAt
	}
	return resumedAt.Add(time.Duration(int64(ramp) * int64(i) / int64(n)))
}

// Signaller signals a workflow; client.Client is one.
type Signaller interface {
	SignalWorkflow(ctx context.Context, workflowID, runID, signalName string, arg any) error
}

// Leads are the queries the activities run; *db.Store is one.
type Leads interface {
	RolloutCandidates(ctx context.Context, f db.CandidateFilter, after string, limit int) ([]db.RolloutCandidate, error)
	HeldSends(ctx context.Context, sequenceID, stepID string, asOf time.Time, after db.HeldCursor, limit int) ([]db.HeldSend, error)
	ReleaseHeldSends(ctx context.Context, sequenceID, stepID string, asOf time.Time) (int64, error)
}

// Activities are the rollout's side effects: reading leads from Postgres and signalling their
// workflows. They never start a workflow: a lead without an open one has nothing to follow.
type Activities struct {
	Store  Leads
	Signal Signaller
	Log    *slog.Logger
}

func (a *Activities) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// SignalBatch reads the next page of leads after the cursor and tells each one's workflow about
// the version.
func (a *Activities) SignalBatch(ctx context.Context, in BatchInput) (BatchResult, error) {
	limit := in.Limit
	if limit <= 0 {
		limit = BatchSize
	}
	// One lead more than the page tells whether another page follows, saving the empty last one.
	page, err := a.Store.RolloutCandidates(ctx, in.Filter, in.Cursor, limit+1)
	if err != nil {
		return BatchResult{}, err
	}
	out := BatchResult{Next: in.Cursor, Done: len(page) <= limit}
	page = page[:min(len(page), limit)]
	if len(page) == 0 {
		return out, nil
	}
	out.Next = page[len(page)-1].ID
	ids := make([]string, len(page))
	changes := make([]workflows.ContentChange, len(page))
	for i, c := range page {
		ids[i], changes[i] = c.ID, workflows.ContentChange{Version: in.Version}
	}
	out.Signalled, out.Skipped, err = a.signal(ctx, ids, changes)
	if err != nil {
		return BatchResult{}, fmt.Errorf("tell leads of version %d: %w", in.Version, err)
	}
	a.log().Info("rollout page signalled", "version", in.Version, "signalled", out.Signalled,
		"skipped", out.Skipped, "last_lead", out.Next)
	return out, nil
}

// ResumeBatch reads the next page of held sends and tells each lead its slot in the ramp. The
// slots follow from the position in the held_at order, which a retried page reads again from the
// same cursor: nothing is deleted until ReleaseHeld, after the last page.
func (a *Activities) ResumeBatch(ctx context.Context, in ResumeInput) (ResumeBatchResult, error) {
	page, err := a.Store.HeldSends(ctx, in.SequenceID, in.StepID, in.ResumedAt, in.Cursor, BatchSize+1)
	if err != nil {
		return ResumeBatchResult{}, err
	}
	out := ResumeBatchResult{Next: in.Cursor, Done: len(page) <= BatchSize}
	page = page[:min(len(page), BatchSize)]
	out.Read = len(page)
	if len(page) == 0 {
		return out, nil
	}
	last := page[len(page)-1]
	out.Next = db.HeldCursor{HeldAt: last.HeldAt, LeadID: last.LeadID, StepID: last.StepID}
	n := max(in.N, in.Index+len(page)) // held sends counted after the start never overrun the ramp
	ids := make([]string, len(page))
	changes := make([]workflows.ContentChange, len(page))
	for i, h := range page {
		ids[i] = h.LeadID
		changes[i] = workflows.ContentChange{Resume: true, NotBefore: Slot(in.ResumedAt, in.Ramp, in.Index+i, n)}
	}
	out.Signalled, out.Skipped, err = a.signal(ctx, ids, changes)
	if err != nil {
		return ResumeBatchResult{}, fmt.Errorf("resume %s/%s: %w", in.SequenceID, in.StepID, err)
	}
	a.log().Info("resume page signalled", "sequence", in.SequenceID, "step", in.StepID,
		"signalled", out.Signalled, "skipped", out.Skipped)
	return out, nil
}

// ReleaseHeld deletes the held sends the resume told: they are no longer held.
func (a *Activities) ReleaseHeld(ctx context.Context, in ResumeInput) error {
	n, err := a.Store.ReleaseHeldSends(ctx, in.SequenceID, in.StepID, in.ResumedAt)
	if err != nil {
		return err
	}
	a.log().Info("held sends released", "sequence", in.SequenceID, "step", in.StepID, "count", n)
	return nil
}

// signal sends changes[i] to the workflow of lead ids[i], a few at once. A lead without an open
// workflow is skipped; any other failure fails the page, which is retried whole.
func (a *Activities) signal(ctx context.Context, ids []string, changes []workflows.ContentChange) (signalled, skipped int, err error) {
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, signalsInFlight)
	var wg sync.WaitGroup
	for i, id := range ids {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := a.Signal.SignalWorkflow(ctx, workflows.LeadWorkflowID(id), "", workflows.SignalContent, changes[i])
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				signalled++
			case notRunning(err):
				skipped++
			case firstErr == nil:
				firstErr = fmt.Errorf("signal lead %s: %w", id, err)
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return signalled, skipped, firstErr
}

// Registry is where Register puts the workflows and activities; worker.Worker is one.
type Registry interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
	RegisterActivity(a any)
}

// Register registers the Rollout and Resume workflows and their activities.
func Register(w Registry, a *Activities) {
	w.RegisterWorkflowWithOptions(Rollout, workflow.RegisterOptions{Name: RolloutWorkflowName})
	w.RegisterWorkflowWithOptions(Resume, workflow.RegisterOptions{Name: ResumeWorkflowName})
	w.RegisterActivity(a)
}

// RolloutWorkflowID is the id of the rollout of a version: one per version, so that publishing
// twice does not tell the leads twice.
func RolloutWorkflowID(version int) string {
	return "content-rollout-sequences-" + strconv.Itoa(version)
}

// ResumeWorkflowID is the id of a resume of sequenceID/stepID at resumedAt.
func ResumeWorkflowID(sequenceID, stepID string, resumedAt time.Time) string {
	return fmt.Sprintf("content-resume-%s-%s-%d", sequenceID, stepID, resumedAt.Unix())
}
