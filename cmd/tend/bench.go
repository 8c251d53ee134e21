package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/workflows"
)

// benchSequences is the series `tend bench` runs: a first email at once, a second one stepWait
// later, so that one later email step is measured within the run, and a third a day after that, so
// every lead's workflow stays open, waiting on its timer, the way a real nurture does.
func benchSequences(stepWait time.Duration) string {
	return fmt.Sprintf(`version: 1
default_segment: bench
send_window: { cron: "* * * * *", time_zone: UTC }
segments:
  - id: bench
    interests: [analytics]
    sequence:
      id: bench-series
      exit:
        stages: [mql, sal, sql, opportunity, customer, evangelist, disqualified]
        unsubscribed: true
      steps:
        - { id: first, template: analytics-1, subject: "{{.FirstName}}%s", wait: 0s }
        - { id: later, template: analytics-2, subject: "Why your weekly report gets ignored", wait: %s }
        - { id: third, template: analytics-3, subject: "One question before Friday", wait: 24h }
`, benchFirstSubject, stepWait)
}

// benchFirstSubject ends the subject of the series' first email.
const benchFirstSubject = ", three numbers every dashboard needs"

// benchOptions are the flags of tend bench.
type benchOptions struct {
	leads, concurrency, events, batch, sample int
	timeout                                   time.Duration

	quick    bool
	jsonFile string
	// stepWait is the wait before the sequence's second email.
	stepWait time.Duration
	// ceiling is the number of bare workflows run for the engine's own ceiling (0: as many as leads).
	ceiling int
	// handRaises demo requests are posted at handRaiseRate per second for the speed to lead.
	handRaises    int
	handRaiseRate float64
	// lapses handoffs get an SLA of sla and are never answered.
	lapses int
	sla    time.Duration
	// trackFor is how long each tracking endpoint is loaded, by trackConcurrency requests in flight
	// from trackAddresses loopback source addresses.
	trackFor                         time.Duration
	trackConcurrency, trackAddresses int
	// cluster measures the topology of tend cluster, whose Temporal binaries are temporalBin and
	// sqlTool, instead of the embedded stack.
	cluster              bool
	temporalBin, sqlTool string
}

func newBenchCommand(cl *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench [--cluster] [flags]",
		Short: "measure a private stack beside the engine's ceiling: enrolment, Temporal cost, speed to lead, SLA, tracking, memory",
		Long: `Starts a private stack in a temporary directory — the embedded one of tend dev, or with
--cluster the production topology of tend cluster (the Temporal server on Postgres, 2 servers
behind a load balancer, 3 workers; make temporal-bins builds its binaries) — and measures it from
outside: the engine's bare ceiling on the same Temporal server, captures and first emails, the
history events and billable actions of a later email step and of a handoff, speed to lead, SLA
lateness, opens and clicks beside a static GIF, and the workers' memory. --json writes the result.`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	var o benchOptions
	fs.IntVar(&o.leads, "leads", 300, "leads to capture")
	fs.IntVar(&o.concurrency, "concurrency", 8, "API requests in flight at once")
	fs.IntVar(&o.events, "events", 10, "site events per lead")
	fs.IntVar(&o.batch, "batch", 10, "events per API request")
	fs.IntVar(&o.sample, "sample", 20, "leads whose Temporal histories are read")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up when the first emails have not all arrived by then")
	fs.BoolVar(&o.quick, "quick", false, "small sizes for every measurement, so the bench finishes in a couple of minutes")
	fs.StringVar(&o.jsonFile, "json", "", "also write the result as JSON to this file")
	fs.DurationVar(&o.stepWait, "step-wait", 20*time.Second, "wait before the second email, so a later email step is measured")
	fs.IntVar(&o.ceiling, "ceiling", 0, "bare workflows (one no-op activity) run for the engine's ceiling (default: as many as --leads)")
	fs.IntVar(&o.handRaises, "hand-raises", 400, "demo requests posted for the speed to lead (0 skips it)")
	fs.Float64Var(&o.handRaiseRate, "hand-raise-rate", 20, "demo requests posted per second")
	fs.IntVar(&o.lapses, "lapses", 1000, "handoffs whose SLA clocks lapse together, never answered (0 skips them)")
	fs.DurationVar(&o.sla, "sla", time.Minute, "SLA of the lapsing handoffs")
	fs.DurationVar(&o.trackFor, "track-duration", 10*time.Second, "how long each tracking endpoint is loaded (0 skips tracking)")
	fs.IntVar(&o.trackConcurrency, "track-concurrency", 32, "tracking requests in flight at once")
	fs.IntVar(&o.trackAddresses, "track-addresses", 1500, "loopback source addresses the tracking load comes from (127.0.0.2 on); tend allows each 20 hits/s")
	keep := fs.Bool("keep", false, "keep the stack's data directory")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measured part to this file (go tool pprof)")
	fs.BoolVar(&o.cluster, "cluster", false, "measure the production topology of tend cluster instead of the embedded stack")
	fs.StringVar(&o.temporalBin, "temporal-server", filepath.Join("bin", "temporal-server"), "with --cluster: the Temporal server binary (make temporal-bins)")
	fs.StringVar(&o.sqlTool, "sql-tool", filepath.Join("bin", "temporal-sql-tool"), "with --cluster: temporal-sql-tool (make temporal-bins)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if o.quick {
			o.applyQuick(cmd.Flags().Changed)
		}
		if err := o.validate(); err != nil {
			return err
		}
		return runBench(cmd.Context(), o, *keep, *cpuProfile, cl.stdout, cl.getenv)
	}
	return cmd
}

