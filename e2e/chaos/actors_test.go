package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// The reps of testdata/sales.yaml: those of "prompt" answer the handoff email at once; those of
// "silent" let the deadline pass and answer only after the escalation.
var (
	promptReps = []string{"ada@sales.chaos.test", "bob@sales.chaos.test"}
	silentReps = []string{"cy@sales.chaos.test", "di@sales.chaos.test"}
	manager    = "max@sales.chaos.test"
)

// steps are the subjects of the 3-step series every lead receives (both segments).
var steps = []string{"Chaos 1 of 3 for Lead", "Chaos 2 of 3 for Lead", "Chaos 3 of 3 for Lead"}

const humanAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"

var (
	pixelRe  = regexp.MustCompile(`/t/o/([A-Za-z0-9._~-]+)`)
	clickRe  = regexp.MustCompile(`/t/c/([A-Za-z0-9._~-]+)`)
	acceptRe = regexp.MustCompile(`(?m)^Accept: (\S+)\s*$`)
	titleRe  = regexp.MustCompile(`<h1>([^<]*)</h1>`)
)

// lead is one imaginary person of the run and what the harness saw of it.
type lead struct {
	i          int
	email      string
	segment    string
	handRaiser bool

	id         string
	capturedAt time.Time
	// subjects counts the marketing emails received, by subject.
	subjects map[string]int
	// sends are the send ids (X-Tend-Send) of the marketing emails received.
	sends      []string
	demoPosted bool
	// accepted is set when a rep's accept was answered accepted (or already accepted).
	accepted    bool
	eventsRound int
}

// run is the harness's state: the leads, what was answered, and the faults.
type run struct {
	s   *stack
	p   plan
	rng *rand.Rand
	f   faults
	eng *engager
	// admin talks to the admin API; keep-alive connections are dropped at each server kill.
	admin *http.Client

	mu       sync.Mutex
	leads    []*lead
	byEmail  map[string]*lead
	captured int
	// processed is how many of the sink's messages the reactor has looked at.
	processed int
	distinct  int // distinct (lead, step) emails received
	// siteEvents holds every site event the events API answered 2xx, by lead id and event id.
	siteEvents map[[2]string]string
	// eventRequests counts events API requests by outcome.
	eventRequests   map[string]int
	demoAnswered    int
	acceptsAnswered map[string]int // by outcome title
	// acceptRetries counts the accept answers that were not definite, by status and title.
	acceptRetries  map[string]int
	acceptsPending int
	demoPending    int
	strays         []string
	problems       []string
	faultsDone     bool
}

func newRun(s *stack, p plan) *run {
	r := &run{s: s, p: p, rng: rand.New(rand.NewPCG(p.seed, p.seed^0x5eed)), byEmail: map[string]*lead{},
		siteEvents: map[[2]string]string{}, eventRequests: map[string]int{}, acceptsAnswered: map[string]int{}, acceptRetries: map[string]int{},
		admin: &http.Client{Timeout: 20 * time.Second}}
	for i := range p.leads {
		l := &lead{i: i, email: fmt.Sprintf("lead-%04d@leads.chaos.test", i), segment: "prompt", subjects: map[string]int{}}
		if i%2 == 1 {
			l.segment = "silent"
		}
		l.handRaiser = i%5 == 0
		r.leads = append(r.leads, l)
		r.byEmail[l.email] = l
	}
	r.eng = &engager{r: r, answered: map[string]int{}, answeredAt: map[string][]time.Time{}, clients: map[int]*http.Client{}}
	return r
}

func (r *run) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// progress is the share of the due marketing emails received so far.
func (r *run) progress() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return float64(r.distinct) / float64(3*len(r.leads))
}

