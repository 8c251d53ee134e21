package main

import (
	"context"
	"fmt"
	"runtime"
	"strings"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/tendhq/tend/workflows"
)

// workerMemory reads the workers' resident memory after the run, beside the number of lead
// workflows then open: from each worker's metrics when the target names them, else this process's
// (the embedded topology, where this process is the worker).
func (b *bench) workerMemory(ctx context.Context) error {
	open, err := b.openLeadWorkflows(ctx)
	if err != nil {
		return err
	}
	runtime.GC()
	heap, rss := memory()
	m := &benchMemory{Source: "process", WorkerRSSBytes: []uint64{rss}, HeapInUseBytes: heap, OpenLeadWorkflows: open}
	if len(b.t.WorkerMetrics) > 0 {
		if m.WorkerRSSBytes, err = workerRSS(ctx, b.http, b.t.WorkerMetrics); err != nil {
			return err
		}
		m.Source = "metrics"
	}
	b.res.Memory = m
	var each []string
	for _, r := range m.WorkerRSSBytes {
		each = append(each, mib(r))
	}
	perLead := ""
	if open > 0 && len(m.WorkerRSSBytes) == 1 {
		perLead = fmt.Sprintf(" (%s per open workflow, all in)", kib(float64(m.WorkerRSSBytes[0])/float64(open)))
	}
	fmt.Fprintf(b.out, "worker RSS   %s with %d open lead workflows%s (from %s)\n", strings.Join(each, ", "), open, perLead, m.Source)
	return nil
}

// openLeadWorkflows counts the running lead workflows in the namespace, as its visibility store
// knows them.
func (b *bench) openLeadWorkflows(ctx context.Context) (int, error) {
	res, err := b.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: b.t.Namespace,
		Query: fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", workflows.LeadWorkflowName)})
	if err != nil {
		return 0, fmt.Errorf("count the open lead workflows: %w", err)
	}
	return int(res.GetCount()), nil
}
