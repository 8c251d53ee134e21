package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// The bare workflow of the ceiling: as little as a workflow can do and still be one that acts.
const (
	benchBareWorkflow = "tend-bench-bare"
	benchNoopActivity = "tend-bench-noop"
)

func bareWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	return workflow.ExecuteActivity(ctx, benchNoopActivity).Get(ctx, nil)
}

func noopActivity(context.Context) error { return nil }

// ceiling measures the engine's own end-to-end rate on the target's Temporal server: a worker in
// this process, on a task queue of its own, runs the bare workflow, and n of them are started and
// awaited with as many in flight as the captures have. Whatever tend adds to a lead costs on top of
// this, so each enrolment figure is printed as a share of it.
func (b *bench) ceiling(ctx context.Context) error {
	queue := "tend-bench-" + b.run
	w := worker.New(b.temporal, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(bareWorkflow, workflow.RegisterOptions{Name: benchBareWorkflow})
	w.RegisterActivityWithOptions(noopActivity, activity.RegisterOptions{Name: benchNoopActivity})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start the ceiling's worker: %w", err)
	}
	defer w.Stop()

	n := b.o.ceilingRuns()
	var mu sync.Mutex
	lat := make([]time.Duration, 0, n)
	start := time.Now()
	_, err := b.parallel(ctx, n, func(i int) error {
		t := time.Now()
		run, err := b.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("bench-bare-%s-%d", b.run, i), TaskQueue: queue},
			benchBareWorkflow)
		if err != nil {
			return fmt.Errorf("start a bare workflow: %w", err)
		}
		if err := run.Get(ctx, nil); err != nil {
			return fmt.Errorf("bare workflow: %w", err)
		}
		mu.Lock()
		lat = append(lat, time.Since(t))
		mu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("ceiling: %w", err)
	}
	elapsed := time.Since(start)
	b.res.Ceiling = &benchCeiling{Workflows: n, Concurrency: b.o.concurrency, Seconds: elapsed.Seconds(), PerSecond: rate(n, elapsed),
		Latency: percentiles(lat)}
	fmt.Fprintf(b.out, "ceiling      %d bare workflows (one no-op activity) end to end in %s: %.0f/s, %d in flight; each %s\n",
		n, round(elapsed), b.res.Ceiling.PerSecond, b.o.concurrency, b.res.Ceiling.Latency)
	return nil
}

// ofCeiling prints a rate as a share of the ceiling.
func (b *bench) ofCeiling(perSecond float64) string {
	if b.res.Ceiling == nil || b.res.Ceiling.PerSecond == 0 {
		return ""
	}
	return fmt.Sprintf(" = %.0f%% of the ceiling (%.0f/s)", 100*ratio(perSecond, b.res.Ceiling.PerSecond), b.res.Ceiling.PerSecond)
}
