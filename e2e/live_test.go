package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/app"
	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/rollout"
	"github.com/tendhq/tend/workflows"
)

// liveWait is the wait between the steps of testdata/live-v1.yaml: long enough that, with the
// machine busy with other tests, the apply falls between two rounds of sends.
const liveWait = 20 * time.Second

// liveSend is one email a lead received, as the sends table records it.
type liveSend struct {
	step, subject string
	at            time.Time
	version       int
}

func (s *stack) liveSends(leadID string) []liveSend {
	s.t.Helper()
	rows, err := s.store.Pool().Query(context.Background(), `SELECT step_id, subject, sent_at, content_version FROM sends
		WHERE lead_id = $1 AND status = 'sent' ORDER BY sent_at`, leadID)
	require.NoError(s.t, err)
	defer rows.Close()
	var out []liveSend
	for rows.Next() {
		var l liveSend
		require.NoError(s.t, rows.Scan(&l.step, &l.subject, &l.at, &l.version))
		out = append(out, l)
	}
	require.NoError(s.t, rows.Err())
	return out
}

func stepIDs(sends []liveSend) []string {
	out := []string{}
	for _, l := range sends {
		out = append(out, l.step)
	}
	return out
}

// 200 leads spread over a 4-step sequence; a version is applied that removes a step, changes a
// wait and a subject, and adds a step. Every lead then receives exactly what the README's rules
// say for where it stood, at the time they say, and the dry run the apply showed predicted the
// groups that then happened. Two workers, each with its own copy of the content, pick the new
// version up without a restart.
func TestLiveEditOfARunningSequence(t *testing.T) {
	t.Parallel()
	perWorker := [2]map[int]int{{}, {}} // worker → content version → sends
	var mu sync.Mutex
	count := func(w int) func(ctx context.Context, in activities.SendInput) {
		return func(_ context.Context, in activities.SendInput) {
			mu.Lock()
			defer mu.Unlock()
			perWorker[w][in.ContentVersion]++
		}
	}
	s := setup(t, options{live: true, sequences: "testdata/live-v1.yaml", beforeSend: count(0)})
	second := s.deps
	second.Live = s.openContent("testdata/live-v1.yaml", "")
	second.BeforeSend = count(1)
	w2 := app.NewWorker(s.client, s.queue, second)
	require.NoError(t, w2.Start())
	t.Cleanup(w2.Stop)

	capture := func(wave, n int) []string {
		var ids []string
		for i := range n {
			code, body := s.post("/api/v1/leads", map[string]any{
				"email": fmt.Sprintf("live-%d-%d@example.com", wave, i), "name": "Live Lead", "interests": []string{"analytics"},
				"source": "api", "consent": map[string]any{"granted": true, "wording_id": "live-v1"}})
			require.Equal(t, 201, code, "%v", body)
			ids = append(ids, body["id"].(string))
		}
		return ids
	}
	t0 := time.Now()
	sleepUntil := func(at time.Duration) { time.Sleep(time.Until(t0.Add(at))) }
	var waves [4][]string
	waves[0] = capture(0, 50)
	sleepUntil(liveWait)
	waves[1] = capture(1, 50)
	sleepUntil(2 * liveWait)
	waves[2] = capture(2, 50)
	// The apply comes once the last wave has its first email and halfway to the next round.
	eventually(t, liveWait/2, func() bool {
		for _, id := range waves[2] {
			if len(s.liveSends(id)) == 0 {
				return false
			}
		}
		return true
	}, "every lead of the last wave got its first email")
	sleepUntil(2*liveWait + liveWait/2)

	v2, err := os.ReadFile("testdata/live-v2.yaml")
	require.NoError(t, err)
	applyAt := time.Now()
	code, out := s.post("/api/content/apply", map[string]any{"files": map[string]any{"sequences": map[string]string{"live.yaml": string(v2)}}})
	require.Equal(t, 200, code, "%v", out)
	require.Equal(t, true, out["published"], "%v", out)
	raw, err := json.Marshal(out["dry_run"])
	require.NoError(t, err)
	var report rollout.Report
	require.NoError(t, json.Unmarshal(raw, &report))
	t.Logf("dry run:\n%s", report.Text())

	waves[3] = capture(3, 50)

	// Both workers use the new version within seconds, without a restart.
	for i, live := range []*content.Live{s.deps.Live, second.Live} {
		eventually(t, 5*time.Second, func() bool { return live.Current().Version(content.Sequences) == 2 }, "worker %d on version 2", i+1)
	}

	// The rules, for each place a lead can stand in version 1.
	expect := map[string][]string{
		"s1,s2,s3": {"s1", "s2", "s3", "s4", "s5"}, // waits for s4: unchanged, with its new subject; then the new s5
		"s1,s2":    {"s1", "s2", "s3", "s4", "s5"}, // waits for s3: rescheduled, 24s from s2
		"s1":       {"s1", "s3", "s4", "s5"},       // waits for the removed s2: moved to s3, 24s from s1
		"":         {"s1", "s3", "s4", "s5"},       // enrolled on version 2
	}
	// Where each lead stood when it followed version 2: the steps it had been sent under version 1.
	passed := map[string][]string{}
	for _, wave := range waves[:3] {
		for _, id := range wave {
			eventually(t, 2*liveWait, func() bool { return s.leadState(id).ContentVersion == 2 }, "lead %s follows version 2", id)
			for _, l := range s.liveSends(id) {
				if l.version == 1 {
					passed[id] = append(passed[id], l.step)
				}
			}
		}
	}
	groups := map[string]int{}
	total := 0
	for _, wave := range waves {
		for _, id := range wave {
			p := strings.Join(passed[id], ",")
			require.Contains(t, expect, p, "lead %s had been sent %q when the version was applied", id, p)
			groups[p]++
			total += len(expect[p])
		}
	}
	t.Logf("positions when applied: %v", groups)
	for _, p := range []string{"s1,s2,s3", "s1,s2", "s1"} {
		require.Positive(t, groups[p], "no lead stood after %s: the waves did not spread as planned", p)
	}
	// Exactly the emails owed, no more: waitMessages fails on one too many.
	s.waitMessages(total, 200*time.Second, 3*time.Second)

	slack := 15 * time.Second // a send's lateness on a busy machine, at most
	within := func(id, what string, from, to time.Time, want time.Duration) {
		t.Helper()
		got := to.Sub(from)
		assert.True(t, got >= want-500*time.Millisecond && got <= want+slack, "lead %s: %s %s after, want %s", id, what, got, want)
	}
	for _, wave := range waves {
		for _, id := range wave {
			p := strings.Join(passed[id], ",")
			got := s.liveSends(id)
			require.Equal(t, expect[p], stepIDs(got), "lead %s, at %q when applied", id, p)
			at := map[string]liveSend{}
			for _, l := range got {
				at[l.step] = l
			}
			assert.Equal(t, "L4, revised", at["s4"].subject, "lead %s: a changed subject applies to the next send", id)
			switch p {
			case "s1,s2,s3":
				within(id, "s4", at["s3"].at, at["s4"].at, liveWait)
			case "s1,s2":
				within(id, "s3 (rescheduled)", at["s2"].at, at["s3"].at, 2*liveWait)
			case "s1":
				within(id, "s3 (moved from s2)", at["s1"].at, at["s3"].at, 2*liveWait)
			case "":
				within(id, "s3", at["s1"].at, at["s3"].at, 2*liveWait)
			}
			within(id, "s5", at["s4"].at, at["s5"].at, liveWait/2)
			for _, l := range got {
				if l.at.After(applyAt.Add(5 * time.Second)) {
					assert.Equal(t, 2, l.version, "lead %s: %s was sent after the apply under version %d", id, l.step, l.version)
				}
			}
		}
	}

	// The dry run shown before publishing predicted the groups that then happened.
	require.Len(t, report.Sequences, 1)
	// Groups of a step differ only by their due minute here.
	type outcome struct {
		kind workflows.PlacementKind
		to   string
	}
	predicted := map[string]map[outcome]int{}
	waiting, changedEmail := map[string]int{}, 0
	for _, st := range report.Sequences[0].Steps {
		waiting[st.Step] = st.Waiting
		predicted[st.Step] = map[outcome]int{}
		for _, g := range st.Groups {
			predicted[st.Step][outcome{g.Kind, g.To}] += g.Count.Count
			changedEmail += g.EmailChanged
		}
	}
	assert.Equal(t, map[string]int{"s4": groups["s1,s2,s3"], "s3": groups["s1,s2"], "s2": groups["s1"]}, waiting)
	assert.Equal(t, map[outcome]int{{workflows.Unchanged, "s4"}: groups["s1,s2,s3"]}, predicted["s4"])
	assert.Equal(t, map[outcome]int{{workflows.Rescheduled, "s3"}: groups["s1,s2"]}, predicted["s3"])
	assert.Equal(t, map[outcome]int{{workflows.Moved, "s3"}: groups["s1"]}, predicted["s2"])
	assert.Equal(t, groups["s1,s2,s3"], changedEmail, "the dry run says s4's email changed")
	assert.Zero(t, report.Unreadable.Count)

	for p, scenario := range map[string]string{"s1,s2": "lead-live-follow-rescheduled", "s1": "lead-live-follow-moved"} {
		for _, wave := range waves[:3] {
			if i := slices.IndexFunc(wave, func(id string) bool { return strings.Join(passed[id], ",") == p }); i >= 0 {
				s.recordScenario(scenario, wave[i])
				break
			}
		}
	}

	// Both workers sent under the new version.
	mu.Lock()
	defer mu.Unlock()
	for i, sent := range perWorker {
		assert.Positive(t, sent[2], "worker %d sent nothing under version 2: %v", i+1, sent)
	}
}

