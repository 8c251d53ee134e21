package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/api"
	"github.com/tendhq/tend/internal/metrics"
)

// Requests are timed by the pattern of the route that served them, never by their path: ten
// leads looked up are one series, not ten. It holds behind an outer mux too, as tend server
// mounts the API.
func TestRequestDurationIsLabelledByRoutePattern(t *testing.T) {
	m := metrics.New()
	outer := http.NewServeMux()
	outer.Handle("/", api.Instrument((&api.Server{}).Handler(), m))
	srv := httptest.NewServer(outer)
	defer srv.Close()
	for _, p := range []string{"/healthz", "/api/v1/leads/0b6a4b8e-0000-4000-8000-000000000001", "/api/v1/leads/0b6a4b8e-0000-4000-8000-000000000002"} {
		resp, err := http.Get(srv.URL + p)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	assert.Contains(t, body, `tend_http_request_duration_seconds_count{code="2xx",route="GET /healthz"} 1`)
	assert.Contains(t, body, `tend_http_request_duration_seconds_count{code="4xx",route="GET /api/v1/leads/{id}"} 2`,
		"both lookups (refused: no API key) in one series")
	assert.NotContains(t, body, "0b6a4b8e")
}
