package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/tendhq/tend/workflows"
)

// benchCost is what a stretch of a workflow's history costs.
type benchCost struct {
	Events  int
	Actions int
	ByKind  map[string]int
}

// countCost counts the history events of a stretch of history and the billable actions among them,
// by Temporal Cloud's rules as far as a history shows them (docs.temporal.io/cloud/actions):
//
//   - workflow started: 1, whether by a client, signal-with-start, continue-as-new or a parent;
//   - signal received: 1 (so a signal-with-start that starts the run costs 2, the start and the
//     signal; one that finds the run open costs 1); a signal sent to another workflow: 1;
//   - timer started: 1 (a cancelled timer was still started: it is billed);
//   - activity scheduled: 1, and each retry 1 more (a history records only the last attempt, in
//     its started event: attempt n means n−1 retries);
//   - update accepted: 1 (a rejected update leaves no event; it is billed too, unseen here);
//   - search attribute upsert, memo change: 1 each; child workflow started: 1;
//   - side effect and mutable side effect markers: 1 each; local activities: 1 for all those
//     recorded by one workflow task; version markers (GetVersion): 0;
//   - workflow tasks, activity completions, timers firing and the like: 0, they are events only.
//
// Queries and heartbeats are billed but leave no event, so neither is counted: the bench makes a
// few queries of its own, and SendStep heartbeats only while a send takes longer than 2 s (an SMTP
// server that is slow to answer), which a healthy send never does.
func countCost(events []*historypb.HistoryEvent) benchCost {
	c := benchCost{Events: len(events), ByKind: map[string]int{}}
	add := func(kind string, n int) {
		if n > 0 {
			c.Actions += n
			c.ByKind[kind] += n
		}
	}
	localTasks := map[int64]bool{}
	for _, ev := range events {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			add("workflow_started", 1)
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, enumspb.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:
			add("signal", 1)
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			add("timer", 1)
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			add("activity", 1)
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			add("activity_retry", int(ev.GetActivityTaskStartedEventAttributes().GetAttempt())-1)
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			add("update", 1)
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, enumspb.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
			add("upsert", 1)
		case enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
			add("child_workflow", 1)
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			a := ev.GetMarkerRecordedEventAttributes()
			switch a.GetMarkerName() {
			case "SideEffect", "MutableSideEffect":
				add("side_effect", 1)
			case "LocalActivity":
				if task := a.GetWorkflowTaskCompletedEventId(); !localTasks[task] {
					localTasks[task] = true
					add("local_activity", 1)
				}
			}
		}
	}
	return c
}

// laterStepWindow is one email step after the first: the events after the first send activity was
// scheduled, up to and including the scheduling of the second (the first email's completion, the
// step's timer and its firing, the workflow tasks between). nil when the history has no second
// send yet.
func laterStepWindow(events []*historypb.HistoryEvent) []*historypb.HistoryEvent {
	var sends []int
	for i, ev := range events {
		if ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == "SendStep" {
			sends = append(sends, i)
		}
	}
	if len(sends) < 2 {
		return nil
	}
	return events[sends[0]+1 : sends[1]+1]
}

// enrolmentWindow is a lead's history from its start (the capture's signal-with-start) through the
// first email's activity being scheduled: what enrolling a lead costs.
func enrolmentWindow(events []*historypb.HistoryEvent) []*historypb.HistoryEvent {
	for i, ev := range events {
		if ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == "SendStep" {
			return events[:i+1]
		}
	}
	return nil
}

// fromSignal is the history from the first engagement signal at or after t to its end: what an
// event posted at t set off, when nothing else happened to the lead since.
func fromSignal(events []*historypb.HistoryEvent, t time.Time) []*historypb.HistoryEvent {
	for i, ev := range events {
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil && a.GetSignalName() == workflows.SignalEngaged &&
			!ev.GetEventTime().AsTime().Before(t) {
			return events[i:]
		}
	}
	return nil
}

