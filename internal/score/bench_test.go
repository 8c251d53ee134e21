package score

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkScore1000Events scores a lead with 1,000 events against the example model — the work of
// one Rescore activity for a very active lead.
func BenchmarkScore1000Events(b *testing.B) {
	m, err := Load("../../examples/scoring.yaml")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	types := []string{"open", "click", "page_view", "content_download", "webinar_registration"}
	var events []Event
	for i := range 1000 {
		events = append(events, Event{ID: fmt.Sprint(i), Type: types[i%len(types)], Tags: []string{"pricing"},
			At: now.Add(-time.Duration(i) * time.Hour)})
	}
	lead := Lead{Attributes: map[string]string{"company_size": "1000+", "industry": "software"}}
	b.ReportAllocs()
	for b.Loop() {
		_ = m.Score(lead, events, now)
	}
}
