package content

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/tendhq/tend/internal/db"
)

// DefaultPoll is how often a Watcher checks for a version it was not told about.
const DefaultPoll = 2 * time.Second

// Watcher keeps a Live on the newest published content: it listens on the tend_content channel
// for new versions and also polls, so that a notification lost with its connection only delays a
// version by the poll interval. Every server and worker runs one.
type Watcher struct {
	Store *db.Store
	Live  *Live
	// Poll is the poll interval (TEND_CONTENT_POLL); DefaultPoll when 0.
	Poll time.Duration
	// ListenRetry is how long after its connection broke the listener listens again; 10s when 0.
	// The poll covers the gap.
	ListenRetry time.Duration
	Log         *slog.Logger

	mu     sync.Mutex   // one refresh at a time: the listener's and the poll's
	broken map[Kind]int // the versions that did not build, so that they are reported once
}

// Watch keeps Live current until ctx ends.
func (w *Watcher) Watch(ctx context.Context) {
	if w.Poll <= 0 {
		w.Poll = DefaultPoll
	}
	if w.ListenRetry <= 0 {
		w.ListenRetry = 10 * time.Second
	}
	if w.Log == nil {
		w.Log = slog.New(slog.DiscardHandler)
	}
	var wg sync.WaitGroup
	wg.Go(func() { w.listen(ctx) })
	t := time.NewTicker(w.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
			w.Refresh(ctx)
		}
	}
}

// listen refreshes on every notification, and listens again a while after its connection broke.
func (w *Watcher) listen(ctx context.Context) {
	for ctx.Err() == nil {
		l, err := w.Store.ListenContent(ctx)
		if err == nil {
			// A version published while there was no listener is found now, not at the next poll.
			w.Refresh(ctx)
			for {
				var payload string
				if payload, err = l.Wait(ctx); err != nil {
					break
				}
				w.Log.Debug("content version announced", "version", payload)
				w.Refresh(ctx)
			}
			_ = l.Close(context.WithoutCancel(ctx))
		}
		if ctx.Err() != nil {
			return
		}
		w.Log.Warn("content listener lost; polling until it is back", "err", err, "retry_in", w.ListenRetry)
		select {
		case <-ctx.Done():
		case <-time.After(w.ListenRetry):
		}
	}
}

// Refresh puts the newest published content in use when it is not already. A version that does
// not build (apply checks before it publishes, so it should never be) is logged and the content
// in use kept.
func (w *Watcher) Refresh(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	latest, err := w.Store.LatestContentVersions(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.Log.Warn("check for new content", "err", err)
		}
		return
	}
	cur := w.Live.Current()
	at := map[Kind]int{}
	changed := false
	for _, k := range Kinds {
		at[k] = latest[string(k)]
		if at[k] != cur.Version(k) {
			changed = true
		}
	}
	if !changed || maps.Equal(at, w.broken) {
		return
	}
	next, err := LoadAt(ctx, w.Store, at)
	if err != nil {
		if ctx.Err() == nil {
			w.broken = at
			w.Log.Error("new content version not used: it does not build; the previous one stays in use", "versions", at, "err", err)
		}
		return
	}
	w.Live.Swap(next)
	var from map[Kind]int
	if cur != nil {
		from = maps.Clone(cur.Versions)
	}
	w.Log.Info("content version in use", "versions", next.Versions, "was", from)
}
