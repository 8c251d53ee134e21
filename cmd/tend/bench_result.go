package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"
)

// benchResult is everything one `tend bench` run measured, as `--json FILE` writes it, so that
// BENCHMARKS.md's table and a comparison between the embedded and the cluster topology are read
// from files rather than copied from a terminal. A section a run skipped stays null. Durations are
// milliseconds, rates per second.
type benchResult struct {
	// Topology says what was measured: "embedded" (tend bench) or "cluster" (tend bench --cluster).
	Topology   string         `json:"topology"`
	StartedAt  time.Time      `json:"started_at"`
	Machine    benchMachine   `json:"machine"`
	Options    map[string]any `json:"options"`
	Ceiling    *benchCeiling  `json:"ceiling"`
	Capture    *benchRate     `json:"capture"`
	FirstEmail *benchRate     `json:"first_email"`
	SiteEvents *benchRate     `json:"site_events"`
	Temporal   *benchTemporal `json:"temporal"`
	// SpeedToLead is hand-raise event posted → the rep's handoff email in the SMTP sink.
	SpeedToLead *benchSpeedToLead `json:"speed_to_lead"`
	// SLA is escalation email in the SMTP sink − the handoff's deadline, for clocks that lapse together.
	SLA      *benchSLA      `json:"sla"`
	Tracking *benchTracking `json:"tracking"`
	Memory   *benchMemory   `json:"memory"`
}

// benchMachine is where the run happened.
type benchMachine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
}

// benchPercentiles summarises latencies, in milliseconds.
type benchPercentiles struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// benchCeiling is the engine's own end-to-end rate on the same Temporal server in the same run: a
// bare workflow that runs one no-op activity and completes, started and awaited by the bench.
type benchCeiling struct {
	Workflows   int              `json:"workflows"`
	Concurrency int              `json:"concurrency"`
	Seconds     float64          `json:"seconds"`
	PerSecond   float64          `json:"per_second"`
	Latency     benchPercentiles `json:"latency"`
}

