package engage

import (
	"context"
	"errors"
	"hash/fnv"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/track"
)

// Open recording. The pixel is answered before its open is stored, so the open waits in a queue
// that several recorders drain, each storing what has gathered since its last write in one COPY:
// the busier the pixel, the larger the batches. The queue is split by send, so one recorder sees
// every open of a send in order and the duplicate rule holds as if opens were stored one by one.
// An open answered but not stored — the queue full, or the database out for longer than the
// queue lasts — is counted (OpenStats) and logged, never lost silently.

// OpenStats counts the pixel requests with valid tokens since the service started.
type OpenStats struct {
	Queued  int64 // accepted for recording
	Stored  int64 // stored as events
	Dropped int64 // answered but never queued: the queue was full, or the recorder had stopped
	Failed  int64 // queued but not stored: a write that could not be done, or a stop that timed out
	Unknown int64 // for a send that was never recorded as sent: an invalid link, nothing to store
	Waiting int64 // queued now
}

// Lost is how many opens were answered with the pixel but not stored.
func (s OpenStats) Lost() int64 { return s.Dropped + s.Failed }

type queuedOpen struct {
	hit    Hit
	sendID string
}

type openRecorder struct {
	init   sync.Once
	mu     sync.RWMutex // held for writing only to close the queue
	closed bool
	shards []chan queuedOpen

	queued, stored, dropped, failed, unknown atomic.Int64
}

func (s *Service) recorder() *openRecorder {
	o := &s.opens
	o.init.Do(func() {
		n := s.OpenRecorders
		if n <= 0 {
			n = s.writers()
		}
		size := s.OpenQueue
		if size <= 0 {
			size = 50000
		}
		o.shards = make([]chan queuedOpen, n)
		for i := range o.shards {
			o.shards[i] = make(chan queuedOpen, max(1, size/n))
		}
	})
	return o
}

// writers is how many batches of opens, or of clicks, are written at once by default: one per
// core, at most four, and at most half the pool, left to the requests that wait on the database
// (captures, the other kind of hit). More writers make smaller batches, and on 2 cores measurably
// fewer hits a second (BENCHMARKS.md, "Tracking").
func (s *Service) writers() int {
	n := min(4, runtime.GOMAXPROCS(0))
	if s.Store != nil {
		n = min(n, int(s.Store.Pool().Config().MaxConns)/2)
	}
	return max(1, n)
}

// Start opens the queue of opens (again, after a RunOpenRecorder has stopped); RunOpenRecorder
// drains it.
func (s *Service) Start() {
	o := s.recorder()
	o.mu.Lock()
	o.closed = false
	o.mu.Unlock()
}

// OpenStats returns the open counters, for metrics and tests.
func (s *Service) OpenStats() OpenStats {
	o := s.recorder()
	st := OpenStats{Queued: o.queued.Load(), Stored: o.stored.Load(), Dropped: o.dropped.Load(), Failed: o.failed.Load(),
		Unknown: o.unknown.Load()}
	for _, q := range o.shards {
		st.Waiting += int64(len(q))
	}
	return st
}

// QueueOpen queues an open pixel hit for recording, so the pixel never waits on the database. It
// returns false when the token is invalid (nothing to record) or the open cannot be queued (the
// queue is full, or the recorder has stopped); such an open is counted in OpenStats.Dropped.
func (s *Service) QueueOpen(h Hit) bool {
	t, sendID, err := s.verify(h.Token, track.KindOpen)
	if err != nil {
		return false
	}
	o := s.recorder()
	o.mu.RLock()
	defer o.mu.RUnlock()
	if !o.closed {
		hash := fnv.New32a()
		_, _ = hash.Write(t.SendID[:])
		select {
		case o.shards[hash.Sum32()%uint32(len(o.shards))] <- queuedOpen{hit: h, sendID: sendID}:
			o.queued.Add(1)
			return true
		default:
		}
	}
	o.dropped.Add(1)
	return false
}

