package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tendhq/tend/internal/sales"
	"github.com/tendhq/tend/internal/sequence"
)

// `tend bench` brings up its own stack, and every lead it captures gets exactly one first email;
// the events it posts are coalesced into at most one signal per request.
func TestBenchMeasuresAPrivateStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Postgres and Temporal")
	}
	result := filepath.Join(t.TempDir(), "bench.json")
	r := tend(t, map[string]string{}, "bench", "--leads", "20", "--concurrency", "4", "--events", "6", "--batch", "6", "--sample", "5",
		"--step-wait", "2s", "--hand-raises", "10", "--lapses", "10", "--sla", "10s", "--track-duration", "1s", "--json", result)
	require.NoError(t, r.err, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	assert.Regexp(t, `ceiling      20 bare workflows \(one no-op activity\) end to end in \S+: \d+/s`, r.stdout)
	assert.Regexp(t, `capture      20 leads in \S+: \d+/s = \d+% of the ceiling`, r.stdout)
	assert.Regexp(t, `temporal     per later email step \(target ≤ 6 events\): [0-9.]+ history events, [0-9.]+ billable actions .*sample of 5\)`, r.stdout)
	assert.Contains(t, r.stdout, ": 10 handoff emails in the sink; post→email p50 ")
	assert.Regexp(t, `temporal     per handoff .*: [0-9.]+ history events, [0-9.]+ billable actions .*sample of 5\)`, r.stdout)
	assert.Contains(t, r.stdout, "unanswered: 10 escalation emails in the sink; lateness p50 ")
	assert.Regexp(t, `tracking     opens +\d+/s \(\d+% of static\); [1-9]\d* answered, [1-9]\d* recorded, 0 limited`, r.stdout)
	assert.Regexp(t, `tracking     clicks +\d+/s \(\d+% of static\); [1-9]\d* answered, [1-9]\d* recorded, 0 limited`, r.stdout)
	assert.Regexp(t, `worker RSS   \d+ MiB with 40 open lead workflows .*\(from metrics\)`, r.stdout)

	raw, err := os.ReadFile(result)
	require.NoError(t, err)
	var res benchResult
	require.NoError(t, json.Unmarshal(raw, &res))
	require.NotNil(t, res.SpeedToLead)
	assert.Equal(t, 10, res.SpeedToLead.Received)
	require.NotNil(t, res.SLA)
	assert.Equal(t, 10, res.SLA.Lateness.Count)
	assert.Positive(t, res.SLA.Lateness.P50, "an escalation comes after its deadline")
	require.NotNil(t, res.Temporal.LaterEmailStep)
	assert.Equal(t, 1.0, res.Temporal.LaterEmailStep.ActionsByKind["timer"], "one timer per later step")
	require.NotNil(t, res.Memory)
	assert.Equal(t, "metrics", res.Memory.Source)
	assert.Positive(t, res.Tracking.Static.PerSecond)
	assert.Contains(t, r.stdout, "capture      20 leads in ")
	assert.Contains(t, r.stdout, "first email  20/20 sent, 0 duplicates among the 20 the inbox kept")
	assert.Contains(t, r.stdout, "site events  120 in 20 requests")
	m := regexp.MustCompile(`the 6 site events cost ([0-9.]+) signals and ([0-9.]+) rescores`).FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	signals, _ := strconv.ParseFloat(m[1], 64)
	rescores, _ := strconv.ParseFloat(m[2], 64)
	assert.LessOrEqual(t, signals, 1.0, "one request per lead: at most one signal each")
	assert.GreaterOrEqual(t, rescores, 1.0, "every sampled lead rescored its events")
	assert.Regexp(t, `memory       heap in use \d+ MiB with 20 open lead workflows`, r.stdout)
	t.Log("\n" + r.stdout)
}

func TestBenchRejectsNonsenseSizes(t *testing.T) {
	r := tend(t, map[string]string{}, "bench", "--leads", "0")
	require.ErrorIs(t, r.err, errUsage)
	assert.Contains(t, r.err.Error(), "--leads")
}

