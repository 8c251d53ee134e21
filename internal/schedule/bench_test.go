package schedule

import (
	"testing"
	"time"
)

// BenchmarkNext computes a send time in a business-hours window — done in workflow code before
// every step.
func BenchmarkNext(b *testing.B) {
	w, err := Compile("* 9-16 * * MON-FRI", "Europe/Berlin")
	if err != nil {
		b.Fatal(err)
	}
	t := time.Date(2026, 11, 27, 18, 30, 0, 0, time.UTC) // Friday evening: the next slot is Monday
	b.ReportAllocs()
	for b.Loop() {
		_ = w.Next(t, "America/New_York")
	}
}
