// Package metrics owns tend's operator endpoints: the Prometheus metrics of tend's own work
// (emails, tracking, scores, stages, handoffs, SLA lapses, HTTP latency, queues and backlogs),
// the Temporal SDK's metrics on the same registry, and the readiness check. A *Set is made once
// per process and passed to the parts that count; its methods do nothing on a nil *Set, so a
// part built without metrics (a test) needs no checks.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// EmailOutcome is what became of one sequence step's email (tend_emails_total{outcome}).
type EmailOutcome string

// Email outcomes.
const (
	EmailSent         EmailOutcome = "sent"
	EmailTemporary    EmailOutcome = "temporary"   // a 4xx or a connection failure; retried
	EmailHardBounce   EmailOutcome = "hard_bounce" // 5.1.x: the mailbox does not exist; suppressed
	EmailRejected     EmailOutcome = "rejected"    // another permanent rejection (policy, content)
	EmailSuppressed   EmailOutcome = "suppressed"  // suppression list or consent
	EmailUnsubscribed EmailOutcome = "unsubscribed"
	EmailHeldOut      EmailOutcome = "held_out"
	EmailPaused       EmailOutcome = "paused"
	EmailSkipped      EmailOutcome = "skipped"      // the step's attribute conditions do not hold
	EmailAlreadySent  EmailOutcome = "already_sent" // a retry found the step sent: not mailed again
	EmailBadTemplate  EmailOutcome = "bad_template"
)

var emailOutcomes = []EmailOutcome{EmailSent, EmailTemporary, EmailHardBounce, EmailRejected, EmailSuppressed,
	EmailUnsubscribed, EmailHeldOut, EmailPaused, EmailSkipped, EmailAlreadySent, EmailBadTemplate}

// TimerBuckets are the histogram buckets, in seconds, of every duration tend measures: from a
// millisecond (a pixel) to minutes (an escalation sent late, a task waiting for a worker).
var TimerBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// Set is one process's metrics.
type Set struct {
	reg      *prometheus.Registry
	emails   *prometheus.CounterVec
	tracking *prometheus.CounterVec
	bounces  *prometheus.CounterVec
	scores   prometheus.Counter
	stages   *prometheus.CounterVec
	handoffs *prometheus.CounterVec
	breaches prometheus.Counter
	lateness prometheus.Histogram
	http     *prometheus.HistogramVec
	captures *prometheus.CounterVec
	enrolled *prometheus.CounterVec
	temporal *temporalMetrics
}

// New returns a Set on a registry of its own, with the Go runtime and process collectors (heap,
// goroutines, RSS) and the Temporal SDK's metrics (see Temporal).
func New() *Set {
	s := &Set{reg: prometheus.NewRegistry()}
	s.emails = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tend_emails_total",
		Help: "Sequence step emails by outcome: sent, or why not (temporary is retried)."}, []string{"outcome"})
	s.tracking = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tend_tracking_events_total",
		Help: "Engagement events stored, by kind (open, click, unsubscribe, site event types) and origin (human or machine)."},
		[]string{"kind", "origin"})
	s.bounces = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tend_bounce_reports_total",
		Help: "Bounce and complaint reports received, by kind (hard, soft, complaint) and whether they suppressed the address."},
		[]string{"kind", "suppressed"})
	s.scores = prometheus.NewCounter(prometheus.CounterOpts{Name: "tend_score_updates_total",
		Help: "Lead scores computed and stored."})
	s.stages = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tend_stage_transitions_total",
		Help: "Lifecycle stage changes by from and to stage: scoring to MQL, reps' answers, and the sales steps after acceptance."}, []string{"from", "to"})
	s.handoffs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tend_handoffs_total",
		Help: "Leads handed to a rep (kind handoff) or to another rep after lapses (kind reassignment)."}, []string{"kind"})
	s.breaches = prometheus.NewCounter(prometheus.CounterOpts{Name: "tend_sla_breaches_total",
		Help: "Handoff SLA lapses escalated: a rep did not answer by the deadline."})
	s.lateness = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tend_escalation_lateness_seconds",
		Help: "Seconds from a lapsed handoff deadline to its escalation being sent.", Buckets: TimerBuckets})
	s.http = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tend_http_request_duration_seconds",
		Help: "HTTP requests by route pattern and status class.", Buckets: TimerBuckets}, []string{"route", "code"})
	s.captures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tend_captures_total",
		Help: "Captures recorded, by whether they created a lead or updated one."}, []string{"result"})
	s.enrolled = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tend_enrollments_total",
		Help: "Enrolments of captures in their lead workflow: delivered, or deferred to the reconciler (Temporal unreachable)."},
		[]string{"result"})
	for _, o := range emailOutcomes {
		s.emails.WithLabelValues(string(o))
	}
	for _, k := range []string{"handoff", "reassignment"} {
		s.handoffs.WithLabelValues(k)
	}
	for _, r := range []string{"created", "updated"} {
		s.captures.WithLabelValues(r)
	}
	for _, r := range []string{"delivered", "deferred"} {
		s.enrolled.WithLabelValues(r)
	}
	s.temporal = newTemporalMetrics()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		s.emails, s.tracking, s.bounces, s.scores, s.stages, s.handoffs, s.breaches, s.lateness, s.http, s.captures, s.enrolled,
		s.temporal)
	return s
}

// Registry is where every metric of the Set is registered.
func (s *Set) Registry() *prometheus.Registry { return s.reg }

// Handler serves the registry in the Prometheus exposition format.
func (s *Set) Handler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Email counts one step's outcome.
func (s *Set) Email(o EmailOutcome) {
	if s != nil {
		s.emails.WithLabelValues(string(o)).Inc()
	}
}

