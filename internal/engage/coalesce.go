package engage

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Coalescer turns any number of Notify calls for a lead within one interval into a single call of
// Send for that lead: a burst of events costs one Temporal signal, not one per event.
type Coalescer struct {
	Interval time.Duration
	Send     func(ctx context.Context, leadID string) error
	Log      *slog.Logger

	mu      sync.Mutex
	pending map[string]struct{}
	sent    int
}

// Notify marks the lead as having new events.
func (c *Coalescer) Notify(leadID string) {
	c.mu.Lock()
	if c.pending == nil {
		c.pending = map[string]struct{}{}
	}
	c.pending[leadID] = struct{}{}
	c.mu.Unlock()
}

// Len returns how many leads wait for their notification, for metrics.
func (c *Coalescer) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Sent returns how many notifications have been sent, for tests and metrics.
func (c *Coalescer) Sent() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent
}

// Run flushes every interval until ctx ends, then once more.
func (c *Coalescer) Run(ctx context.Context) {
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.Flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
			c.Flush(ctx)
		}
	}
}

// Flush sends one notification per pending lead. A lead whose notification fails stays pending.
func (c *Coalescer) Flush(ctx context.Context) {
	c.mu.Lock()
	leads := make([]string, 0, len(c.pending))
	for id := range c.pending {
		leads = append(leads, id)
	}
	c.pending = map[string]struct{}{}
	c.mu.Unlock()
	slices.Sort(leads)
	for _, id := range leads {
		if err := c.Send(ctx, id); err != nil {
			if c.Log != nil {
				c.Log.Warn("notify lead workflow; will retry", "lead_id", id, "err", err)
			}
			c.Notify(id)
			continue
		}
		c.mu.Lock()
		c.sent++
		c.mu.Unlock()
	}
}
