package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/api"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/metrics"
	"github.com/tendhq/tend/workflows"
)

// noDecider enables the sales routes; the steps after acceptance never reach the workflow.
type noDecider struct{}

func (noDecider) Decide(context.Context, string, workflows.Decision) (workflows.DecisionResult, error) {
	return workflows.DecisionResult{}, nil
}

// The stage changes a rep makes through the API after acceptance — qualify, opportunity, won,
// lost — are counted in tend_stage_transitions_total like the workflows' own, each once: a step
// the lead's stage refuses, or one repeated on a lead already there, counts nothing.
func TestSalesStagesAreCountedOnce(t *testing.T) {
	ctx := context.Background()
	store := dbtest.Store(t)
	set := metrics.New()
	hs := httptest.NewServer((&api.Server{Store: store, APIKeys: []string{apiKey}, Decider: noDecider{}, Metrics: set}).Handler())
	t.Cleanup(hs.Close)
	lead := func(email string) string {
		t.Helper()
		c, err := store.RecordCapture(ctx, db.Capture{Email: email, Source: "api", Segment: "general", Stage: "lead"})
		require.NoError(t, err)
		require.NoError(t, store.SetStage(ctx, c.Lead.ID, "sal", "rep-1", "accepted", nil))
		return c.Lead.ID
	}
	step := func(id, step, body string) int {
		t.Helper()
		return do(t, http.MethodPost, hs.URL+"/api/v1/leads/"+id+"/"+step, strings.NewReader(body)).Code
	}
	bant := `{"rep_id":"rep-1","budget":"50k","authority":"CTO","need":"reporting","timeframe":"Q3"}`
	won := `{"rep_id":"rep-1","value":1200,"currency":"eur"}`

	ana := lead("ana@example.com")
	assert.Equal(t, http.StatusConflict, step(ana, "won", won), "no opportunity yet")
	assert.Equal(t, http.StatusOK, step(ana, "qualify", bant))
	assert.Equal(t, http.StatusOK, step(ana, "qualify", bant), "qualified again: the lead stays SQL")
	assert.Equal(t, http.StatusOK, step(ana, "opportunity", `{"rep_id":"rep-1"}`))
	assert.Equal(t, http.StatusOK, step(ana, "won", won))
	assert.Equal(t, http.StatusConflict, step(ana, "lost", `{"rep_id":"rep-1","reason":"budget cut"}`), "already won")

	bo := lead("bo@example.com")
	assert.Equal(t, http.StatusOK, step(bo, "qualify", bant))
	assert.Equal(t, http.StatusOK, step(bo, "opportunity", `{"rep_id":"rep-1"}`))
	assert.Equal(t, http.StatusOK, step(bo, "lost", `{"rep_id":"rep-1","reason":"budget cut"}`))

	rec := httptest.NewRecorder()
	set.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	var lines []string
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(l, "tend_stage_transitions_total{") {
			lines = append(lines, l)
		}
	}
	assert.ElementsMatch(t, []string{
		`tend_stage_transitions_total{from="sal",to="sql"} 2`,
		`tend_stage_transitions_total{from="sql",to="opportunity"} 2`,
		`tend_stage_transitions_total{from="opportunity",to="customer"} 1`,
		`tend_stage_transitions_total{from="opportunity",to="recycled"} 1`,
	}, lines)
}
