package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/worker"

	"github.com/tendhq/tend/workflows"
)

// historyJSON fetches a lead workflow's history in the JSON form `temporal workflow show -o json`
// writes and the SDK's replayer reads.
func (s *stack) historyJSON(leadID string) []byte {
	s.t.Helper()
	it := s.client.GetWorkflowHistory(context.Background(), workflows.LeadWorkflowID(leadID), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(s.t, err)
		h.Events = append(h.Events, ev)
	}
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
	require.NoError(s.t, err)
	return b
}

// TestHistoriesReplay runs real lead journeys on the real server and replays their histories
// against the current workflow code. With TEND_WRITE_HISTORIES=1 it also saves them as the
// replay corpus in workflows/testdata, which workflows' replay test checks on every run.
func TestHistoriesReplay(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	code, body := s.post("/api/v1/leads", ada())
	require.Equal(t, 201, code)
	first := body["id"].(string)
	s.waitMessages(1, 30*time.Second, 0)
	// A second capture mid-sequence, for another segment: its series follows the first one.
	again := ada()
	again["interests"] = []string{"newsletter"}
	code, _ = s.post("/api/v1/leads", again)
	require.Equal(t, 200, code)
	s.waitMessages(4, 60*time.Second, 2*time.Second)

	dir := t.TempDir()
	if os.Getenv("TEND_WRITE_HISTORIES") == "1" {
		dir = filepath.Join("..", "workflows", "testdata")
	}
	path := filepath.Join(dir, "lead-two-series.json")
	require.NoError(t, os.WriteFile(path, s.historyJSON(first), 0o644))

	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflow(workflows.Lead)
	require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, path))
}