// Tracked counts one stored engagement event. kind must come from a fixed set (tend's event
// types), never from a request.
func (s *Set) Tracked(kind string, machine bool) {
	if s == nil {
		return
	}
	origin := "human"
	if machine {
		origin = "machine"
	}
	s.tracking.WithLabelValues(kind, origin).Inc()
}

// Bounce counts a bounce or complaint report that matched a send.
func (s *Set) Bounce(kind string, suppressed bool) {
	if s != nil {
		s.bounces.WithLabelValues(kind, strconv.FormatBool(suppressed)).Inc()
	}
}

// ScoreUpdated counts a stored score.
func (s *Set) ScoreUpdated() {
	if s != nil {
		s.scores.Inc()
	}
}

// StageChanged counts a lifecycle stage change.
func (s *Set) StageChanged(from, to string) {
	if s != nil && from != to {
		s.stages.WithLabelValues(from, to).Inc()
	}
}

// HandedOff counts a handoff opened; reassignment says it went to another rep after lapses.
func (s *Set) HandedOff(reassignment bool) {
	if s == nil {
		return
	}
	kind := "handoff"
	if reassignment {
		kind = "reassignment"
	}
	s.handoffs.WithLabelValues(kind).Inc()
}

// SLABreached counts a lapse whose escalation was just sent, lateness after its deadline.
func (s *Set) SLABreached(lateness time.Duration) {
	if s == nil {
		return
	}
	s.breaches.Inc()
	s.lateness.Observe(max(lateness, 0).Seconds())
}

// HTTPRequest records one request's duration. route must be the matched route's pattern, never
// the raw path: each distinct value is a series.
func (s *Set) HTTPRequest(route string, code int, d time.Duration) {
	if s == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	s.http.WithLabelValues(route, codeClass(code)).Observe(d.Seconds())
}

func codeClass(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code/100) + "xx"
}

// Captured counts a recorded capture.
func (s *Set) Captured(created bool) {
	if s == nil {
		return
	}
	r := "updated"
	if created {
		r = "created"
	}
	s.captures.WithLabelValues(r).Inc()
}

// Enrolled counts an enrolment delivered to its workflow, or deferred to the reconciler.
func (s *Set) Enrolled(delivered bool) {
	if s == nil {
		return
	}
	r := "deferred"
	if delivered {
		r = "delivered"
	}
	s.enrolled.WithLabelValues(r).Inc()
}

// WatchQueue exposes a queue's length, read at every scrape (tend_<name>).
func (s *Set) WatchQueue(name, help string, length func() int) {
	if s != nil {
		s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tend_" + name, Help: help},
			func() float64 { return float64(length()) }))
	}
}

// OpenCounts are the open recorder's counters (engage.OpenStats).
type OpenCounts struct {
	Waiting, Dropped, Failed int64
}

// WatchOpens exposes the open recorder: its queue (tend_opens_queued) and the opens answered
// with the pixel but never stored (tend_opens_lost_total{reason="dropped"|"failed"}).
func (s *Set) WatchOpens(stats func() OpenCounts) {
	if s == nil {
		return
	}
	s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tend_opens_queued",
		Help: "Opens answered with the pixel and waiting to be stored."}, func() float64 { return float64(stats().Waiting) }))
	s.reg.MustRegister(&opensLost{stats: stats, desc: prometheus.NewDesc("tend_opens_lost_total",
		"Opens answered with the pixel but never stored: the queue was full (dropped) or the write failed (failed).",
		[]string{"reason"}, nil)})
}

type opensLost struct {
	stats func() OpenCounts
	desc  *prometheus.Desc
}

func (o *opensLost) Describe(ch chan<- *prometheus.Desc) { ch <- o.desc }
func (o *opensLost) Collect(ch chan<- prometheus.Metric) {
	st := o.stats()
	ch <- prometheus.MustNewConstMetric(o.desc, prometheus.CounterValue, float64(st.Dropped), "dropped")
	ch <- prometheus.MustNewConstMetric(o.desc, prometheus.CounterValue, float64(st.Failed), "failed")
}

// Backlog is the outbox: work written to Postgres and not yet delivered.
type Backlog struct {
	Enrollments   int64 // captures not yet delivered to their workflow
	CRMDeliveries int64 // stage changes not yet posted to the CRM webhook
}

// BacklogEvery is how often the outbox backlog is read at most, however often it is scraped.
const BacklogEvery = 15 * time.Second

// WatchBacklog exposes the outbox backlog (tend_outbox_backlog{outbox}), read with read at a
// scrape at most every BacklogEvery. A read that fails leaves the gauge out of that scrape rather
// than report a stale figure as current.
func (s *Set) WatchBacklog(read func(ctx context.Context) (Backlog, error)) {
	if s != nil {
		s.reg.MustRegister(&backlog{read: read, desc: prometheus.NewDesc("tend_outbox_backlog",
			"Outbox rows not yet delivered: enrollments (to Temporal) and crm (to the CRM webhook).", []string{"outbox"}, nil)})
	}
}

type backlog struct {
	read func(ctx context.Context) (Backlog, error)
	desc *prometheus.Desc

	mu   sync.Mutex
	at   time.Time
	last Backlog
	ok   bool
}

func (b *backlog) Describe(ch chan<- *prometheus.Desc) { ch <- b.desc }
func (b *backlog) Collect(ch chan<- prometheus.Metric) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Since(b.at) >= BacklogEvery {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		v, err := b.read(ctx)
		cancel()
		b.at, b.last, b.ok = time.Now(), v, err == nil
	}
	if !b.ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(b.desc, prometheus.GaugeValue, float64(b.last.Enrollments), "enrollments")
	ch <- prometheus.MustNewConstMetric(b.desc, prometheus.GaugeValue, float64(b.last.CRMDeliveries), "crm")
}
