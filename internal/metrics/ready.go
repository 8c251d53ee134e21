package metrics

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"time"
)

// Check is one dependency the process needs to do its work.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Ready answers /readyz: 200 when every check passes within timeout, else 503 naming the checks
// that failed. The answer names them only — a public port must not tell the world an internal
// address — and the errors go to log, once per change from ready to not ready.
func Ready(timeout time.Duration, log *slog.Logger, checks ...Check) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var down atomic.Bool
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		type result struct {
			name string
			err  error
		}
		results := make(chan result, len(checks))
		for _, c := range checks {
			go func() { results <- result{c.Name, c.Run(ctx)} }()
		}
		failing := []string{}
		for range checks {
			res := <-results
			if res.err != nil {
				failing = append(failing, res.name)
				if !down.Swap(true) {
					log.Warn("not ready", "check", res.name, "err", res.err)
				}
			}
		}
		slices.Sort(failing)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if len(failing) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": "unavailable", "failing": failing})
			return
		}
		if down.Swap(false) {
			log.Info("ready again")
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "ready"})
	})
}
