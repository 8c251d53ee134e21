package api

import (
	_ "embed"
	"net/http"
)

// OpenAPI is tend's HTTP API described as an OpenAPI 3.1 document. The file in the repository
// is the one served at /api/openapi.json, and openapi_test.go holds it to the router: every
// route it serves is documented, every documented route is served.
//
//go:embed openapi.json
var OpenAPI []byte

// serveOpenAPI serves the OpenAPI document. It needs no key: it describes the API, it holds no data.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(OpenAPI)
}

// routeMux is what the route groups register on: the router below, or a bare ServeMux in tests
// that serve one group alone.
type routeMux interface {
	Handle(pattern string, h http.Handler)
	HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request))
}

// router is a ServeMux that remembers the patterns registered on it, since a ServeMux cannot
// list them: the OpenAPI test compares them with the document.
type router struct {
	*http.ServeMux
	patterns []string
}

// Handle registers h for pattern and records the pattern.
func (m *router) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

// HandleFunc registers h for pattern and records the pattern.
func (m *router) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.HandleFunc(pattern, h)
}
