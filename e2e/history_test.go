package e2e

import (
	"context"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"

	"github.com/tendhq/tend/workflows"
)

// historyJSON fetches a lead workflow's history in the JSON form `temporal workflow show -o json`
// writes and the SDK's replayer reads.
var payloadData = regexp.MustCompile(`"data":\s*"([A-Za-z0-9+/=]+)"`)

// historyText is the lead workflow's history as JSON followed by every payload decoded, so that a
// search for a string finds it inside signal, update and activity payloads too.
func (s *stack) historyText(leadID string) string {
	s.t.Helper()
	raw := s.historyJSON(leadID)
	var b strings.Builder
	b.Write(raw)
	for _, m := range payloadData.FindAllSubmatch(raw, -1) {
		if dec, err := base64.StdEncoding.DecodeString(string(m[1])); err == nil {
			b.WriteByte('\n')
			b.Write(dec)
		}
	}
	return b.String()
}

func (s *stack) historyJSON(leadID string) []byte {
	s.t.Helper()
	return s.runHistoryJSON(leadID, "")
}

// runHistoryJSON is historyJSON of one run of the lead's workflow ("" is the latest).
func (s *stack) runHistoryJSON(leadID, runID string) []byte {
	s.t.Helper()
	it := s.client.GetWorkflowHistory(context.Background(), workflows.LeadWorkflowID(leadID), runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
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
// against the current workflow code. With TEND_RECORD_CORPUS=1 it also adds them to the replay
// corpus in workflows/testdata (see recordScenario), which workflows' replay test checks on every run.
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

	s.recordScenario("lead-two-series", first)
}

// A long-lived lead continues as new when Temporal suggests it; the history up to there replays.
func TestContinueAsNewHistoryReplays(t *testing.T) {
	t.Parallel()
	s := setup(t, options{})
	code, body := s.post("/api/v1/leads", ada())
	require.Equal(t, 201, code)
	leadID := body["id"].(string)
	s.waitMessages(1, 30*time.Second, 0)
	ctx := context.Background()
	runID := func() string {
		d, err := s.client.DescribeWorkflowExecution(ctx, workflows.LeadWorkflowID(leadID), "")
		require.NoError(t, err)
		return d.WorkflowExecutionInfo.Execution.RunId
	}
	firstRun := runID()
	// Each engaged signal costs a few events; Temporal suggests continue-as-new at 4,096.
	for i := 0; i < 3000; i++ {
		require.NoError(t, s.client.SignalWorkflow(ctx, workflows.LeadWorkflowID(leadID), "", workflows.SignalEngaged, workflows.Engaged{Events: 1}))
		if i%100 == 99 {
			if runID() != firstRun {
				break
			}
		}
	}
	eventually(t, 60*time.Second, func() bool { return runID() != firstRun }, "continued as new")
	st := s.leadState(leadID)
	assert.GreaterOrEqual(t, st.Runs, 1)
	assert.Equal(t, "intro", st.History[0].StepID, "state carried into the new run")
	s.recordHistory("lead-continue-as-new", s.runHistoryJSON(leadID, firstRun))
}
