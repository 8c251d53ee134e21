package app_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.temporal.io/sdk/client"

	"github.com/tendhq/tend/internal/app"
	"github.com/tendhq/tend/internal/dbtest"
)

// health stands in for the Temporal frontend's health check (the test is about what /readyz
// answers, on a real Postgres).
type health struct {
	client.Client
	err error
}

func (h *health) CheckHealth(context.Context, *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	return &client.CheckHealthResponse{}, h.err
}

// /readyz is 200 only while Postgres answers and Temporal is healthy, and 503 naming which is
// not: a load balancer stops sending captures to a server that could not enrol them.
func TestReadyChecksPostgresAndTemporal(t *testing.T) {
	store := dbtest.Store(t)
	tc := &health{}
	ready := app.Ready(store, tc, nil)
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		ready.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	code, _ := get()
	assert.Equal(t, http.StatusOK, code)

	tc.err = errors.New("connection refused")
	code, body := get()
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.JSONEq(t, `{"status":"unavailable","failing":["temporal"]}`, body)

	tc.err = nil
	store.Close()
	code, body = get()
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.JSONEq(t, `{"status":"unavailable","failing":["postgres"]}`, body)
}
