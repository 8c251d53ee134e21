package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/metrics"
)

// The SDK uses one metric name with different tag sets (a client call has no task_queue, a
// worker's has). Each series keeps its own tags, and every series of the name carries the same
// label names, an absent tag empty, as Prometheus wants; the scrape is valid.
func TestTemporalHandlerKeepsLabelNamesConsistentPerName(t *testing.T) {
	m := metrics.New()
	root := m.Temporal().WithTags(map[string]string{"namespace": "default", "client_name": "temporal_go"})
	root.Counter("temporal_request").Inc(2)
	worker := root.WithTags(map[string]string{"task_queue": "tend", "worker_type": "ActivityWorker"})
	worker.Counter("temporal_request").Inc(3)
	worker.Counter("temporal_request").Inc(1) // the same series again
	// WithTags overrides a key it repeats and leaves the parent alone.
	root.WithTags(map[string]string{"namespace": "other"}).Counter("temporal_request").Inc(1)
	root.Counter("temporal_request").Inc(1)

	worker.Gauge("temporal_num_pollers").Update(2)
	worker.Gauge("temporal_num_pollers").Update(5)
	timer := worker.WithTags(map[string]string{"activity_type": "SendStep"}).Timer("temporal_activity_execution_latency")
	timer.Record(20 * time.Millisecond)
	timer.Record(3 * time.Second)
	// A name already used by another kind is dropped, not exposed twice with two types.
	worker.Gauge("temporal_request").Update(99)

	_, err := m.Registry().Gather()
	require.NoError(t, err, "the registry gathers the SDK's metrics without an error")
	body := scrape(t, m)
	var requests []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "temporal_request") {
			requests = append(requests, line)
		}
	}
	assert.ElementsMatch(t, []string{
		`temporal_request{client_name="temporal_go",namespace="default",task_queue="",worker_type=""} 3`,
		`temporal_request{client_name="temporal_go",namespace="other",task_queue="",worker_type=""} 1`,
		`temporal_request{client_name="temporal_go",namespace="default",task_queue="tend",worker_type="ActivityWorker"} 4`,
	}, requests, "one series per tag set, all with the same label names; the gauge of that name is dropped")
	assert.Contains(t, body, "# TYPE temporal_request counter\n")
	assert.Contains(t, body, `temporal_num_pollers{client_name="temporal_go",namespace="default",task_queue="tend",worker_type="ActivityWorker"} 5`)
	assert.Contains(t, body, `temporal_activity_execution_latency_bucket{activity_type="SendStep",client_name="temporal_go",namespace="default",task_queue="tend",worker_type="ActivityWorker",le="0.025"} 1`)
	assert.Contains(t, body, `temporal_activity_execution_latency_bucket{activity_type="SendStep",client_name="temporal_go",namespace="default",task_queue="tend",worker_type="ActivityWorker",le="5"} 2`)
	assert.Contains(t, body, `temporal_activity_execution_latency_count{activity_type="SendStep",client_name="temporal_go",namespace="default",task_queue="tend",worker_type="ActivityWorker"} 2`)
	assert.Contains(t, body, `temporal_activity_execution_latency_sum{activity_type="SendStep",client_name="temporal_go",namespace="default",task_queue="tend",worker_type="ActivityWorker"} 3.02`)
}

// Series created concurrently (the SDK's pollers and activities run at once) are all counted.
func TestTemporalHandlerIsSafeForConcurrentUse(t *testing.T) {
	m := metrics.New()
	h := m.Temporal()
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			w := h.WithTags(map[string]string{"task_queue": "q", "poller": string(rune('a' + i%2))})
			for range 1000 {
				w.Counter("temporal_poller_start").Inc(1)
				w.Timer("temporal_request_latency").Record(time.Millisecond)
			}
		}()
	}
	for range 8 {
		<-done
	}
	body := scrape(t, m)
	assert.Contains(t, body, `temporal_poller_start{poller="a",task_queue="q"} 4000`)
	assert.Contains(t, body, `temporal_poller_start{poller="b",task_queue="q"} 4000`)
}
