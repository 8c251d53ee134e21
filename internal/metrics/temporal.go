package metrics

import (
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// Temporal returns the handler that puts the Temporal SDK's own client and worker metrics
// (temporal_request, temporal_workflow_task_schedule_to_start_latency …) on the Set's registry:
// give it to client.Options.MetricsHandler. Counters and gauges keep the SDK's names; timers
// become histograms in seconds with TimerBuckets. A nil Set gives the SDK's no-op handler.
func (s *Set) Temporal() client.MetricsHandler {
	if s == nil {
		return client.MetricsNopHandler
	}
	return &temporalHandler{root: s.temporal}
}

type kind int

const (
	kindCounter kind = iota
	kindGauge
	kindTimer
)

// temporalMetrics holds the SDK's series. The SDK uses one name with several tag sets (a
// client-level request has no task_queue, a worker's has), while Prometheus wants one set of
// label names per metric name: every series of a name is exposed with the union of the tag keys
// its name was used with, an absent key as an empty value (which Prometheus reads as no label).
// The series themselves stay apart, keyed by their own tags.
type temporalMetrics struct {
	mu       sync.Mutex
	families map[string]*family
}

type family struct {
	name   string
	kind   kind
	keys   []string // sorted union of the tag keys of its series
	series map[string]*series
}

type series struct {
	tags map[string]string

	value atomic.Uint64 // a counter's count, or a gauge's float64 bits
	mu    sync.Mutex    // a timer's histogram
	count uint64
	sum   float64
	hist  []uint64 // per bucket of TimerBuckets, not cumulative
}

func newTemporalMetrics() *temporalMetrics {
	return &temporalMetrics{families: map[string]*family{}}
}

// get returns the series of name with tags, creating it; nil when name is already used by a
// metric of another kind (Prometheus allows one type per name).
func (t *temporalMetrics) get(k kind, name string, key string, tags map[string]string) *series {
	name = sanitize(name)
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.families[name]
	if f == nil {
		f = &family{name: name, kind: k, series: map[string]*series{}}
		t.families[name] = f
	}
	if f.kind != k {
		return nil
	}
	s := f.series[key]
	if s == nil {
		s = &series{tags: tags}
		if k == kindTimer {
			s.hist = make([]uint64, len(TimerBuckets))
		}
		f.series[key] = s
		for k := range tags {
			if !slices.Contains(f.keys, k) {
				f.keys = append(f.keys, k)
				slices.Sort(f.keys)
			}
		}
	}
	return s
}

// Describe sends nothing: the label names of the SDK's metrics are learnt as it uses them, so the
// collector is unchecked, and get keeps each name's labels consistent instead.
func (t *temporalMetrics) Describe(chan<- *prometheus.Desc) {}

// Collect exposes every series with its family's union of label names.
func (t *temporalMetrics) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range t.families {
		desc := prometheus.NewDesc(f.name, "Temporal SDK metric "+f.name+".", f.keys, nil)
		for _, s := range f.series {
			values := make([]string, len(f.keys))
			for i, k := range f.keys {
				values[i] = s.tags[k]
			}
			switch f.kind {
			case kindCounter:
				ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(s.value.Load()), values...)
			case kindGauge:
				ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, math.Float64frombits(s.value.Load()), values...)
			case kindTimer:
				s.mu.Lock()
				buckets := make(map[float64]uint64, len(TimerBuckets))
				var cum uint64
				for i, ub := range TimerBuckets {
					cum += s.hist[i]
					buckets[ub] = cum
				}
				m := prometheus.MustNewConstHistogram(desc, s.count, s.sum, buckets, values...)
				s.mu.Unlock()
				ch <- m
			}
		}
	}
}

// temporalHandler is client.MetricsHandler with a fixed set of tags.
type temporalHandler struct {
	root *temporalMetrics
	tags map[string]string
	key  string // the tags, canonically encoded
}

func (h *temporalHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[sanitize(k)] = v
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(merged[k])
		b.WriteByte(0)
	}
	return &temporalHandler{root: h.root, tags: merged, key: b.String()}
}

func (h *temporalHandler) Counter(name string) client.MetricsCounter {
	s := h.root.get(kindCounter, name, h.key, h.tags)
	return counterFunc(func(d int64) {
		if s != nil && d > 0 {
			s.value.Add(uint64(d))
		}
	})
}

func (h *temporalHandler) Gauge(name string) client.MetricsGauge {
	s := h.root.get(kindGauge, name, h.key, h.tags)
	return gaugeFunc(func(v float64) {
		if s != nil {
			s.value.Store(math.Float64bits(v))
		}
	})
}

func (h *temporalHandler) Timer(name string) client.MetricsTimer {
	s := h.root.get(kindTimer, name, h.key, h.tags)
	return timerFunc(func(d time.Duration) {
		if s == nil {
			return
		}
		v := d.Seconds()
		i, _ := slices.BinarySearch(TimerBuckets, v) // the first bucket whose bound is ≥ v
		s.mu.Lock()
		s.count++
		s.sum += v
		if i < len(s.hist) {
			s.hist[i]++
		}
		s.mu.Unlock()
	})
}

type (
	counterFunc func(int64)
	gaugeFunc   func(float64)
	timerFunc   func(time.Duration)
)

func (f counterFunc) Inc(d int64)          { f(d) }
func (f gaugeFunc) Update(v float64)       { f(v) }
func (f timerFunc) Record(d time.Duration) { f(d) }

// sanitize makes a metric or label name valid for Prometheus: [a-zA-Z_][a-zA-Z0-9_]*.
func sanitize(name string) string {
	ok := true
	for i, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			ok = false
			break
		}
	}
	if ok && name != "" {
		return name
	}
	b := []byte(name)
	for i, r := range b {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}