func TestPercentilesAreNearestRankInMilliseconds(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- { // out of order: percentiles sorts a copy
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p := percentiles(d)
	assert.Equal(t, benchPercentiles{Count: 100, P50: 51, P95: 96, P99: 100, Max: 100}, p)
	assert.Equal(t, time.Duration(1)*time.Millisecond, d[len(d)-1], "the caller's slice is left as it was")
	assert.Equal(t, benchPercentiles{}, percentiles(nil))
	assert.Equal(t, "-", percentiles(nil).String())
	assert.Equal(t, "p50 51ms  p95 96ms  p99 100ms  max 100ms", p.String())
}

// history builds a history from event types, with ids from 1; tweak adjusts an event.
func history(types []enumspb.EventType, tweak func(i int, ev *historypb.HistoryEvent)) []*historypb.HistoryEvent {
	out := make([]*historypb.HistoryEvent, len(types))
	for i, ty := range types {
		out[i] = &historypb.HistoryEvent{EventId: int64(i + 1), EventType: ty, EventTime: timestamppb.New(time.Unix(int64(1000+i), 0))}
		if tweak != nil {
			tweak(i, out[i])
		}
	}
	return out
}

func scheduled(name string) *historypb.HistoryEvent_ActivityTaskScheduledEventAttributes {
	return &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{
		ActivityType: &commonpb.ActivityType{Name: name}}}
}

func marker(name string, task int64) *historypb.HistoryEvent_MarkerRecordedEventAttributes {
	return &historypb.HistoryEvent_MarkerRecordedEventAttributes{MarkerRecordedEventAttributes: &historypb.MarkerRecordedEventAttributes{
		MarkerName: name, WorkflowTaskCompletedEventId: task}}
}

// The operator's bill: every kind of billable event is counted by Temporal Cloud's rules, retries
// included, local activities once per workflow task, and the workflow-task bookkeeping not at all.
func TestCountCostBillsActionsByTemporalCloudsRules(t *testing.T) {
	h := history([]enumspb.EventType{
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,  // 1 start
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, // 1 signal (with the start: signal-with-start = 2)
		enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
		enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, // 1
		enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED,   // attempt 3: 2 retries
		enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
		enumspb.EVENT_TYPE_MARKER_RECORDED, // local activity, task 5
		enumspb.EVENT_TYPE_MARKER_RECORDED, // local activity, task 5: same task, not billed again
		enumspb.EVENT_TYPE_MARKER_RECORDED, // side effect: 1
		enumspb.EVENT_TYPE_MARKER_RECORDED, // version: 0
		enumspb.EVENT_TYPE_TIMER_STARTED,   // 1
		enumspb.EVENT_TYPE_TIMER_FIRED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, // 1
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
		enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, // 1
		enumspb.EVENT_TYPE_TIMER_STARTED,                     // 1, cancelled but billed
		enumspb.EVENT_TYPE_TIMER_CANCELED,
	}, func(i int, ev *historypb.HistoryEvent) {
		switch i {
		case 5:
			ev.Attributes = scheduled("SendStep")
		case 6:
			ev.Attributes = &historypb.HistoryEvent_ActivityTaskStartedEventAttributes{ActivityTaskStartedEventAttributes: &historypb.ActivityTaskStartedEventAttributes{Attempt: 3}}
		case 8, 9:
			ev.Attributes = marker("LocalActivity", 5)
		case 10:
			ev.Attributes = marker("SideEffect", 5)
		case 11:
			ev.Attributes = marker("Version", 5)
		}
	})
	c := countCost(h)
	assert.Equal(t, 19, c.Events)
	assert.Equal(t, map[string]int{"workflow_started": 1, "signal": 1, "activity": 1, "activity_retry": 2, "local_activity": 1,
		"side_effect": 1, "timer": 2, "update": 1, "upsert": 1}, c.ByKind)
	assert.Equal(t, 11, c.Actions)
}

