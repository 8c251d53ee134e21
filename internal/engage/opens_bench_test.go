package engage_test

import (
	"testing"
	"time"

	"github.com/tendhq/tend/internal/engage"
)

// BenchmarkOpenRecording measures how many opens a second are stored, on a real Postgres: b.N
// pixel hits for 500 sends are queued as fast as the queue takes them, and the clock stops when
// the last one is in the events table. It uses only QueueOpen, RunOpenRecorder and the table, so
// the same benchmark runs on older versions of tend for comparison (README, Benchmarks).
// Run: go test -run '^$' -bench BenchmarkOpenRecording -benchtime 20000x ./internal/engage
func BenchmarkOpenRecording(b *testing.B) {
	o := setupOpens(b, 500)
	stop := o.run()
	defer stop()
	b.ResetTimer()
	now := time.Now()
	for i := range b.N {
		h := engage.Hit{Token: o.tokens[i%len(o.tokens)], Method: "GET", UserAgent: browserUA, At: now}
		for !o.svc.QueueOpen(h) { // full: wait for room, so that every open is measured being stored
			time.Sleep(100 * time.Microsecond)
		}
	}
	for o.storedOpens(b) < b.N {
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "opens/s")
}
