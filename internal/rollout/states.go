package rollout

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/tendhq/tend/workflows"
)

// Querier queries workflows; client.Client is one.
type Querier interface {
	QueryWorkflowWithOptions(ctx context.Context, request *client.QueryWorkflowWithOptionsRequest) (*client.QueryWorkflowWithOptionsResponse, error)
}

// QueryStates reads lead workflow state for the dry run. Unlike a plain query it is rejected by
// the server for a closed workflow (ErrNotRunning) instead of replaying that workflow's whole
// history on a worker: the dry run asks every candidate, and a finished one has nothing to follow.
type QueryStates struct{ Client Querier }

// LeadState queries the open workflow of the lead.
func (q QueryStates) LeadState(ctx context.Context, leadID string) (*workflows.LeadState, error) {
	resp, err := q.Client.QueryWorkflowWithOptions(ctx, &client.QueryWorkflowWithOptionsRequest{
		WorkflowID:           workflows.LeadWorkflowID(leadID),
		QueryType:            workflows.QueryState,
		QueryRejectCondition: enumspb.QUERY_REJECT_CONDITION_NOT_OPEN,
	})
	if err != nil {
		if notRunning(err) {
			return nil, fmt.Errorf("query lead %s: %w", leadID, ErrNotRunning)
		}
		return nil, fmt.Errorf("query lead %s: %w", leadID, err)
	}
	if resp.QueryRejected != nil {
		return nil, fmt.Errorf("query lead %s: workflow %s: %w", leadID, resp.QueryRejected.GetStatus(), ErrNotRunning)
	}
	var st workflows.LeadState
	if err := resp.QueryResult.Get(&st); err != nil {
		return nil, fmt.Errorf("query lead %s: decode state: %w", leadID, err)
	}
	return &st, nil
}