// One later email step is the stretch from the first send's scheduling (exclusive) to the second's
// (inclusive): a cycle of the step loop, whatever came before it.
func TestLaterStepWindowIsOneCycleOfTheStepLoop(t *testing.T) {
	types := []enumspb.EventType{
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
		enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, // plan
		enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, // SendStep #1 (index 2)
		enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED,
		enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
		enumspb.EVENT_TYPE_TIMER_STARTED,
		enumspb.EVENT_TYPE_TIMER_FIRED,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
		enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, // SendStep #2 (index 13)
		enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED,
	}
	h := history(types, func(i int, ev *historypb.HistoryEvent) {
		switch i {
		case 1:
			ev.Attributes = scheduled("Plan")
		case 2, 13:
			ev.Attributes = scheduled("SendStep")
		}
	})
	w := laterStepWindow(h)
	require.Len(t, w, 11)
	assert.Equal(t, int64(4), w[0].GetEventId())
	assert.Equal(t, int64(14), w[len(w)-1].GetEventId())
	c := countCost(w)
	assert.Equal(t, map[string]int{"timer": 1, "activity": 1}, c.ByKind)

	assert.Nil(t, laterStepWindow(h[:13]), "no second send yet: no window")

	e := enrolmentWindow(h)
	require.Len(t, e, 3, "start, plan, first SendStep")
	assert.Equal(t, map[string]int{"workflow_started": 1, "activity": 2}, countCost(e).ByKind)
	assert.Nil(t, enrolmentWindow(h[:2]), "no send yet: no window")
}

func TestFromSignalStartsAtTheFirstEngagementSignalSinceThePost(t *testing.T) {
	h := history([]enumspb.EventType{
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, // at 1000: before the post
		enumspb.EVENT_TYPE_TIMER_STARTED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, // at 1002: another signal
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, // at 1003: the engagement
		enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
	}, func(i int, ev *historypb.HistoryEvent) {
		name := "engaged"
		if i == 2 {
			name = "content"
		}
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED {
			ev.Attributes = &historypb.HistoryEvent_WorkflowExecutionSignaledEventAttributes{
				WorkflowExecutionSignaledEventAttributes: &historypb.WorkflowExecutionSignaledEventAttributes{SignalName: name}}
		}
	})
	w := fromSignal(h, time.Unix(1001, 0))
	require.Len(t, w, 2)
	assert.Equal(t, int64(4), w[0].GetEventId())
	assert.Nil(t, fromSignal(h, time.Unix(2000, 0)))
}

// The result file is what BENCHMARKS.md is built from: its shape is part of the command.
func TestBenchResultWritesEverySectionAndNullForTheSkipped(t *testing.T) {
	o := benchOptions{leads: 10, concurrency: 2, batch: 1, stepWait: 20 * time.Second, handRaiseRate: 20, sla: time.Minute,
		trackConcurrency: 1, trackAddresses: 1}
	r := newBenchResult("embedded", o)
	r.Ceiling = &benchCeiling{Workflows: 10, PerSecond: 40}
	r.Capture = &benchRate{Count: 10, PerSecond: 20, RatioToCeiling: 0.5}
	r.Temporal = &benchTemporal{LaterEmailStep: &benchCostFigure{Sample: 2, Events: 11, Actions: 2, TargetEvents: 6}}
	path := filepath.Join(t.TempDir(), "r.json")
	require.NoError(t, r.write(path))
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(raw, &got))
	for _, k := range []string{"topology", "started_at", "machine", "options", "ceiling", "capture", "first_email", "site_events",
		"temporal", "speed_to_lead", "sla", "tracking", "memory"} {
		assert.Contains(t, got, k)
	}
	assert.Nil(t, got["sla"], "a skipped section is null")
	assert.Equal(t, 40.0, got["ceiling"].(map[string]any)["per_second"])
	assert.Equal(t, 0.5, got["capture"].(map[string]any)["ratio_to_ceiling"])
	assert.Equal(t, 6.0, got["temporal"].(map[string]any)["later_email_step"].(map[string]any)["target_history_events"])
	assert.Equal(t, 10.0, got["options"].(map[string]any)["ceiling"], "no --ceiling: as many bare workflows as leads")
	assert.Equal(t, "20s", got["options"].(map[string]any)["step_wait"])
}

