package rollout

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	querypb "go.temporal.io/api/query/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/tendhq/tend/workflows"
)

type jsonValue struct{ data []byte }

func (v jsonValue) HasValue() bool    { return v.data != nil }
func (v jsonValue) Get(ptr any) error { return json.Unmarshal(v.data, ptr) }

// fakeQuerier answers as the Temporal frontend does: NotFound for a lead that never had a
// workflow, a rejection for a closed one (the query asks the server to reject those), the state
// for an open one.
type fakeQuerier struct {
	asked []*client.QueryWorkflowWithOptionsRequest
}

func (f *fakeQuerier) QueryWorkflowWithOptions(_ context.Context, r *client.QueryWorkflowWithOptionsRequest) (*client.QueryWorkflowWithOptionsResponse, error) {
	f.asked = append(f.asked, r)
	switch r.WorkflowID {
	case "lead-never":
		return nil, serviceerror.NewNotFound("workflow not found")
	case "lead-closed":
		return &client.QueryWorkflowWithOptionsResponse{QueryRejected: &querypb.QueryRejected{
			Status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED}}, nil
	}
	data, _ := json.Marshal(workflows.LeadState{LeadID: "open", Status: workflows.StatusRunning, NextStep: 2})
	return &client.QueryWorkflowWithOptionsResponse{QueryResult: jsonValue{data}}, nil
}

func TestQueryStatesTellsAClosedWorkflowFromAnOpenOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := &fakeQuerier{}
	states := QueryStates{Client: q}

	_, err := states.LeadState(ctx, "never")
	assert.ErrorIs(t, err, ErrNotRunning)
	_, err = states.LeadState(ctx, "closed")
	assert.ErrorIs(t, err, ErrNotRunning)
	st, err := states.LeadState(ctx, "open")
	require.NoError(t, err)
	assert.Equal(t, 2, st.NextStep)

	for _, r := range q.asked {
		assert.Equal(t, workflows.QueryState, r.QueryType)
		assert.Equal(t, enumspb.QUERY_REJECT_CONDITION_NOT_OPEN, r.QueryRejectCondition, "a closed workflow is not replayed to answer")
	}
}