// historyOf reads a lead workflow's current run's history.
func (b *bench) historyOf(ctx context.Context, leadID string) ([]*historypb.HistoryEvent, error) {
	var out []*historypb.HistoryEvent
	it := b.temporal.GetWorkflowHistory(ctx, workflows.LeadWorkflowID(leadID), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of lead %s: %w", leadID, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// costFigure averages the cost of the window pick chooses in each sampled lead's history; leads
// whose window is missing are left out.
func (b *bench) costFigure(ctx context.Context, leads []string, pick func(i int, h []*historypb.HistoryEvent) []*historypb.HistoryEvent) (*benchCostFigure, error) {
	f := &benchCostFigure{ActionsByKind: map[string]float64{}}
	var events, actions int
	byKind := map[string]int{}
	for i, id := range leads {
		h, err := b.historyOf(ctx, id)
		if err != nil {
			return nil, err
		}
		w := pick(i, h)
		if w == nil {
			continue
		}
		c := countCost(w)
		f.Sample++
		events += c.Events
		actions += c.Actions
		for k, n := range c.ByKind {
			byKind[k] += n
		}
	}
	if f.Sample > 0 {
		f.Events = float64(events) / float64(f.Sample)
		f.Actions = float64(actions) / float64(f.Sample)
		for k, n := range byKind {
			f.ActionsByKind[k] = float64(n) / float64(f.Sample)
		}
	}
	return f, nil
}

// String prints a cost figure as the report's lines do.
func (f *benchCostFigure) String() string {
	if f == nil || f.Sample == 0 {
		return "not measured (no lead of the sample got that far)"
	}
	kinds := slices.Sorted(maps.Keys(f.ActionsByKind))
	s := fmt.Sprintf("%.1f history events, %.1f billable actions (", f.Events, f.Actions)
	for i, k := range kinds {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %.1f", k, f.ActionsByKind[k])
	}
	return s + fmt.Sprintf("; sample of %d)", f.Sample)
}

// laterStepTarget is the most history events one email step after the first should take.
const laterStepTarget = 6

// laterStep waits for the sampled leads' second emails, then counts what one later email step
// cost each of them.
func (b *bench) laterStep(ctx context.Context) error {
	leads := b.sampled()
	if len(leads) == 0 {
		return nil
	}
	deadline := time.Now().Add(b.o.stepWait + b.o.timeout)
	for {
		var sent int
		if err := b.store.Pool().QueryRow(ctx, `SELECT count(*) FROM sends WHERE sequence_id = 'bench-series' AND step_id = 'later'
			AND status = 'sent' AND lead_id = ANY($1::uuid[])`, leads).Scan(&sent); err != nil {
			return fmt.Errorf("count the second emails: %w", err)
		}
		if sent >= len(leads) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	time.Sleep(time.Second) // the workflow task after the send completes
	f, err := b.costFigure(ctx, leads, func(_ int, h []*historypb.HistoryEvent) []*historypb.HistoryEvent { return laterStepWindow(h) })
	if err != nil {
		return err
	}
	f.TargetEvents = laterStepTarget
	b.temporalResult().LaterEmailStep = f
	enrol, err := b.costFigure(ctx, leads, func(_ int, h []*historypb.HistoryEvent) []*historypb.HistoryEvent { return enrolmentWindow(h) })
	if err != nil {
		return err
	}
	b.temporalResult().Enrolment = enrol
	fmt.Fprintf(b.out, "temporal     per enrolment (capture → first email's activity): %s\n", enrol)
	fmt.Fprintf(b.out, "temporal     per later email step (target ≤ %d events): %s\n", laterStepTarget, f)
	if f.Sample < len(leads) {
		return fmt.Errorf("only %d of the %d sampled leads were sent their second email within %s", f.Sample, len(leads), b.o.stepWait+b.o.timeout)
	}
	return nil
}
