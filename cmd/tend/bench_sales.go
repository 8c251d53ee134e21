package main

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	historypb "go.temporal.io/api/history/v1"
)

// benchSales is the sales team of the bench: reps who cover every segment at every hour. A demo
// request (the speed to lead) gets an hour, so its handoffs stay quiet for the rest of the run; a
// callback request (the lapses) gets sla, and nobody answers it.
func benchSales(sla time.Duration) string {
	return fmt.Sprintf(`version: 1
calendars:
  - id: always
    time_zone: UTC
    hours:
      - { days: MON-SUN, from: "00:00", to: "24:00" }
managers:
  - { id: mgr-bench, name: Bench Manager, email: manager@bench.example }
reps:
  - { id: rep-a, name: Rep A, email: rep-a@bench.example, calendar: always, territories: ["*"], manager: mgr-bench }
  - { id: rep-b, name: Rep B, email: rep-b@bench.example, calendar: always, territories: ["*"], manager: mgr-bench }
assignment:
  strategy: round_robin
  fallback: rep-a
policies:
  - { id: speed-to-lead, hand_raise: [demo_request], response: 1h }
  - { id: lapse, hand_raise: [callback_request], response: %s }
  - { id: mql, response: 1h }
escalation:
  remind_before: 5s
  reassign_after: 2
recycle:
  not_ready_segment: bench
  cool_off: 14d
`, sla)
}

// The speed to lead's target on the cluster topology.
const speedToLeadTargetP99 = time.Second

// benchInbox watches the SMTP sink while the sales measurements run: it keeps only its latest
// 1,000 messages, so it is polled, and every notice is remembered when it is first seen.
type benchInbox struct {
	b *bench

	mu sync.Mutex
	// notices holds when each kind of notice (handoff, reminder, escalation…) about a lead, by
	// its address, reached the sink first.
	notices map[string]map[string]time.Time
	lastID  uint64
	// missed counts messages the sink dropped before a poll saw them.
	missed int
}

var noticeLead = regexp.MustCompile(`(?m)^Email: (\S+)`)

