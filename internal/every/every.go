// Package every runs background work on an interval, the loop tend's periodic jobs (enrolment
// reconciler, unscored-event sweep, CRM deliverer, retention) share. Under a context given a Gate
// (WithGate), the work runs only while the gate is open: that is how those jobs run on one
// server of a cluster, the leader (package leader), while every server starts them.
package every

import (
	"context"
	"time"
)

// Gate says whether this process may run the gated work now.
type Gate interface {
	// Leading reports whether the work may run now and, if so, a context that ends when that
	// stops being true.
	Leading() (context.Context, bool)
}

type gateKey struct{}

// WithGate returns a context under which every Tick runs its work only while g is Leading, and
// cancels the work's context when g stops leading mid-call. Ticks under a context without a gate
// run on every tick.
func WithGate(ctx context.Context, g Gate) context.Context {
	return context.WithValue(ctx, gateKey{}, g)
}

// Tick calls fn every interval until ctx ends. The first call is one interval after Tick starts.
// Under a gate (WithGate), a tick on which the gate is closed is skipped.
func Tick(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			run(ctx, fn)
		}
	}
}

// Once calls fn now, under the gate like a tick: skipped when this process does not lead.
func Once(ctx context.Context, fn func(context.Context)) { run(ctx, fn) }

func run(ctx context.Context, fn func(context.Context)) {
	g, _ := ctx.Value(gateKey{}).(Gate)
	if g == nil {
		fn(ctx)
		return
	}
	term, ok := g.Leading()
	if !ok {
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(term, cancel)
	defer stop()
	fn(wctx)
}