// Each lead gets the variant of each step that VariantFor gives it — the same before and after a
// worker restart — with that variant's subject; a holdout lead is mailed nothing and its steps are
// recorded as held out.
func TestVariantsAndHoldoutOnRealParts(t *testing.T) {
	t.Parallel()
	s := setup(t, options{live: true, sequences: "testdata/variants.yaml"})
	cat := s.deps.Live.Current().Catalog
	seq, ok := cat.Sequence("ab-series")
	require.True(t, ok)
	var leads []string
	for i := range 30 {
		code, body := s.post("/api/v1/leads", map[string]any{"email": fmt.Sprintf("ab-%d@example.com", i), "name": "AB Lead",
			"interests": []string{"analytics"}, "source": "api", "consent": map[string]any{"granted": true, "wording_id": "ab"}})
		require.Equal(t, 201, code, "%v", body)
		leads = append(leads, body["id"].(string))
	}
	treated := 0
	for _, id := range leads {
		if !seq.HeldOut(id) {
			treated++
		}
	}
	require.Positive(t, treated)
	require.Less(t, treated, len(leads), "with 30 leads and a 20% holdout some are held out")
	// Every lead's first step, then a new worker for (most of) the second.
	eventually(t, 60*time.Second, func() bool {
		var n int
		require.NoError(t, s.store.Pool().QueryRow(context.Background(),
			`SELECT count(*) FROM sends WHERE step_id = 'first' AND status IN ('sent', 'held_out')`).Scan(&n))
		return n == len(leads)
	}, "every lead's first step")
	s.worker.Stop()
	s.startWorker()
	s.waitMessages(2*treated, 60*time.Second, 6*time.Second)
	// The held-out leads' second steps mail nothing: wait for their rows as the inbox cannot tell.
	eventually(t, 60*time.Second, func() bool {
		var n int
		require.NoError(t, s.store.Pool().QueryRow(context.Background(),
			`SELECT count(*) FROM sends WHERE step_id = 'second' AND status IN ('sent', 'held_out')`).Scan(&n))
		return n == len(leads)
	}, "every lead's second step")

	bySubject := map[string]int{}
	for _, m := range s.inbox.Messages() {
		bySubject[m.Subject]++
	}
	want := map[string]int{}
	for _, id := range leads {
		rows, err := s.store.Pool().Query(context.Background(), `SELECT step_id, status, variant, subject FROM sends WHERE lead_id = $1 ORDER BY step_id`, id)
		require.NoError(t, err)
		got := map[string][3]string{}
		for rows.Next() {
			var step, status, variant, subject string
			require.NoError(t, rows.Scan(&step, &status, &variant, &subject))
			got[step] = [3]string{status, variant, subject}
		}
		require.NoError(t, rows.Err())
		rows.Close()
		for _, st := range seq.Steps {
			v := st.VariantFor(id, seq.ID)
			if seq.HeldOut(id) {
				assert.Equal(t, "held_out", got[st.ID][0], "lead %s, step %s", id, st.ID)
				continue
			}
			assert.Equal(t, [3]string{"sent", v.ID, v.Subject}, got[st.ID], "lead %s, step %s", id, st.ID)
			want[v.Subject]++
		}
	}
	assert.Equal(t, want, bySubject, "the inbox holds each lead's variant, once")
	for _, id := range leads {
		if seq.HeldOut(id) {
			s.recordScenario("lead-holdout", id)
			break
		}
	}
	for _, id := range leads {
		if !seq.HeldOut(id) {
			s.recordScenario("lead-variants", id)
			break
		}
	}
}