// watch polls the sink until ctx ends.
func (in *benchInbox) watch(ctx context.Context) {
	for {
		if err := in.poll(ctx); err != nil && ctx.Err() == nil {
			fmt.Fprintln(in.b.out, "             (inbox poll failed:", err, ")")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (in *benchInbox) poll(ctx context.Context) error {
	in.mu.Lock()
	after := in.lastID
	in.mu.Unlock()
	msgs, err := in.b.messagesAfter(ctx, after)
	if err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for i, m := range msgs {
		id, _ := strconv.ParseUint(m.ID, 10, 64)
		if id <= in.lastID {
			continue
		}
		if i == 0 && in.lastID > 0 && id > in.lastID+1 {
			in.missed += int(id - in.lastID - 1)
		}
		in.lastID = id
		kind := m.Headers["X-Tend-Notice"]
		lead := noticeLead.FindStringSubmatch(m.Text)
		if len(kind) == 0 || lead == nil {
			continue
		}
		byLead := in.notices[kind[0]]
		if byLead == nil {
			byLead = map[string]time.Time{}
			in.notices[kind[0]] = byLead
		}
		if _, ok := byLead[lead[1]]; !ok {
			byLead[lead[1]] = m.Received
		}
	}
	return nil
}

// arrived returns when each of addrs got a notice of kind, for those that did.
func (in *benchInbox) arrived(kind string, addrs []string) map[string]time.Time {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := map[string]time.Time{}
	for _, a := range addrs {
		if t, ok := in.notices[kind][a]; ok {
			out[a] = t
		}
	}
	return out
}

// waitNotices waits until every one of addrs got a notice of kind, or until deadline.
func (in *benchInbox) waitNotices(ctx context.Context, kind string, addrs []string, deadline time.Time) (map[string]time.Time, error) {
	for {
		got := in.arrived(kind, addrs)
		if len(got) == len(addrs) || time.Now().After(deadline) {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// salesLeads captures n leads of their own for a sales measurement and waits for their first
// emails, so that the enrolment's work is done before the measured part begins.
func (b *bench) salesLeads(ctx context.Context, prefix string, n int) (ids, addrs []string, err error) {
	ids, addrs = make([]string, n), make([]string, n)
	for i := range n {
		addrs[i] = fmt.Sprintf("%s-%s-%d@bench.example", prefix, b.run, i)
	}
	if _, err := b.parallel(ctx, n, func(i int) error {
		body := fmt.Sprintf(`{"email":%q,"name":"Bench %s %d","interests":["analytics"],"source":"api","consent":{"granted":true,"wording_id":"bench"}}`,
			addrs[i], prefix, i)
		var res struct {
			ID string `json:"id"`
		}
		if err := b.post(ctx, "/api/v1/leads", body, http.StatusCreated, &res); err != nil {
			return err
		}
		ids[i] = res.ID
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("capture the %s leads: %w", prefix, err)
	}
	deadline := time.Now().Add(b.o.timeout)
	for {
		var sent int
		err := b.store.Pool().QueryRow(ctx, `SELECT count(*) FROM sends s JOIN leads l ON l.id = s.lead_id
			WHERE s.step_id = 'first' AND s.status = 'sent' AND l.email LIKE $1`, prefix+"-"+b.run+"-%").Scan(&sent)
		if err != nil {
			return nil, nil, fmt.Errorf("count the first emails of the %s leads: %w", prefix, err)
		}
		if sent >= n || time.Now().After(deadline) {
			return ids, addrs, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// handRaise posts one hand-raise event of a lead.
func (b *bench) handRaise(ctx context.Context, kind, leadID string, i int) error {
	body := fmt.Sprintf(`{"events":[{"id":"bench-%s-%s-%d","lead_id":%q,"type":%q,"url":"https://acme.test/contact"}]}`,
		kind, b.run, i, leadID, kind)
	return b.post(ctx, "/api/v1/events", body, http.StatusOK, nil)
}

// speedToLead posts demo requests at the sustained rate asked for and times each from its post to
// the rep's handoff email in the SMTP sink.
func (b *bench) speedToLead(ctx context.Context, in *benchInbox) error {
	n := b.o.handRaises
	ids, addrs, err := b.salesLeads(ctx, "hr", n)
	if err != nil {
		return err
	}
	posted := make([]time.Time, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	every := time.Duration(float64(time.Second) / b.o.handRaiseRate)
	start := time.Now()
	for i := range n {
		// Paced against the start, not the previous post: a slow answer does not slow the rate.
		if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
		sem <- struct{}{}
		posted[i] = time.Now()
		wg.Go(func() {
			defer func() { <-sem }()
			if err := b.handRaise(ctx, "demo_request", ids[i], i); err != nil {
				errs <- err
			}
		})
	}
	postedIn := time.Since(start)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("post a demo request: %w", err)
	}
	got, err := in.waitNotices(ctx, "handoff", addrs, time.Now().Add(b.o.timeout))
	if err != nil {
		return err
	}
	var lat []time.Duration
	for i, a := range addrs {
		if at, ok := got[a]; ok {
			lat = append(lat, at.Sub(posted[i]))
		}
	}
	r := &benchSpeedToLead{HandRaises: n, RequestedRate: b.o.handRaiseRate, PostedRate: rate(n-1, postedIn), Received: len(got),
		Latency: percentiles(lat), TargetP99: ms(speedToLeadTargetP99)}
	b.res.SpeedToLead = r
	fmt.Fprintf(b.out, "speed to lead %d demo requests at %.0f/s (asked %.0f/s): %d handoff emails in the sink; post→email %s (target p99 ≤ %s on the cluster)\n",
		n, r.PostedRate, r.RequestedRate, r.Received, r.Latency, speedToLeadTargetP99)
	if len(got) < n {
		return fmt.Errorf("only %d of %d handoff emails reached the sink within %s", len(got), n, b.o.timeout)
	}
	time.Sleep(time.Second) // the workflows record their SLA clocks after the email went out
	cost, err := b.costFigure(ctx, ids[:min(b.o.sample, n)], func(i int, h []*historypb.HistoryEvent) []*historypb.HistoryEvent {
		return fromSignal(h, posted[i])
	})
	if err != nil {
		return err
	}
	b.temporalResult().Handoff = cost
	fmt.Fprintf(b.out, "temporal     per handoff (hand-raise signal → waiting on the SLA clock): %s\n", cost)
	return nil
}

// lapses hands off many leads at once with a short SLA that nobody answers, so their clocks lapse
// within the same minute, and times each escalation email against its handoff's deadline.
func (b *bench) lapses(ctx context.Context, in *benchInbox) error {
	n := b.o.lapses
	ids, addrs, err := b.salesLeads(ctx, "sla", n)
	if err != nil {
		return err
	}
	postedAt := time.Now()
	if _, err := b.parallel(ctx, n, func(i int) error { return b.handRaise(ctx, "callback_request", ids[i], i) }); err != nil {
		return fmt.Errorf("post a callback request: %w", err)
	}
	due, err := b.deadlines(ctx, "sla", n, b.o.sla, time.Now().Add(b.o.timeout))
	if err != nil {
		return err
	}
	var last, first time.Time
	for _, d := range due {
		if d.After(last) {
			last = d
		}
		if first.IsZero() || d.Before(first) {
			first = d
		}
	}
	until := last
	if now := time.Now(); now.After(until) {
		until = now
	}
	got, err := in.waitNotices(ctx, "escalation", addrs, until.Add(b.o.timeout))
	if err != nil {
		return err
	}
	var late []time.Duration
	for a, at := range got {
		if d, ok := due[a]; ok {
			late = append(late, at.Sub(d))
		}
	}
	r := &benchSLA{Lapses: n, SLASeconds: b.o.sla.Seconds(), DueSpreadSeconds: last.Sub(first).Seconds(), Escalated: len(got),
		Lateness: percentiles(late)}
	b.res.SLA = r
	fmt.Fprintf(b.out, "SLA          %d handoffs of %s due within %s of each other, unanswered: %d escalation emails in the sink; lateness %s\n",
		n, b.o.sla, round(last.Sub(first)), len(got), r.Lateness)
	if len(got) < n {
		return fmt.Errorf("only %d of %d escalation emails reached the sink within %s of the last deadline", len(got), n, b.o.timeout)
	}
	time.Sleep(time.Second)
	cost, err := b.costFigure(ctx, ids[:min(b.o.sample, n)], func(i int, h []*historypb.HistoryEvent) []*historypb.HistoryEvent {
		return fromSignal(h, postedAt)
	})
	if err != nil {
		return err
	}
	b.temporalResult().LapsedHandoff = cost
	fmt.Fprintf(b.out, "temporal     per lapsed handoff (handoff, reminder, escalation, next clock): %s\n", cost)
	return nil
}

// deadlines waits until each of the n leads of a prefix has its handoff recorded and returns the
// first assignment's first deadline (under a policy of response time sla) by the lead's address.
func (b *bench) deadlines(ctx context.Context, prefix string, n int, sla time.Duration, until time.Time) (map[string]time.Time, error) {
	for {
		// The first deadline is the handoff's time plus the policy's response time (the bench's
		// calendar is always open), not due_at: a lapse moves due_at on to the next clock, and on a
		// busy stack the first lapses come before the last handoffs are recorded.
		rows, err := b.store.Pool().Query(ctx, `SELECT l.email, h.handed_off_at + make_interval(secs => $2) FROM handoffs h
			JOIN leads l ON l.id = h.lead_id WHERE h.seq = 1 AND h.assignment = 1 AND l.email LIKE $1`,
			prefix+"-"+b.run+"-%", sla.Seconds())
		if err != nil {
			return nil, fmt.Errorf("read the deadlines: %w", err)
		}
		due := map[string]time.Time{}
		for rows.Next() {
			var a string
			var t time.Time
			if err := rows.Scan(&a, &t); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read the deadlines: %w", err)
			}
			due[a] = t
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read the deadlines: %w", err)
		}
		if len(due) >= n {
			return due, nil
		}
		if time.Now().After(until) {
			return nil, fmt.Errorf("only %d of %d handoffs were recorded in time", len(due), n)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (b *bench) temporalResult() *benchTemporal {
	if b.res.Temporal == nil {
		b.res.Temporal = &benchTemporal{}
	}
	return b.res.Temporal
}
