package api

import (
	"net/http"
	"time"

	"github.com/tendhq/tend/internal/metrics"
)

// Instrument records every request's duration in m by the pattern of the route that served it
// (r.Pattern, e.g. "GET /t/c/{token}") and the class of its status: the raw path would make a
// series per token. A nil m returns h unchanged.
func Instrument(h http.Handler, m *metrics.Set) http.Handler {
	if m == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		// The ServeMux sets the pattern on the request it is given, which is r itself.
		m.HTTPRequest(r.Pattern, sw.code(), time.Since(start))
	})
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's own writer (flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