// RunOpenRecorder records queued opens until ctx ends, then stops taking opens and stores the
// ones queued (waiting up to OpenDrain) before it returns: stop the HTTP server first, then
// cancel ctx, and an answered open is not lost. Call it once, before serving.
func (s *Service) RunOpenRecorder(ctx context.Context) {
	o := s.recorder()
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, q := range o.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.recordShard(work, stop, q)
		}()
	}
	every := s.LossLogEvery
	if every <= 0 {
		every = 10 * time.Second
	}
	var lastLost int64
	tick := time.NewTicker(every)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			lastLost = s.logLoss(lastLost)
		}
	}
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	close(stop)
	drain := s.OpenDrain
	if drain <= 0 {
		drain = 10 * time.Second
	}
	deadline := time.AfterFunc(drain, cancelWork)
	defer deadline.Stop()
	wg.Wait()
	s.logLoss(lastLost)
}

// logLoss logs the opens lost since the count last, and returns the new count.
func (s *Service) logLoss(last int64) int64 {
	st := s.OpenStats()
	if lost := st.Lost(); lost > last {
		s.log().Warn("opens lost: answered with the pixel but not stored; recording could not keep up",
			"lost", lost-last, "lost_total", lost, "dropped_total", st.Dropped, "failed_total", st.Failed, "queued_now", st.Waiting)
		return lost
	}
	return last
}

// recordShard stores the opens of one queue until stop closes, then the ones left.
func (s *Service) recordShard(ctx context.Context, stop <-chan struct{}, q chan queuedOpen) {
	var waiting []queuedOpen // opens of sends not recorded yet
	retry := time.NewTicker(50 * time.Millisecond)
	defer retry.Stop()
	for {
		var batch []queuedOpen
		select {
		case <-stop:
			s.drainShard(ctx, q, waiting)
			return
		case first := <-q:
			batch = append(waiting, first)
		case <-retry.C:
			if len(waiting) == 0 {
				continue
			}
			batch = waiting
		}
		waiting = s.recordBatch(ctx, s.fill(q, batch))
	}
}