// runBench starts a private stack (the embedded one of tend dev, or the cluster topology) in a
// temporary directory, on free ports, and measures it through its own front doors: the engine's
// bare ceiling on the same Temporal server, leads captured over the HTTP API, their first emails,
// one later email step's and one handoff's history events and billable actions, site events posted
// in batches, hand-raise → handoff email (speed to lead), the lateness of escalations when many SLA
// clocks lapse together, opens and clicks beside a static GIF, and the workers' memory. It fails
// when an email is missing or arrives twice. The measuring depends only on a benchTarget, so both
// topologies are measured by the same code.
func runBench(ctx context.Context, o benchOptions, keep bool, cpuProfile string, stdout io.Writer, getenv func(string) string) error {
	dir, err := os.MkdirTemp("", "tend-bench-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintln(stdout, "data directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	seqFile := filepath.Join(dir, "bench-sequences.yaml")
	if err := os.WriteFile(seqFile, []byte(benchSequences(o.stepWait)), 0o644); err != nil {
		return err
	}
	salesFile := filepath.Join(dir, "bench-sales.yaml")
	if err := os.WriteFile(salesFile, []byte(benchSales(o.sla)), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "tend bench: %d leads, %d events each in requests of %d, %d requests in flight; %d cores (GOMAXPROCS %d)\n",
		o.leads, o.events, o.batch, o.concurrency, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	var t benchTarget
	var stop func()
	if o.cluster {
		t, stop, err = startBenchCluster(ctx, o, dir, seqFile, salesFile, stdout)
	} else {
		t, stop, err = startBenchEmbedded(ctx, dir, seqFile, salesFile, stdout, getenv)
	}
	if err != nil {
		return err
	}
	defer stop()
	b := &bench{o: o, t: t, http: &http.Client{Timeout: time.Minute},
		out: stdout, run: strconv.FormatInt(time.Now().UnixNano()%1e9, 36), res: newBenchResult(t.Topology, o)}
	// First emails are counted where they are recorded, in the sends table: the capture inbox keeps
	// only its latest messages.
	if b.store, err = db.Open(ctx, t.DatabaseURL); err != nil {
		return fmt.Errorf("connect to the stack's Postgres: %w", err)
	}
	defer b.store.Close()
	tc, err := client.Dial(client.Options{HostPort: t.Temporal, Namespace: t.Namespace, Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		return fmt.Errorf("connect to the stack's Temporal: %w", err)
	}
	defer tc.Close()
	b.temporal = tc
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	err = b.measure(ctx)
	if o.jsonFile != "" {
		// Written on a failure too: what was measured before it is still worth reading.
		if werr := b.res.write(o.jsonFile); werr != nil {
			return errors.Join(err, werr)
		}
	}
	return err
}

func waitEndpoints(ctx context.Context, data string, done <-chan error, logFile string) (endpoints, error) {
	var ep endpoints
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if raw, err := os.ReadFile(filepath.Join(data, "endpoints.json")); err == nil && json.Unmarshal(raw, &ep) == nil {
			return ep, nil
		}
		select {
		case err := <-done:
			logTail, _ := os.ReadFile(logFile)
			return ep, fmt.Errorf("the stack stopped before it was up: %v\n%s", err, logTail)
		case <-ctx.Done():
			return ep, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return ep, errors.New("the stack did not come up within 3 minutes")
		}
	}
}

type bench struct {
	o        benchOptions
	t        benchTarget
	res      *benchResult
	run      string
	http     *http.Client
	temporal client.Client
	store    *db.Store
	out      io.Writer

	leadIDs    []string
	capturedAt map[string]time.Time // by email address
	eventsFrom time.Time            // when the site events began
	// rescoresBefore is each sampled lead's rescore count before the site events.
	rescoresBefore []int
	heapBefore     uint64
	heapAfter      uint64
	rssAfter       uint64
}

func (b *bench) email(i int) string { return fmt.Sprintf("bench-%s-%d@bench.example", b.run, i) }

func (b *bench) measure(ctx context.Context) error {
	b.heapBefore, _ = memory()

	// 0. The engine's own ceiling, on the same server, before tend's work begins.
	if err := b.ceiling(ctx); err != nil {
		return err
	}

	// 1. Capture.
	b.leadIDs = make([]string, b.o.leads)
	b.capturedAt = make(map[string]time.Time, b.o.leads)
	var mu sync.Mutex
	start := time.Now()
	lat, err := b.parallel(ctx, b.o.leads, func(i int) error {
		body := fmt.Sprintf(`{"email":%q,"name":"Bench %d","interests":["analytics"],"source":"api","consent":{"granted":true,"wording_id":"bench"}}`,
			b.email(i), i)
		var res struct {
			ID string `json:"id"`
		}
		if err := b.post(ctx, "/api/v1/leads", body, http.StatusCreated, &res); err != nil {
			return err
		}
		mu.Lock()
		b.leadIDs[i] = res.ID
		b.capturedAt[b.email(i)] = time.Now()
		mu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	elapsed := time.Since(start)
	b.res.Capture = &benchRate{Count: b.o.leads, Seconds: elapsed.Seconds(), PerSecond: rate(b.o.leads, elapsed), Latency: lat}
	b.res.Capture.RatioToCeiling = b.ceilingRatio(b.res.Capture.PerSecond)
	fmt.Fprintf(b.out, "capture      %d leads in %s: %.0f/s%s; request %s\n", b.o.leads, round(elapsed), b.res.Capture.PerSecond,
		b.ofCeiling(b.res.Capture.PerSecond), lat)

	// 2. First emails.
	if err := b.firstEmails(ctx, start); err != nil {
		return err
	}
	runtime.GC()
	b.heapAfter, b.rssAfter = memory()
	// Tracking URLs are taken now, while the sink still holds the first emails.
	var opens, clicks []string
	if b.o.trackFor > 0 {
		var err error
		if opens, clicks, err = b.trackingURLs(ctx); err != nil {
			return err
		}
	}

	// 2b. One later email step, in Temporal events and actions.
	if err := b.laterStep(ctx); err != nil {
		return err
	}

	// 3. Site events.
	for _, id := range b.sampled() {
		n, err := b.rescores(ctx, id)
		if err != nil {
			return err
		}
		b.rescoresBefore = append(b.rescoresBefore, n)
	}
	if b.o.events > 0 {
		if err := b.siteEvents(ctx); err != nil {
			return err
		}
	}

	// 4. What it cost in Temporal.
	if err := b.temporalCost(ctx); err != nil {
		return err
	}

	// 5. Speed to lead and SLA lapses, watched in the SMTP sink.
	if b.o.handRaises > 0 || b.o.lapses > 0 {
		in := &benchInbox{b: b, notices: map[string]map[string]time.Time{}}
		wctx, stopWatch := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() { in.watch(wctx); close(watched) }()
		err := b.salesFigures(ctx, in)
		stopWatch()
		<-watched
		if in.missed > 0 {
			fmt.Fprintf(b.out, "             (the sink dropped %d messages before a poll saw them)\n", in.missed)
		}
		if err != nil {
			return err
		}
	}

	// 6. Tracking beside a static GIF.
	if b.o.trackFor > 0 {
		if err := b.tracking(ctx, opens, clicks); err != nil {
			return err
		}
	}

	// 7. Memory. On the cluster this process is only the load; the workers' RSS is what counts.
	if b.t.Topology == "cluster" {
		return b.workerMemory(ctx)
	}
	perLead := float64(int64(b.heapAfter)-int64(b.heapBefore)) / float64(b.o.leads)
	fmt.Fprintf(b.out, "memory       heap in use %s with %d open lead workflows (%s more than before the first capture: %s per lead); RSS %s\n",
		mib(b.heapAfter), b.o.leads, mib(b.heapAfter-min(b.heapAfter, b.heapBefore)), kib(perLead), mib(b.rssAfter))
	fmt.Fprintln(b.out, "             (one process holds the Temporal server, the worker, the API and this benchmark; Postgres runs apart)")
	return b.workerMemory(ctx)
}

func (b *bench) salesFigures(ctx context.Context, in *benchInbox) error {
	if b.o.handRaises > 0 {
		if err := b.speedToLead(ctx, in); err != nil {
			return err
		}
	}
	if b.o.lapses > 0 {
		return b.lapses(ctx, in)
	}
	return nil
}

func (b *bench) ceilingRatio(perSecond float64) float64 {
	if b.res.Ceiling == nil {
		return 0
	}
	return ratio(perSecond, b.res.Ceiling.PerSecond)
}

// inboxMessage is what the capture inbox lists.
type benchMessage struct {
	ID       string              `json:"id"`
	To       []string            `json:"to"`
	Subject  string              `json:"subject"`
	Received time.Time           `json:"received"`
	Text     string              `json:"text"`
	HTML     string              `json:"html"`
	Headers  map[string][]string `json:"headers"`
}

func (b *bench) firstEmails(ctx context.Context, start time.Time) error {
	deadline := time.Now().Add(b.o.timeout)
	var sent map[string]time.Time
	for {
		var err error
		if sent, err = b.firstSent(ctx); err != nil {
			return err
		}
		if len(sent) >= b.o.leads || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	time.Sleep(2 * time.Second) // a second copy of any email would arrive by now
	// Exactly once: a lead's step has one sends row, so a copy can only show in the inbox, which
	// keeps its latest messages; every address there must have one.
	mine, _, err := b.received(ctx)
	if err != nil {
		return err
	}
	dups := 0
	for _, got := range mine {
		dups += len(got) - 1
	}
	var delays []time.Duration
	var last time.Time
	for addr, at := range sent {
		delays = append(delays, max(0, at.Sub(b.capturedAt[addr])))
		if at.After(last) {
			last = at
		}
	}
	perSecond := rate(len(sent), last.Sub(start))
	b.res.FirstEmail = &benchRate{Count: len(sent), Seconds: last.Sub(start).Seconds(), PerSecond: perSecond,
		RatioToCeiling: b.ceilingRatio(perSecond), Latency: percentiles(delays), Duplicates: dups}
	fmt.Fprintf(b.out, "first email  %d/%d sent, %d duplicates among the %d the inbox kept; all in %s from the first capture (%.0f emails/s%s); capture→sent %s\n",
		len(sent), b.o.leads, dups, len(mine), round(last.Sub(start)), perSecond, b.ofCeiling(perSecond), summarize(delays))
	if len(sent) < b.o.leads {
		return fmt.Errorf("only %d of %d first emails were sent within %s", len(sent), b.o.leads, b.o.timeout)
	}
	if dups > 0 {
		return fmt.Errorf("%d emails arrived twice", dups)
	}
	return nil
}

// firstSent returns when each of this run's leads was sent its first email (the SMTP server's
// acceptance, as recorded), by address.
func (b *bench) firstSent(ctx context.Context) (map[string]time.Time, error) {
	rows, err := b.store.Pool().Query(ctx, `SELECT l.email, s.sent_at FROM sends s JOIN leads l ON l.id = s.lead_id
		WHERE s.sequence_id = 'bench-series' AND s.step_id = 'first' AND s.status = 'sent' AND l.email LIKE $1`,
		"bench-"+b.run+"-%")
	if err != nil {
		return nil, fmt.Errorf("count the first emails: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var addr string
		var at time.Time
		if err := rows.Scan(&addr, &at); err != nil {
			return nil, fmt.Errorf("count the first emails: %w", err)
		}
		out[addr] = at
	}
	return out, rows.Err()
}

// received returns the arrival times of the inbox's first emails to this run's leads, by address,
// and the latest of them.
func (b *bench) received(ctx context.Context) (map[string][]time.Time, time.Time, error) {
	msgs, err := b.messages(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	mine := map[string][]time.Time{}
	var last time.Time
	for _, m := range msgs {
		// The second email can come within the run (--step-wait): only the first counts here.
		if len(m.To) != 1 || !strings.HasSuffix(m.Subject, benchFirstSubject) {
			continue
		}
		if _, ok := b.capturedAt[m.To[0]]; ok {
			mine[m.To[0]] = append(mine[m.To[0]], m.Received)
			if m.Received.After(last) {
				last = m.Received
			}
		}
	}
	return mine, last, nil
}

func (b *bench) messages(ctx context.Context) ([]benchMessage, error) { return b.messagesAfter(ctx, 0) }

// messagesAfter lists the sink's messages that came after message id after (0: all it kept).
func (b *bench) messagesAfter(ctx context.Context, after uint64) ([]benchMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/messages?after=%d", b.t.Inbox, after), nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the capture inbox: %w", err)
	}
	defer resp.Body.Close()
	var msgs []benchMessage
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		return nil, fmt.Errorf("read the capture inbox: %w", err)
	}
	return msgs, nil
}

func (b *bench) siteEvents(ctx context.Context) error {
	perLead := (b.o.events + b.o.batch - 1) / b.o.batch
	b.eventsFrom = time.Now()
	lat, err := b.parallel(ctx, b.o.leads*perLead, func(n int) error {
		lead, req := n/perLead, n%perLead
		var evs []map[string]any
		for e := req * b.o.batch; e < min(b.o.events, (req+1)*b.o.batch); e++ {
			evs = append(evs, map[string]any{"id": fmt.Sprintf("bench-%d", e), "lead_id": b.leadIDs[lead], "type": "page_view",
				"url": fmt.Sprintf("https://acme.test/blog/post-%d", e), "tags": []string{"blog"}})
		}
		body, _ := json.Marshal(map[string]any{"events": evs})
		return b.post(ctx, "/api/v1/events", string(body), http.StatusOK, nil)
	})
	if err != nil {
		return fmt.Errorf("site events: %w", err)
	}
	elapsed := time.Since(b.eventsFrom)
	n := b.o.leads * b.o.events
	b.res.SiteEvents = &benchRate{Count: n, Seconds: elapsed.Seconds(), PerSecond: rate(n, elapsed), Latency: lat}
	fmt.Fprintf(b.out, "site events  %d in %d requests in %s: %.0f events/s; request %s\n", n, b.o.leads*perLead, round(elapsed),
		rate(n, elapsed), lat)
	return nil
}

// sampled returns the leads whose workflows are inspected.
func (b *bench) sampled() []string { return b.leadIDs[:min(b.o.sample, len(b.leadIDs))] }

// rescores asks a lead's workflow how many times it has rescored.
func (b *bench) rescores(ctx context.Context, leadID string) (int, error) {
	v, err := b.temporal.QueryWorkflow(ctx, workflows.LeadWorkflowID(leadID), "", workflows.QueryState)
	if err != nil {
		return 0, fmt.Errorf("query a lead workflow: %w", err)
	}
	var st struct {
		Rescores int `json:"rescores"`
	}
	if err := v.Get(&st); err != nil {
		return 0, err
	}
	return st.Rescores, nil
}

// temporalCost waits until the sampled leads have rescored their site events, then reads their
// histories: how many events each has, and how many signals and rescores the site events cost.
func (b *bench) temporalCost(ctx context.Context) error {
	leads := b.sampled()
	if len(leads) == 0 {
		return nil
	}
	var events, signals, rescores, pending int
	deadline := time.Now().Add(time.Minute)
	for i, id := range leads {
		for {
			n, err := b.rescores(ctx, id)
			if err != nil {
				return err
			}
			if b.o.events == 0 || n > b.rescoresBefore[i] || time.Now().After(deadline) {
				if b.o.events > 0 && n == b.rescoresBefore[i] {
					pending++
				}
				rescores += n - b.rescoresBefore[i]
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	time.Sleep(time.Second) // a second signal for the same events would have come by now
	for _, id := range leads {
		h, err := b.history(ctx, id)
		if err != nil {
			return err
		}
		events += h.events
		signals += h.signalsSince
	}
	f := float64(len(leads))
	tr := b.temporalResult()
	tr.Sample, tr.EventsPerLead, tr.SignalsPerLead, tr.RescoresPerLead = len(leads), float64(events)/f, float64(signals)/f, float64(rescores)/f
	fmt.Fprintf(b.out, "temporal     per lead (sample of %d): %.1f history events; the %d site events cost %.1f signals and %.1f rescores\n",
		len(leads), float64(events)/f, b.o.events, float64(signals)/f, float64(rescores)/f)
	if pending > 0 {
		return fmt.Errorf("%d sampled leads had not rescored their site events after a minute", pending)
	}
	if b.o.events > 0 {
		burst, err := b.costFigure(ctx, leads, func(_ int, h []*historypb.HistoryEvent) []*historypb.HistoryEvent {
			return fromSignal(h, b.eventsFrom)
		})
		if err != nil {
			return err
		}
		tr.EngagementBurst = burst
		fmt.Fprintf(b.out, "temporal     per engagement burst (%d site events → one signal, one rescore): %s\n", b.o.events, burst)
	}
	return nil
}

type leadHistory struct{ events, signalsSince int }

func (b *bench) history(ctx context.Context, leadID string) (leadHistory, error) {
	var h leadHistory
	it := b.temporal.GetWorkflowHistory(ctx, workflows.LeadWorkflowID(leadID), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return h, fmt.Errorf("history of a lead workflow: %w", err)
		}
		h.events++
		if b.eventsFrom.IsZero() || ev.GetEventTime().AsTime().Before(b.eventsFrom) {
			continue
		}
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil && a.GetSignalName() == workflows.SignalEngaged {
			h.signalsSince++
		}
	}
	return h, nil
}

// parallel runs do(0..n-1) on b.o.concurrency goroutines and summarises the call latencies. The
// first error stops it.
func (b *bench) parallel(ctx context.Context, n int, do func(i int) error) (benchPercentiles, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	for range b.o.concurrency {
		wg.Go(func() {
			for i := range next {
				t := time.Now()
				if err := do(i); err != nil {
					cancel(err)
					return
				}
				lat[i] = time.Since(t)
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return benchPercentiles{}, err
	}
	return percentiles(lat), nil
}

func (b *bench) post(ctx context.Context, path, body string, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.t.API+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.t.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, bytes.TrimSpace(raw))
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// summarize gives the median, 95th and 99th percentile and the maximum.
func summarize(d []time.Duration) string {
	if len(d) == 0 {
		return "-"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s", round(q(0.50)), round(q(0.95)), round(q(0.99)), round(s[len(s)-1]))
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond)
	default:
		return d.Round(10 * time.Microsecond)
	}
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// memory returns the Go heap in use and the process's resident set (0 where /proc is missing).
func memory() (heap, rss uint64) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.Lines(string(status)) {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				f := strings.Fields(v)
				if len(f) > 0 {
					kb, _ := strconv.ParseUint(f[0], 10, 64)
					rss = kb << 10
				}
			}
		}
	}
	return m.HeapInuse, rss
}

func mib(n uint64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
func kib(n float64) string {
	if n < 0 {
		n = 0
	}
	return fmt.Sprintf("%.0f KiB", n/1024)
}