// drive runs the leads, the reps and the faults until everything due has happened (or ctx ends),
// then waits a quiet period in which a late duplicate or escalation would still show.
func (r *run) drive(ctx context.Context) {
	actx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, f := range []func(context.Context){r.capture, r.react, r.siteEventsLoop, r.eng.run, r.conduct} {
		wg.Add(1)
		go func() { defer wg.Done(); f(actx) }()
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	lastReport := time.Now()
	sig, moved := r.signature(), time.Now()
	for !r.complete() {
		select {
		case <-ctx.Done():
			r.fail("time limit reached before every due email and answer happened")
			stop()
			wg.Wait()
			return
		case <-tick.C:
		}
		if now := r.signature(); now != sig {
			sig, moved = now, time.Now()
		} else if r.faultsOver() && time.Since(moved) > stallAfter {
			// Nothing moved for longer than any retry of tend's takes: what is missing now stays
			// missing. Stop waiting and report it.
			r.fail("nothing happened for %s after the last fault; stopped waiting", stallAfter)
			break
		}
		if time.Since(lastReport) > 15*time.Second {
			lastReport = time.Now()
			r.mu.Lock()
			r.s.t.Logf("progress: %d/%d captured, %d/%d emails, %d engagement jobs queued, %d accepts pending",
				r.captured, len(r.leads), r.distinct, 3*len(r.leads), r.eng.queued(), r.acceptsPending)
			r.mu.Unlock()
		}
	}
	// Longer than the SLA: a lapse that escalates late, or an email sent twice, shows up now.
	quiet := SLA + 5*time.Second
	select {
	case <-ctx.Done():
	case <-time.After(quiet):
	}
	stop()
	wg.Wait()
	// Let the last react pass see everything the sink holds.
	r.reactOnce(context.Background(), false)
}

// stallAfter is how long the run waits, once every fault is over, with nothing happening at all
// before it stops waiting: longer than an activity stranded on a killed worker takes to be retried
// (its 2-minute start-to-close timeout and the retry's backoff).
const stallAfter = 3 * time.Minute

// signature sums up everything that can still move, to tell a slow run from a stuck one.
func (r *run) signature() [6]int {
	n := len(r.s.sink.Messages())
	r.mu.Lock()
	defer r.mu.Unlock()
	accepted := 0
	for _, l := range r.leads {
		if l.accepted {
			accepted++
		}
	}
	return [6]int{n, r.captured, r.distinct, accepted, len(r.siteEvents) + r.demoAnswered, r.eng.answeredCount()}
}

func (r *run) faultsOver() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.faultsDone
}

// complete says whether everything due has happened: all faults injected, every lead captured
// with its 3 emails and its site events answered, every hand-raiser answered by its rep, and no
// engagement request left to make.
func (r *run) complete() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.faultsDone || r.captured < len(r.leads) || r.acceptsPending > 0 || r.demoPending > 0 {
		return false
	}
	for _, l := range r.leads {
		if len(l.subjects) < len(steps) || l.eventsRound < 2 || (l.handRaiser && !l.accepted) {
			return false
		}
	}
	return r.eng.idle()
}

// conduct injects the faults at set points of the run's progress, one at a time; in a full run
// the worker is also killed every few seconds for most of it.
func (r *run) conduct(ctx context.Context) {
	defer func() { r.mu.Lock(); r.faultsDone = true; r.mu.Unlock() }()
	waitFor := func(share float64) bool {
		for r.progress() < share {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(50 * time.Millisecond):
			}
		}
		return true
	}
	var killer sync.WaitGroup
	if r.p.full {
		killer.Add(1)
		go func() {
			defer killer.Done()
			if !waitFor(0.03) {
				return
			}
			for r.progress() < 0.9 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(3*time.Second + time.Duration(r.randN(3000))*time.Millisecond):
				}
				r.killWorker()
			}
		}()
	} else {
		if !waitFor(0.10) {
			return
		}
		r.killWorker()
	}
	if waitFor(0.25) {
		r.restartPostgres(ctx)
	}
	if waitFor(0.45) {
		r.restartTemporal(ctx)
	}
	if waitFor(0.65) {
		r.killServerDuringBurst(ctx)
	}
	killer.Wait()
}

func (r *run) randN(n int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rng.IntN(n)
}

// retry calls f until it reports done, at most attempts times a second apart, or until ctx ends.
func retry(ctx context.Context, attempts int, f func() (done bool)) bool {
	for range attempts {
		if f() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Second):
		}
	}
	return false
}