// drainShard stores what is left in a closed queue, until ctx ends; what it cannot store is
// counted as failed.
func (s *Service) drainShard(ctx context.Context, q chan queuedOpen, waiting []queuedOpen) {
	o := s.recorder()
	for {
		batch := s.fill(q, waiting)
		if len(batch) == 0 {
			return
		}
		if ctx.Err() != nil {
			o.failed.Add(int64(len(batch) + len(q)))
			for len(q) > 0 {
				<-q
			}
			return
		}
		waiting = s.recordBatch(ctx, batch)
		if len(waiting) > 0 && len(q) == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// fill adds to batch what is queued, without waiting, up to OpenBatch.
func (s *Service) fill(q chan queuedOpen, batch []queuedOpen) []queuedOpen {
	limit := s.OpenBatch
	if limit <= 0 {
		limit = 1000
	}
	for len(batch) < limit {
		select {
		case h := <-q:
			batch = append(batch, h)
		default:
			return batch
		}
	}
	return batch
}

// recordBatch stores a batch of opens as recordOpen would one by one, and returns the opens of
// sends not recorded yet that may still be (within RecordWait of the hit, as for a click).
func (s *Service) recordBatch(ctx context.Context, batch []queuedOpen) (waiting []queuedOpen) {
	o := s.recorder()
	ids := make([]string, 0, len(batch))
	seen := map[string]bool{}
	for _, q := range batch {
		if !seen[q.sendID] {
			seen[q.sendID] = true
			ids = append(ids, q.sendID)
		}
	}
	var sent map[string]db.SentMessage
	err := s.retry(ctx, func() (err error) {
		sent, err = s.Store.SentMessages(ctx, ids)
		return err
	})
	if err != nil {
		s.log().Error("record opens: read their sends", "opens", len(batch), "err", err)
		o.failed.Add(int64(len(batch)))
		return nil
	}
	events := make([]db.Event, 0, len(batch))
	var earliest time.Time
	for _, q := range batch {
		m, ok := sent[q.sendID]
		if !ok {
			if time.Since(q.hit.At) < RecordWait {
				waiting = append(waiting, q)
			} else {
				o.unknown.Add(1)
			}
			continue
		}
		h := q.hit
		v := s.Heuristics.Classify(track.Hit{Kind: track.KindOpen, Method: h.Method, UserAgent: h.UserAgent, At: h.At,
			SentAt: m.SentAt, Purpose: h.Purpose})
		events = append(events, db.Event{LeadID: m.LeadID, Type: "open", SendID: m.SendID, Machine: v.Machine,
			MachineReason: v.Reason, UserAgent: h.UserAgent, OccurredAt: h.At})
		if !v.Machine && (earliest.IsZero() || h.At.Before(earliest)) {
			earliest = h.At
		}
	}
	if len(events) == 0 {
		return waiting
	}
	// An open within DedupeWindow of an earlier person-made open of the send, stored or earlier
	// in this batch, is a duplicate. Of the stored ones only the latest matters: one probe a send.
	if !earliest.IsZero() && s.Heuristics.DedupeWindow > 0 {
		human, err := s.latestHumanOpens(ctx, events)
		if err != nil {
			s.log().Error("record opens: read earlier opens", "opens", len(events), "err", err)
			o.failed.Add(int64(len(events)))
			return waiting
		}
		for i := range events {
			e := &events[i]
			if !e.Machine {
				e.Duplicate = s.Heuristics.Duplicate(human[e.SendID], e.OccurredAt)
				human[e.SendID] = append(human[e.SendID], e.OccurredAt)
			}
		}
	}
	stored := s.storeOpens(ctx, events)
	for i, e := range events {
		if stored[i] {
			s.Metrics.Tracked("open", e.Machine)
		}
		if stored[i] && !e.Machine && !e.Duplicate {
			s.notify(e.LeadID)
		}
	}
	return waiting
}

// latestHumanOpens returns, by send, the time of the latest stored person-made open within
// DedupeWindow of the batch's person-made opens of that send.
func (s *Service) latestHumanOpens(ctx context.Context, events []db.Event) (map[string][]time.Time, error) {
	window := s.Heuristics.DedupeWindow
	span := map[string][2]time.Time{} // the earliest and latest person-made open of each send
	var order []string
	for _, e := range events {
		if e.Machine {
			continue
		}
		sp, ok := span[e.SendID]
		if !ok {
			order = append(order, e.SendID)
			sp = [2]time.Time{e.OccurredAt, e.OccurredAt}
		}
		if e.OccurredAt.Before(sp[0]) {
			sp[0] = e.OccurredAt
		}
		if e.OccurredAt.After(sp[1]) {
			sp[1] = e.OccurredAt
		}
		span[e.SendID] = sp
	}
	probes := make([]db.EventProbe, len(order))
	for i, id := range order {
		probes[i] = db.EventProbe{SendID: id, Type: "open", Link: -1, After: span[id][0].Add(-window), Before: span[id][1].Add(window)}
	}
	var latest []time.Time
	err := s.retry(ctx, func() (err error) {
		latest, err = s.Store.LatestHumanEvents(ctx, probes)
		return err
	})
	if err != nil {
		return nil, err
	}
	human := make(map[string][]time.Time, len(order))
	for i, id := range order {
		if !latest[i].IsZero() {
			human[id] = []time.Time{latest[i]}
		}
	}
	return human, nil
}

// storeOpens writes the events in one COPY, retrying while the database is unreachable. When the
// COPY fails for another reason (a lead erased meanwhile), each event is tried on its own, so
// one bad row costs only itself. It reports which events were stored.
func (s *Service) storeOpens(ctx context.Context, events []db.Event) []bool {
	o := s.recorder()
	stored := make([]bool, len(events))
	err := s.retry(ctx, func() error { return s.Store.CopyEvents(ctx, events) })
	if err == nil {
		for i := range stored {
			stored[i] = true
		}
		o.stored.Add(int64(len(events)))
		return stored
	}
	if len(events) == 1 || ctx.Err() != nil {
		s.log().Error("record opens", "opens", len(events), "err", err)
		o.failed.Add(int64(len(events)))
		return stored
	}
	for i := range events {
		stored[i] = s.storeOpens(ctx, events[i:i+1])[0]
	}
	return stored
}

// retry runs fn until it succeeds, fails for a reason other than the database being unreachable,
// or ctx ends.
func (s *Service) retry(ctx context.Context, fn func() error) error {
	wait := 50 * time.Millisecond
	for {
		err := fn()
		if err == nil || !errors.Is(err, db.ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		s.log().Warn("record opens: database unavailable; retrying", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}
