package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/workflows"
)

// Starts starts workflows; client.Client is one.
type Starts interface {
	ExecuteWorkflow(ctx context.Context, options client.StartWorkflowOptions, workflow any, args ...any) (client.WorkflowRun, error)
}

// HeldCounter counts the held sends a resume spreads; *db.Store is one.
type HeldCounter interface {
	CountHeldSends(ctx context.Context, sequenceID, stepID string) (time.Time, int, error)
}

// Starter starts the rollout of a published version and the resume of a paused sequence or step.
// Both run as Temporal workflows, so a server that dies halfway leaves them running.
type Starter struct {
	Client    Starts
	Store     HeldCounter
	TaskQueue string // workflows.TaskQueue when ""
}

func (s *Starter) options(id string) client.StartWorkflowOptions {
	q := s.TaskQueue
	if q == "" {
		q = workflows.TaskQueue
	}
	return client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: q,
		// One rollout per version and one resume per asking: a repeated call joins the running
		// workflow, or finds the finished one and does nothing.
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}
}

// Follow starts the rollout of version, the sequences of proposed, published over current: the
// running leads of every changed or removed sequence (every lead, when the re-engagement series
// changed) are told to follow it. A change that reaches no running lead starts nothing; a version
// already rolled out, or being rolled out, is not rolled out again.
func (s *Starter) Follow(ctx context.Context, version int, current, proposed *content.Set) error {
	if version <= 0 {
		return fmt.Errorf("roll out sequences: version must be positive, got %d", version)
	}
	if current == nil || current.Catalog == nil || proposed == nil || proposed.Catalog == nil {
		return errors.New("roll out sequences: both the current and the proposed content need sequences")
	}
	sc := ScopeOf(current.Catalog, proposed.Catalog)
	if sc.Empty() {
		return nil
	}
	in := RolloutInput{Version: version, SequenceIDs: sc.Sequences, Segments: sc.Segments, ReengagementChanged: sc.Reengagement}
	_, err := s.Client.ExecuteWorkflow(ctx, s.options(RolloutWorkflowID(version)), RolloutWorkflowName, in)
	if err != nil && !alreadyStarted(err) {
		return fmt.Errorf("roll out sequences version %d: %w", version, err)
	}
	return nil
}

// Resume starts telling the leads held at sequenceID (at stepID only, unless it is "") that it
// resumed, their sends spread over ramp in the order they fell due. It returns how many sends
// were held; with none it starts nothing. Delete the pause before calling it, so that no send is
// held after the resume counted them.
func (s *Starter) Resume(ctx context.Context, sequenceID, stepID string, ramp time.Duration) (int, error) {
	if sequenceID == "" {
		return 0, errors.New("resume: the sequence id is empty")
	}
	if ramp < 0 {
		return 0, fmt.Errorf("resume %s: the ramp must not be negative, got %s", sequenceID, ramp)
	}
	at, n, err := s.Store.CountHeldSends(ctx, sequenceID, stepID)
	if err != nil {
		return 0, fmt.Errorf("resume %s/%s: %w", sequenceID, stepID, err)
	}
	if n == 0 {
		return 0, nil
	}
	in := ResumeInput{SequenceID: sequenceID, StepID: stepID, ResumedAt: at, Ramp: ramp, N: n}
	_, err = s.Client.ExecuteWorkflow(ctx, s.options(ResumeWorkflowID(sequenceID, stepID, at)), ResumeWorkflowName, in)
	if err != nil && !alreadyStarted(err) {
		return 0, fmt.Errorf("resume %s/%s: %w", sequenceID, stepID, err)
	}
	return n, nil
}

func alreadyStarted(err error) bool {
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	return errors.As(err, &started)
}
