package crmhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Every stage change reaches the CRM once, in order, signed; a failure is retried, not skipped.
func TestStageChangesReachTheCRMInOrderSigned(t *testing.T) {
	ctx := context.Background()
	store := dbtest.Store(t)
	c, err := store.RecordCapture(ctx, db.Capture{Email: "ada@example.com", Source: "api", Segment: "general", Stage: "lead"})
	require.NoError(t, err)
	for _, to := range []string{"mql", "sal", "sql"} {
		require.NoError(t, store.SetStage(ctx, c.Lead.ID, to, "rep-jonas", "because "+to, nil))
	}

	var mu sync.Mutex
	var got []string
	fail := 1 // the CRM is down for the second delivery once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Tend-Signature") != Sign("s3cret", body) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var msg struct {
			StageChange db.StageChangeEvent `json:"stage_change"`
		}
		require.NoError(t, json.Unmarshal(body, &msg))
		mu.Lock()
		defer mu.Unlock()
		if msg.StageChange.To == "sal" && fail > 0 {
			fail--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got = append(got, msg.StageChange.From+"→"+msg.StageChange.To+" by "+msg.StageChange.Actor)
	}))
	defer srv.Close()

	d := &Deliverer{Store: store, URL: srv.URL, Secret: "s3cret"}
	n, err := d.Deliver(ctx)
	assert.Error(t, err, "the failure is reported")
	assert.Equal(t, 1, n)
	n, err = d.Deliver(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	n, err = d.Deliver(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing twice")
	assert.Equal(t, []string{"lead→mql by rep-jonas", "mql→sal by rep-jonas", "sal→sql by rep-jonas"}, got)

	bad := &Deliverer{Store: store, URL: srv.URL, Secret: "wrong"}
	require.NoError(t, store.SetStage(ctx, c.Lead.ID, "opportunity", "rep-jonas", "deal", nil))
	_, err = bad.Deliver(ctx)
	assert.Error(t, err, "a CRM that refuses the signature keeps the change pending")
	n, err = d.Deliver(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}
