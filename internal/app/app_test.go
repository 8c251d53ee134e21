package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/tendhq/tend/internal/app"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/pgtest"
	"github.com/tendhq/tend/internal/track"
	"github.com/tendhq/tend/workflows"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// signals stands in for Temporal: it records the engaged signals (the test is about the order in
// which the server's background work stops, not about workflows).
type signals struct {
	client.Client
	mu      sync.Mutex
	engaged map[string]bool
}

func (s *signals) SignalWithStartWorkflow(_ context.Context, workflowID, signal string, _ any, _ client.StartWorkflowOptions,
	_ any, _ ...any) (client.WorkflowRun, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if signal == workflows.SignalEngaged {
		s.engaged[workflowID] = true
	}
	return nil, nil
}

// Opens answered just before the server stops are stored during the stop, and their leads' workflows
// are still told: the coalescer outlives the open recorder.
func TestStopStoresQueuedOpensAndSignalsTheirLeads(t *testing.T) {
	ctx := context.Background()
	store := dbtest.Store(t)
	keys, err := track.ParseKeys(track.GenerateKey("k1"))
	require.NoError(t, err)
	temporal := &signals{engaged: map[string]bool{}}
	a := app.NewAPI(app.APIDeps{Store: store, Temporal: temporal, Keys: keys, Heuristics: track.DefaultHeuristics(),
		NotifyEvery: time.Hour})
	hs := httptest.NewServer(a.Handler)
	defer hs.Close()

	const leads = 50
	var want []string
	for i := range leads {
		c, err := store.RecordCapture(ctx, db.Capture{Email: fmt.Sprintf("reader%d@example.com", i), Source: "test", Segment: "general", Stage: "lead"})
		require.NoError(t, err)
		claim, err := store.ClaimSend(ctx, db.SendKey{LeadID: c.Lead.ID, SequenceID: "general", StepID: "one"}, "welcome", "mail.example.com")
		require.NoError(t, err)
		require.NoError(t, claim.MarkSent(ctx, "Welcome", 250))
		want = append(want, workflows.LeadWorkflowID(c.Lead.ID))
		token := keys.Sign(track.Token{Kind: track.KindOpen, SendID: uuid.MustParse(claim.Send.ID)})
		req, _ := http.NewRequest(http.MethodGet, hs.URL+"/t/o/"+token, nil)
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}

	runCtx, stop := context.WithCancel(ctx)
	stop() // the server stops before its recorder has stored anything
	done := make(chan struct{})
	go func() {
		a.Run(runCtx, time.Hour)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}

	var stored int
	require.NoError(t, store.Pool().QueryRow(ctx, `SELECT count(*) FROM events WHERE type = 'open'`).Scan(&stored))
	assert.Equal(t, leads, stored, "every answered open is stored by the time Run returns")
	temporal.mu.Lock()
	defer temporal.mu.Unlock()
	var got []string
	for id := range temporal.engaged {
		got = append(got, id)
	}
	assert.ElementsMatch(t, want, got, "every lead with a stored open is signalled before Run returns")
}