// postJSON sends an admin API request and returns the status and body; err is a transport error.
func (r *run) postJSON(ctx context.Context, path string, body any) (int, []byte, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.s.base+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+r.s.apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.admin.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// capture captures every lead through the API, 4 requests in flight, retrying what fails.
func (r *run) capture(ctx context.Context) {
	next := make(chan *lead)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range next {
				interest := "alpha"
				if l.segment == "silent" {
					interest = "beta"
				}
				body := map[string]any{"email": l.email, "name": fmt.Sprintf("Lead %d", l.i), "interests": []string{interest},
					"source": "api", "consent": map[string]any{"granted": true, "wording_id": "chaos"}}
				ok := retry(ctx, 120, func() bool {
					code, raw, err := r.postJSON(ctx, "/api/v1/leads", body)
					if err != nil || (code != http.StatusCreated && code != http.StatusOK) {
						return false
					}
					var out struct {
						ID string `json:"id"`
					}
					if json.Unmarshal(raw, &out) != nil || out.ID == "" {
						return false
					}
					r.mu.Lock()
					l.id, l.capturedAt = out.ID, time.Now()
					r.captured++
					r.mu.Unlock()
					return true
				})
				if !ok && ctx.Err() == nil {
					r.fail("lead %d: capture never answered 2xx", l.i)
				}
			}
		}()
	}
	for _, l := range r.leads {
		select {
		case next <- l:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
}

// react reads what the sink received and acts on it as the leads and reps would.
func (r *run) react(ctx context.Context) {
	for ctx.Err() == nil {
		r.reactOnce(ctx, true)
		select {
		case <-ctx.Done():
		case <-time.After(150 * time.Millisecond):
		}
	}
}

func (r *run) reactOnce(ctx context.Context, act bool) {
	msgs := r.s.sink.Messages()
	r.mu.Lock()
	from := r.processed
	r.processed = len(msgs)
	r.mu.Unlock()
	for _, m := range msgs[from:] {
		if len(m.To) != 1 {
			r.fail("message %s has %d recipients", m.MessageID, len(m.To))
			continue
		}
		to := m.To[0]
		switch {
		case m.Header.Get("X-Tend-Send") != "":
			r.mu.Lock()
			l := r.byEmail[to]
			if l == nil {
				r.strays = append(r.strays, "marketing email to "+to)
				r.mu.Unlock()
				continue
			}
			l.subjects[m.Subject]++
			first := l.subjects[m.Subject] == 1
			if first {
				r.distinct++
				l.sends = append(l.sends, m.Header.Get("X-Tend-Send"))
			}
			raise := act && l.handRaiser && !l.demoPosted && len(l.subjects) >= len(steps)
			if raise {
				l.demoPosted = true
				r.demoPending++
			}
			r.mu.Unlock()
			if act && first {
				sendID := m.Header.Get("X-Tend-Send")
				if p := pixelRe.FindStringSubmatch(m.HTML); p != nil {
					r.eng.add(&job{lead: l, sendID: sendID, kind: "open", url: r.s.base + "/t/o/" + p[1]})
				}
				if c := clickRe.FindStringSubmatch(m.HTML); c != nil {
					r.eng.add(&job{lead: l, sendID: sendID, kind: "click", url: r.s.base + "/t/c/" + c[1]})
				}
			}
			if raise {
				go r.raiseHand(ctx, l)
			}
		case m.Header.Get("X-Tend-Notice") != "":
			kind := m.Header.Get("X-Tend-Notice")
			answer := (kind == "handoff" && slices.Contains(promptReps, to)) || kind == "escalation-copy"
			if !act || !answer {
				continue
			}
			a := acceptRe.FindStringSubmatch(m.Text)
			if a == nil {
				r.fail("%s notice %s to %s has no accept link", kind, m.MessageID, to)
				continue
			}
			l := r.leadOfNotice(m.Text)
			r.mu.Lock()
			r.acceptsPending++
			r.mu.Unlock()
			go r.accept(ctx, l, to, a[1])
		default:
			r.mu.Lock()
			r.strays = append(r.strays, fmt.Sprintf("unclassified message to %s: %q", to, m.Subject))
			r.mu.Unlock()
		}
	}
}

var noticeEmailRe = regexp.MustCompile(`(?m)^Email: (\S+)\s*$`)

// leadOfNotice finds the lead a notice to sales is about (its text names the lead's address).
func (r *run) leadOfNotice(text string) *lead {
	m := noticeEmailRe.FindStringSubmatch(text)
	if m == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byEmail[m[1]]
}

// raiseHand posts the lead's demo request through the events API.
func (r *run) raiseHand(ctx context.Context, l *lead) {
	defer func() { r.mu.Lock(); r.demoPending--; r.mu.Unlock() }()
	ev := map[string]any{"id": fmt.Sprintf("demo-%d", l.i), "lead_id": l.id, "type": "demo_request"}
	ok := retry(ctx, 120, func() bool {
		return r.postEvents(ctx, []map[string]any{ev})
	})
	if ok {
		r.mu.Lock()
		r.demoAnswered++
		r.mu.Unlock()
	} else if ctx.Err() == nil {
		r.fail("lead %d: demo request never answered 2xx", l.i)
	}
}

// postEvents posts a batch to the events API and records what it answered.
func (r *run) postEvents(ctx context.Context, evs []map[string]any) bool {
	code, raw, err := r.postJSON(ctx, "/api/v1/events", map[string]any{"events": evs})
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err != nil:
		r.eventRequests["no answer"]++
		return false
	case code != http.StatusOK:
		r.eventRequests[fmt.Sprint(code)]++
		return false
	}
	var out struct {
		Results []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			LeadID string `json:"lead_id"`
		} `json:"results"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Results) != len(evs) {
		r.problems = append(r.problems, fmt.Sprintf("events API answered 200 with %d results for %d events: %.200s", len(out.Results), len(evs), raw))
		return true
	}
	r.eventRequests["200"]++
	for _, res := range out.Results {
		switch res.Status {
		case "accepted", "duplicate":
			r.siteEvents[[2]string{res.LeadID, res.ID}] = res.Status
		default:
			r.problems = append(r.problems, fmt.Sprintf("event %s answered %q", res.ID, res.Status))
		}
	}
	return true
}

// siteEventsLoop posts each lead's site behaviour in two rounds: two page views a second after
// its capture, then a third five seconds later together with a repeat of the first (which must
// be answered duplicate and stored once). Up to 25 leads share a request.
func (r *run) siteEventsLoop(ctx context.Context) {
	for ctx.Err() == nil {
		var batch []map[string]any
		var leads []*lead
		r.mu.Lock()
		now := time.Now()
		for _, l := range r.leads {
			if len(leads) == 25 {
				break
			}
			if l.id == "" || l.eventsRound >= 2 {
				continue
			}
			due := l.capturedAt.Add(time.Second)
			if l.eventsRound == 1 {
				due = l.capturedAt.Add(6 * time.Second)
			}
			if now.Before(due) {
				continue
			}
			ids := []string{"a", "b"}
			if l.eventsRound == 1 {
				ids = []string{"c", "a"}
			}
			for _, id := range ids {
				batch = append(batch, map[string]any{"id": fmt.Sprintf("pv-%d-%s", l.i, id), "lead_id": l.id, "type": "page_view",
					"url": fmt.Sprintf("https://acme.test/blog/%d-%s", l.i, id), "tags": []string{"blog"}})
			}
			leads = append(leads, l)
		}
		r.mu.Unlock()
		if len(batch) > 0 && r.postEvents(ctx, batch) {
			r.mu.Lock()
			for _, l := range leads {
				l.eventsRound++
			}
			r.mu.Unlock()
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// accept answers a handoff through the accept link of a notice, as the rep would: a POST from
// the rep's own address, repeated while tend cannot answer definitely.
func (r *run) accept(ctx context.Context, l *lead, rep, link string) {
	defer func() { r.mu.Lock(); r.acceptsPending--; r.mu.Unlock() }()
	repIP := net.IPv4(127, 2, 0, byte(1+slices.Index(append(append([]string{}, promptReps...), silentReps...), rep)))
	c := publicClient(repIP)
	var outcome string
	ok := retry(ctx, 120, func() bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, link, strings.NewReader(url.Values{}.Encode()))
		if err != nil {
			return false
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("User-Agent", humanAgent)
		resp, err := c.Do(req)
		if err != nil {
			r.mu.Lock()
			r.acceptRetries["no answer"]++
			r.mu.Unlock()
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		title := ""
		if m := titleRe.FindSubmatch(body); m != nil {
			title = string(m[1])
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			outcome = title
			return true
		case resp.StatusCode == http.StatusConflict && title == "too late":
			outcome = title
			return true
		case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound:
			outcome = fmt.Sprintf("%d %s", resp.StatusCode, title)
			return true
		}
		// 409 "Not possible" (tend could not reach the workflow), 429, 5xx: try again.
		r.mu.Lock()
		r.acceptRetries[fmt.Sprintf("%d %s", resp.StatusCode, title)]++
		r.mu.Unlock()
		return false
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	if !ok {
		if ctx.Err() == nil {
			r.problems = append(r.problems, fmt.Sprintf("%s: accept link never answered definitely", rep))
		}
		return
	}
	r.acceptsAnswered[outcome]++
	if l != nil && (outcome == "accepted" || outcome == "already accepted") {
		l.accepted = true
	}
}

// publicClient makes requests from the given client address, one connection per request, and
// does not follow redirects (a click's 302 is its answer).
func publicClient(ip net.IP) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 15 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// job is one open or click a lead makes on a received email.
type job struct {
	lead      *lead
	sendID    string
	kind      string // open or click
	url       string
	attempts  int
	notBefore time.Time
}

// engager makes the leads' opens and clicks: 8 at a time, or all at once in a burst; while held,
// they wait.
type engager struct {
	r         *run
	mu        sync.Mutex
	queue     []*job
	inflight  int
	held      bool
	burstLeft int
	// answered counts the requests answered 200 (open) or 302 (click), by kind and send id.
	answered map[string]int
	// answeredAt holds when each open or click was answered, by kind and send id.
	answeredAt map[string][]time.Time
	answeredN  int
	refused    map[string]int // answers other than 200/302, by kind and status
	noAnswer   int
	gaveUp     int
	clients    map[int]*http.Client
}

func (e *engager) add(j *job) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.queue = append(e.queue, j)
}

func (e *engager) hold(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.held = on
}

// burst lets the next n jobs run all at once.
func (e *engager) burst(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.burstLeft, e.held = n, false
}

func (e *engager) queued() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.queue)
}

func (e *engager) answeredCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.answeredN
}

func (e *engager) idle() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.queue) == 0 && e.inflight == 0
}

func (e *engager) run(ctx context.Context) {
	for ctx.Err() == nil {
		e.mu.Lock()
		now := time.Now()
		limit := 8
		if e.burstLeft > 0 {
			limit = 64
		}
		var rest []*job
		for _, j := range e.queue {
			if e.held || e.inflight >= limit || j.notBefore.After(now) {
				rest = append(rest, j)
				continue
			}
			e.inflight++
			e.burstLeft = max(0, e.burstLeft-1)
			go e.do(ctx, j)
		}
		e.queue = rest
		e.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (e *engager) client(l *lead) *http.Client {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.clients[l.i]
	if c == nil {
		c = publicClient(freeLoopback(l.i))
		e.clients[l.i] = c
	}
	return c
}

func (e *engager) do(ctx context.Context, j *job) {
	want := http.StatusOK
	if j.kind == "click" {
		want = http.StatusFound
	}
	code := 0
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err == nil {
		req.Header.Set("User-Agent", humanAgent)
		var resp *http.Response
		if resp, err = e.client(j.lead).Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.inflight--
	if code == want {
		e.answered[j.kind+"|"+j.sendID]++
		e.answeredAt[j.kind+"|"+j.sendID] = append(e.answeredAt[j.kind+"|"+j.sendID], time.Now())
		e.answeredN++
		return
	}
	if code == 0 {
		e.noAnswer++
	} else {
		if e.refused == nil {
			e.refused = map[string]int{}
		}
		e.refused[fmt.Sprintf("%s %d", j.kind, code)]++
	}
	j.attempts++
	if j.attempts >= 60 || ctx.Err() != nil {
		e.gaveUp++
		return
	}
	j.notBefore = time.Now().Add(time.Second)
	e.queue = append(e.queue, j)
}