// A paused step holds its leads, in order, and a resume sends them spread over the ramp; then a
// lead that reaches the sequence's goal leaves it at once and its conversion is recorded.
func TestPauseResumeAndGoalOnRealParts(t *testing.T) {
	t.Parallel()
	s := setup(t, options{live: true, sequences: "testdata/pause.yaml"})
	code, out := s.post("/api/sequences/paused-series/pause", map[string]any{"step": "p2"})
	require.Equal(t, 200, code, "%v", out)
	var leads []string
	for i := range 4 {
		code, body := s.post("/api/v1/leads", map[string]any{"email": fmt.Sprintf("pause-%d@example.com", i), "name": "Paused Lead",
			"interests": []string{"analytics"}, "source": "api", "consent": map[string]any{"granted": true, "wording_id": "p"}})
		require.Equal(t, 201, code, "%v", body)
		leads = append(leads, body["id"].(string))
	}
	for _, id := range leads {
		eventually(t, 30*time.Second, func() bool { return s.leadState(id).Held != nil }, "lead %s held at p2", id)
	}
	s.waitMessages(4, 10*time.Second, 2*time.Second) // p1 only: nothing else goes out while paused
	for _, id := range leads {
		st := s.leadState(id)
		assert.Equal(t, workflows.StatusRunning, st.Status)
		for _, h := range st.History {
			assert.NotEqual(t, "skipped", h.Outcome, "lead %s: a pause skips nothing", id)
		}
	}
	var order []string // the order the sends fell due in
	rows, err := s.store.Pool().Query(context.Background(), `SELECT lead_id FROM held_sends ORDER BY held_at, lead_id`)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		order = append(order, id)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	require.ElementsMatch(t, leads, order)

	resumeAt := time.Now()
	code, out = s.post("/api/sequences/paused-series/resume", map[string]any{"step": "p2", "ramp": "8s"})
	require.Equal(t, 200, code, "%v", out)
	for _, id := range order {
		eventually(t, 40*time.Second, func() bool { return len(s.liveSends(id)) >= 2 }, "lead %s sent p2", id)
	}
	var at []time.Time
	for i, id := range order {
		sends := s.liveSends(id)
		require.Equal(t, []string{"p1", "p2"}, stepIDs(sends)[:2], "lead %s", id)
		at = append(at, sends[1].at)
		slot := resumeAt.Add(time.Duration(2*i) * time.Second) // 8s over 4 leads: one every 2 seconds
		assert.False(t, sends[1].at.Before(slot.Add(-time.Second)), "lead %d sent %s before its slot %s", i, sends[1].at, slot)
	}
	assert.True(t, slices.IsSortedFunc(at, func(a, b time.Time) int { return a.Compare(b) }), "sent in the order they fell due: %v", at)
	assert.GreaterOrEqual(t, at[3].Sub(at[0]), 5*time.Second, "spread over the ramp, not all at once")

	// The goal: a demo request ends the series at once; p3 never goes out to that lead.
	goal := order[0]
	code, res := s.post("/api/v1/events", map[string]any{"events": []map[string]any{{"id": "demo-1", "lead_id": goal, "type": "demo_request"}}})
	require.Equal(t, 200, code, "%v", res)
	eventually(t, 20*time.Second, func() bool { return s.leadState(goal).ExitReason == "goal reached" }, "lead exits on its goal")
	var n int
	require.NoError(t, s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM conversions WHERE lead_id = $1 AND sequence_id = 'paused-series'`, goal).Scan(&n))
	assert.Equal(t, 1, n, "one conversion")
	s.waitMessages(8+3, 45*time.Second, 3*time.Second) // p3 for the other three only
	assert.Equal(t, []string{"p1", "p2"}, stepIDs(s.liveSends(goal)))
	s.recordScenario("lead-pause-resume-goal", goal)
	s.recordScenario("lead-pause-resume", order[1])
}
