// Package every runs background work on an interval, the loop tend's periodic jobs (enrolment
// reconciler, unscored-event sweep, CRM deliverer, retention) share.
package every

import (
	"context"
	"time"
)

// Tick calls fn every interval until ctx ends. The first call is one interval after Tick starts.
func Tick(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}
