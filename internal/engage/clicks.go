package engage

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/track"
)

// Click recording. A click is stored before its redirect is answered: the redirect needs the URL
// stored for the send and link anyway, and a person's click is never lost to a crash. Clicks that
// arrive together are stored together (a group commit): the click that finds its shard idle
// writes, for itself and every click queued behind it meanwhile, one read of their sends and
// links, one index probe per link of when a person last clicked it, and one COPY, then hands the
// next batch to the first click that queued during its write. The busier the endpoint, the larger
// the batches; an idle one writes each click at once. The shards split clicks by send, so a
// send's clicks are judged one after another and a double click counts once. Nothing waits in
// memory after its answer, so a graceful stop has nothing of clicks to drain: the HTTP server's
// shutdown waits for the requests in flight.

// clickWriteTimeout bounds one batch's writing: a batch is written for several requests, so no
// single request's context may cancel it.
const clickWriteTimeout = 10 * time.Second

type clickGroup struct {
	init   sync.Once
	shards []clickShard
}

type clickShard struct {
	mu      sync.Mutex
	busy    bool // a click of the shard is writing a batch
	pending []*clickReq
}

type clickReq struct {
	hit    Hit
	link   int
	sendID string
	res    chan clickResult // one value: the result, or the turn to write the next batch
	// answered is set by the batch's writer once it has sent the result.
	answered bool
}

type clickResult struct {
	write  bool // this click writes the next batch
	url    string
	err    error
	notYet bool // the send is not recorded as sent (yet)
}

func (s *Service) clickShards() []clickShard {
	g := &s.clicks
	g.init.Do(func() {
		n := s.ClickWriters
		if n <= 0 {
			n = s.writers()
		}
		g.shards = make([]clickShard, n)
	})
	return g.shards
}