func TestQuickSizesGiveWayToFlagsGiven(t *testing.T) {
	o := benchOptions{leads: 300, lapses: 1000, sla: time.Minute, stepWait: 20 * time.Second}
	o.applyQuick(func(name string) bool { return name == "leads" })
	assert.Equal(t, 300, o.leads, "given explicitly")
	assert.Equal(t, 100, o.lapses)
	assert.Equal(t, 30*time.Second, o.sla)
	assert.Equal(t, 10*time.Second, o.stepWait)
}

func TestBenchRefusesOptionsThatMeasureNothing(t *testing.T) {
	ok := benchOptions{leads: 1, concurrency: 1, batch: 1, stepWait: time.Second, handRaiseRate: 1, sla: 10 * time.Second,
		trackConcurrency: 1, trackAddresses: benchMaxAddresses}
	require.NoError(t, ok.validate())
	for flag, o := range map[string]benchOptions{
		"--hand-raise-rate": func() benchOptions { o := ok; o.handRaises, o.handRaiseRate = 5, 0; return o }(),
		"--sla":             func() benchOptions { o := ok; o.lapses, o.sla = 5, 5*time.Second; return o }(),
		"--step-wait":       func() benchOptions { o := ok; o.stepWait = 0; return o }(),
		"--track-addresses": func() benchOptions { o := ok; o.trackAddresses = benchMaxAddresses + 1; return o }(),
	} {
		err := o.validate()
		require.ErrorIs(t, err, errUsage, flag)
		assert.Contains(t, err.Error(), flag)
	}
}

// The bench's sequence and team are files tend must accept: three steps, the second after the
// step wait; a demo request waits an hour for its rep, a callback request lapses after the SLA.
func TestBenchSequenceAndTeamAreValid(t *testing.T) {
	cat, diags := sequence.Parse("bench-sequences.yaml", []byte(benchSequences(20*time.Second)), sequence.Options{})
	require.Empty(t, diags)
	seq, ok := cat.Sequence("bench-series")
	require.True(t, ok)
	require.Len(t, seq.Steps, 3)
	assert.Equal(t, 20*time.Second, seq.Steps[1].Wait)
	assert.Equal(t, 24*time.Hour, seq.Steps[2].Wait)

	team, diags := sales.Parse("bench-sales.yaml", []byte(benchSales(90*time.Second)), sales.Options{Segments: []string{"bench"}})
	require.Empty(t, diags)
	assert.Equal(t, time.Hour, team.Policy("demo_request").Response)
	assert.Equal(t, 90*time.Second, team.Policy("callback_request").Response)
}

func TestLoopbackSourcesAreDistinctAddressesOfTheLoopbackRange(t *testing.T) {
	assert.Equal(t, "127.0.0.2", loopbackSource(0).String())
	assert.Equal(t, "127.0.1.0", loopbackSource(254).String())
	seen := map[string]bool{}
	for i := range benchMaxAddresses {
		a := loopbackSource(i)
		require.True(t, a.IsLoopback(), a.String())
		require.False(t, seen[a.String()], "%s twice", a)
		seen[a.String()] = true
	}
}

func TestMetricValueReadsAnUnlabelledSample(t *testing.T) {
	text := "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\n" +
		"process_resident_memory_bytes_total 1\nprocess_resident_memory_bytes 1.2345678e+08\n"
	v, found, err := metricValue(bufio.NewScanner(strings.NewReader(text)), "process_resident_memory_bytes")
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, 123456780.0, v)
	_, found, err = metricValue(bufio.NewScanner(strings.NewReader("go_goroutines 3\n")), "process_resident_memory_bytes")
	require.NoError(t, err)
	assert.False(t, found)
}