// benchRate is a count done in a time, and its ratio to the bare ceiling where one applies.
type benchRate struct {
	Count     int     `json:"count"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	// RatioToCeiling is PerSecond over the bare workflow's end-to-end rate (0 when not measured).
	RatioToCeiling float64 `json:"ratio_to_ceiling,omitempty"`
	// Latency is each request's, or for emails capture → sent.
	Latency    benchPercentiles `json:"latency"`
	Duplicates int              `json:"duplicates,omitempty"`
}

// benchTemporal is what the lead workflows cost in Temporal: history events and billable actions
// (see countCost for the counting rules).
type benchTemporal struct {
	Sample          int     `json:"sample"`
	EventsPerLead   float64 `json:"events_per_lead"`
	SignalsPerLead  float64 `json:"site_event_signals_per_lead"`
	RescoresPerLead float64 `json:"site_event_rescores_per_lead"`
	// EngagementBurst is from the signal a burst of site events set off to the end of the history.
	EngagementBurst *benchCostFigure `json:"engagement_burst"`
	// Enrolment is from the capture's signal-with-start through the first email's activity.
	Enrolment *benchCostFigure `json:"enrolment"`
	// LaterEmailStep is one email step after the first: from the first email's activity being
	// scheduled (exclusive) to the second's (inclusive), timer and all.
	LaterEmailStep *benchCostFigure `json:"later_email_step"`
	// Handoff is from the hand-raise's signal to the workflow waiting on the rep's SLA clock.
	Handoff *benchCostFigure `json:"handoff"`
	// LapsedHandoff is a handoff whose SLA lapses: the handoff, the reminder and the escalation.
	LapsedHandoff *benchCostFigure `json:"lapsed_handoff"`
}

// benchCostFigure is the mean cost of one unit of work over a sample of leads.
type benchCostFigure struct {
	Sample  int     `json:"sample"`
	Events  float64 `json:"history_events"`
	Actions float64 `json:"billable_actions"`
	// ActionsByKind splits Actions by countCost's kinds, per unit too.
	ActionsByKind map[string]float64 `json:"actions_by_kind,omitempty"`
	// TargetEvents is the most history events the unit should take (0: no target).
	TargetEvents float64 `json:"target_history_events,omitempty"`
}

// benchSpeedToLead is the hand-raise → handoff email figure.
type benchSpeedToLead struct {
	HandRaises    int     `json:"hand_raises"`
	RequestedRate float64 `json:"requested_per_second"`
	// PostedRate is the rate the hand-raises were actually posted at.
	PostedRate float64          `json:"posted_per_second"`
	Received   int              `json:"received"`
	Latency    benchPercentiles `json:"latency"`
	TargetP99  float64          `json:"target_p99_ms"`
}

// benchSLA is the lateness of escalations when many clocks lapse within the same minute.
type benchSLA struct {
	Lapses     int     `json:"lapses"`
	SLASeconds float64 `json:"sla_seconds"`
	// DueSpread is the time between the first and the last deadline.
	DueSpreadSeconds float64          `json:"due_spread_seconds"`
	Escalated        int              `json:"escalated"`
	Lateness         benchPercentiles `json:"lateness"`
}

// benchTracking sets tend's open and click endpoints beside a static 1×1 GIF served by net/http in
// the bench process, each loaded from many loopback source addresses.
type benchTracking struct {
	SourceAddresses int       `json:"source_addresses"`
	Concurrency     int       `json:"concurrency"`
	Static          benchLoad `json:"static_gif"`
	Opens           benchLoad `json:"opens"`
	Clicks          benchLoad `json:"clicks"`
	// OpenRatio and ClickRatio are tend's rate over the static GIF's.
	OpenRatio   float64 `json:"open_ratio"`
	ClickRatio  float64 `json:"click_ratio"`
	TargetRatio float64 `json:"target_ratio"`
	TargetP99   float64 `json:"target_p99_ms"`
}

// benchLoad is one endpoint under a closed-loop load.
type benchLoad struct {
	Requests int `json:"requests"`
	OK       int `json:"ok"`
	Limited  int `json:"limited"` // 429: the per-address limiter refused
	Failed   int `json:"failed"`
	// FailedBy counts the failures by what they were: an HTTP status, or the transport's error.
	FailedBy map[string]int `json:"failed_by,omitempty"`
	// Recorded is how many events tend stored for the load (opens and clicks; a duplicate or
	// machine hit is stored too, flagged), counted in its database a moment after the load.
	Recorded  int              `json:"recorded,omitempty"`
	Seconds   float64          `json:"seconds"`
	PerSecond float64          `json:"per_second"` // successful answers per second
	Latency   benchPercentiles `json:"latency"`
}

// benchMemory is the worker's resident memory with the lead workflows open at the end.
type benchMemory struct {
	// Source is "metrics" (process_resident_memory_bytes of each worker) or "process" (this
	// process, which in the embedded topology is the worker too).
	Source            string   `json:"source"`
	WorkerRSSBytes    []uint64 `json:"worker_rss_bytes"`
	HeapInUseBytes    uint64   `json:"heap_in_use_bytes,omitempty"`
	OpenLeadWorkflows int      `json:"open_lead_workflows"`
}

func newBenchResult(topology string, o benchOptions) *benchResult {
	return &benchResult{Topology: topology, StartedAt: time.Now().UTC(),
		Machine: benchMachine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()},
		Options: o.describe()}
}

// write stores the result as indented JSON.
func (r *benchResult) write(path string) error {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("write the bench result: %w", err)
	}
	return nil
}

// percentiles summarises d: the value below which that share of the samples lie (nearest rank).
func percentiles(d []time.Duration) benchPercentiles {
	if len(d) == 0 {
		return benchPercentiles{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(p float64) float64 {
		return ms(s[min(len(s)-1, int(p*float64(len(s))))])
	}
	return benchPercentiles{Count: len(s), P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// String prints the summary as the report's lines do.
func (p benchPercentiles) String() string {
	if p.Count == 0 {
		return "-"
	}
	d := func(v float64) time.Duration { return round(time.Duration(v * float64(time.Millisecond))) }
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s", d(p.P50), d(p.P95), d(p.P99), d(p.Max))
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}