// Click records a click and returns the URL recorded for that send and link — never a URL from
// the request. The event is stored before Click returns.
func (s *Service) Click(ctx context.Context, h Hit) (string, error) {
	t, sendID, err := s.verify(h.Token, track.KindClick)
	if err != nil {
		return "", err
	}
	// Only a token tend signed can wait (up to RecordWait) for a send still being recorded.
	deadline := time.Now().Add(RecordWait)
	for {
		r := s.submitClick(ctx, &clickReq{hit: h, link: t.Link, sendID: sendID})
		if !r.notYet {
			return r.url, r.err
		}
		if time.Now().After(deadline) {
			return "", ErrInvalidLink
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// submitClick queues the click on its send's shard and returns once it is stored, writing the
// shard's batch itself when the shard is idle or hands it the turn.
func (s *Service) submitClick(ctx context.Context, req *clickReq) clickResult {
	shards := s.clickShards()
	hash := fnv.New32a()
	_, _ = hash.Write([]byte(req.sendID))
	sh := &shards[hash.Sum32()%uint32(len(shards))]
	req.res = make(chan clickResult, 1)

	sh.mu.Lock()
	sh.pending = append(sh.pending, req)
	write := !sh.busy
	sh.busy = true
	sh.mu.Unlock()
	if !write {
		if r := <-req.res; !r.write {
			return r
		}
	}
	limit := s.ClickBatch
	if limit <= 0 {
		limit = 500
	}
	sh.mu.Lock()
	n := min(limit, len(sh.pending)) // the batch starts with req: it is the first queued
	batch := sh.pending[:n:n]
	sh.pending = sh.pending[n:]
	sh.mu.Unlock()

	s.writeClicks(ctx, sh, batch)
	return <-req.res
}

// writeClicks records a batch and passes the turn on, even if recording panics (a bug): then each
// click of the batch not yet answered gets an error, so no request of the shard waits forever.
func (s *Service) writeClicks(ctx context.Context, sh *clickShard, batch []*clickReq) {
	defer func() {
		if p := recover(); p != nil {
			for _, r := range batch {
				if !r.answered {
					r.res <- clickResult{err: fmt.Errorf("record click: %v", p)}
				}
			}
			s.log().Error("record clicks: panic", "panic", p)
		}
		sh.mu.Lock()
		if len(sh.pending) == 0 {
			sh.busy = false
		} else {
			sh.pending[0].res <- clickResult{write: true}
		}
		sh.mu.Unlock()
	}()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), clickWriteTimeout)
	defer cancel()
	s.recordClicks(wctx, batch)
}

// recordClicks stores a batch of clicks as Click would one by one, and answers each.
func (s *Service) recordClicks(ctx context.Context, batch []*clickReq) {
	answer := func(r *clickReq, res clickResult) {
		r.answered = true
		r.res <- res
	}
	sends, links := make([]string, 0, len(batch)), make([]int, 0, len(batch))
	seen := map[db.SendLinkKey]bool{}
	for _, r := range batch {
		k := db.SendLinkKey{SendID: r.sendID, Link: r.link}
		if !seen[k] {
			seen[k] = true
			sends, links = append(sends, r.sendID), append(links, r.link)
		}
	}
	targets, err := s.Store.ClickTargets(ctx, sends, links)
	if err != nil {
		for _, r := range batch {
			answer(r, clickResult{err: err})
		}
		return
	}

	var reqs []*clickReq
	var events []db.Event
	var sent []db.SentMessage
	for _, r := range batch {
		t, ok := targets[db.SendLinkKey{SendID: r.sendID, Link: r.link}]
		switch {
		case !ok:
			answer(r, clickResult{notYet: true})
			continue
		case !t.LinkFound:
			answer(r, clickResult{err: ErrInvalidLink})
			continue
		}
		h := r.hit
		v := s.Heuristics.Classify(track.Hit{Kind: track.KindClick, Method: h.Method, UserAgent: h.UserAgent, At: h.At,
			SentAt: t.SentAt, Purpose: h.Purpose})
		idx := r.link
		e := db.Event{LeadID: t.LeadID, Type: "click", SendID: r.sendID, LinkIndex: &idx, URL: t.Link.URL, UserAgent: h.UserAgent,
			Machine: v.Machine, MachineReason: v.Reason, OccurredAt: h.At}
		if t.Link.Tag != "" {
			e.Tags = []string{t.Link.Tag}
		}
		reqs, events, sent = append(reqs, r), append(events, e), append(sent, t.SentMessage)
	}
	if len(events) == 0 {
		return
	}
	if err := s.judgeClicks(ctx, events, sent); err != nil {
		for _, r := range reqs {
			answer(r, clickResult{err: err})
		}
		return
	}
	errs := s.storeClicks(ctx, events)
	for i, r := range reqs {
		e := events[i]
		if errs[i] != nil {
			answer(r, clickResult{err: errs[i]})
			continue
		}
		s.Metrics.Tracked("click", e.Machine)
		if !e.Machine && !e.Duplicate {
			s.notify(e.LeadID)
		}
		answer(r, clickResult{url: e.URL})
	}
}

// judgeClicks marks each person's click of the batch, in order, as a duplicate (its link clicked
// by a person within DedupeWindow, stored or earlier in the batch) or as machine (every link of
// the message clicked within AllLinksWindow: a scanner walked the message). Of the stored clicks
// it asks only when each link was last clicked by a person — one index probe per link of each
// send in the batch, however often the send was clicked before.
func (s *Service) judgeClicks(ctx context.Context, events []db.Event, sent []db.SentMessage) error {
	h := s.Heuristics
	window := max(h.DedupeWindow, h.AllLinksWindow)
	if window <= 0 {
		return nil
	}
	allLinks := func(links int) bool { return h.AllLinksWindow > 0 && links >= 2 }
	// The links to probe and the span of the batch's person-made clicks, by send.
	type span struct {
		first, last time.Time
		links       map[int]bool
	}
	spans := map[string]*span{}
	var order []string
	for i, e := range events {
		if e.Machine {
			continue
		}
		sp := spans[e.SendID]
		if sp == nil {
			sp = &span{first: e.OccurredAt, last: e.OccurredAt, links: map[int]bool{}}
			spans[e.SendID] = sp
			order = append(order, e.SendID)
		}
		sp.first, sp.last = minTime(sp.first, e.OccurredAt), maxTime(sp.last, e.OccurredAt)
		sp.links[*e.LinkIndex] = true
		if allLinks(sent[i].Links) {
			for l := range sent[i].Links {
				sp.links[l] = true
			}
		}
	}
	var probes []db.EventProbe
	for _, id := range order {
		sp := spans[id]
		for l := range sp.links {
			probes = append(probes, db.EventProbe{SendID: id, Type: "click", Link: l, After: sp.first.Add(-window), Before: sp.last.Add(window)})
		}
	}
	latest, err := s.Store.LatestHumanEvents(ctx, probes)
	if err != nil {
		return err
	}
	// The person-made clicks of each link: the latest stored, then the batch's, as judged.
	human := map[db.SendLinkKey][]time.Time{}
	for i, p := range probes {
		if !latest[i].IsZero() {
			k := db.SendLinkKey{SendID: p.SendID, Link: p.Link}
			human[k] = append(human[k], latest[i])
		}
	}
	for i := range events {
		e := &events[i]
		if e.Machine {
			continue
		}
		idx := *e.LinkIndex
		key := db.SendLinkKey{SendID: e.SendID, Link: idx}
		e.Duplicate = h.Duplicate(human[key], e.OccurredAt)
		if n := sent[i].Links; allLinks(n) {
			clicks := map[int]time.Time{idx: e.OccurredAt}
			for l := range n {
				for _, at := range human[db.SendLinkKey{SendID: e.SendID, Link: l}] {
					if l != idx && e.OccurredAt.Sub(at) <= h.AllLinksWindow && at.After(clicks[l]) {
						clicks[l] = at
					}
				}
			}
			if h.AllLinksClicked(clicks, n) {
				e.Machine, e.MachineReason = true, track.ReasonAllLinks
				continue
			}
		}
		human[key] = append(human[key], e.OccurredAt)
	}
	return nil
}

// storeClicks writes the events in one COPY. When it fails for a reason other than the database
// being out (a lead erased meanwhile), each event is tried on its own, so one bad row costs only
// its own click. It returns each event's error.
func (s *Service) storeClicks(ctx context.Context, events []db.Event) []error {
	errs := make([]error, len(events))
	err := s.Store.CopyEvents(ctx, events)
	if err == nil || len(events) == 1 || errors.Is(err, db.ErrUnavailable) {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	for i := range events {
		errs[i] = s.storeClicks(ctx, events[i:i+1])[0]
	}
	return errs
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
