package metrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/metrics"
)

// What the instrumented code counts shows on a scrape under tend_ names with the labels an
// operator queries by.
func TestSetExposesEachMetricWithItsLabels(t *testing.T) {
	m := metrics.New()
	m.Email(metrics.EmailSent)
	m.Email(metrics.EmailSent)
	m.Email(metrics.EmailHardBounce)
	m.Tracked("open", true)
	m.Tracked("click", false)
	m.Bounce("hard", true)
	m.ScoreUpdated()
	m.StageChanged("lead", "mql")
	m.StageChanged("mql", "mql") // no change, nothing counted
	m.HandedOff(false)
	m.HandedOff(true)
	m.SLABreached(90 * time.Second)
	m.HTTPRequest("GET /t/c/{token}", 302, 3*time.Millisecond)
	m.HTTPRequest("", 404, time.Millisecond)
	m.Captured(true)
	m.Enrolled(false)
	queue := 7
	m.WatchQueue("coalescer_pending", "Leads waiting.", func() int { return queue })
	m.WatchOpens(func() metrics.OpenCounts { return metrics.OpenCounts{Waiting: 3, Dropped: 2, Failed: 1} })

	mfs, err := m.Registry().Gather()
	require.NoError(t, err)
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems, "names and help follow Prometheus conventions")
	body := scrape(t, m)
	for _, want := range []string{
		`tend_emails_total{outcome="sent"} 2`,
		`tend_emails_total{outcome="hard_bounce"} 1`,
		`tend_emails_total{outcome="paused"} 0`, // every outcome is there from the start
		`tend_tracking_events_total{kind="open",origin="machine"} 1`,
		`tend_tracking_events_total{kind="click",origin="human"} 1`,
		`tend_bounce_reports_total{kind="hard",suppressed="true"} 1`,
		`tend_score_updates_total 1`,
		`tend_stage_transitions_total{from="lead",to="mql"} 1`,
		`tend_handoffs_total{kind="handoff"} 1`,
		`tend_handoffs_total{kind="reassignment"} 1`,
		`tend_sla_breaches_total 1`,
		`tend_escalation_lateness_seconds_bucket{le="60"} 0`,
		`tend_escalation_lateness_seconds_bucket{le="120"} 1`,
		`tend_escalation_lateness_seconds_sum 90`,
		`tend_http_request_duration_seconds_count{code="3xx",route="GET /t/c/{token}"} 1`,
		`tend_http_request_duration_seconds_count{code="4xx",route="unmatched"} 1`,
		`tend_captures_total{result="created"} 1`,
		`tend_enrollments_total{result="deferred"} 1`,
		`tend_coalescer_pending 7`,
		`tend_opens_queued 3`,
		`tend_opens_lost_total{reason="dropped"} 2`,
		`tend_opens_lost_total{reason="failed"} 1`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		assert.Contains(t, body, want)
	}
	assert.NotContains(t, body, `to="mql"} 2`)
	queue = 0
	assert.Contains(t, scrape(t, m), `tend_coalescer_pending 0`, "the queue is read at every scrape")
}

// A nil Set is a Set that counts nothing: parts built without metrics need no checks.
func TestNilSetCountsNothing(t *testing.T) {
	var m *metrics.Set
	m.Email(metrics.EmailSent)
	m.Tracked("open", false)
	m.SLABreached(time.Second)
	m.HTTPRequest("GET /healthz", 200, time.Millisecond)
	m.WatchQueue("x", "x", func() int { return 1 })
	h := m.Temporal()
	h.WithTags(map[string]string{"a": "b"}).Counter("temporal_request").Inc(1)
}

// The backlog is read at most every BacklogEvery, however often it is scraped; a read that fails
// leaves it out of the scrape instead of showing a stale figure as current.
func TestBacklogIsReadAtMostEvery15sAndLeftOutWhenItFails(t *testing.T) {
	m := metrics.New()
	reads := 0
	var fail error
	m.WatchBacklog(func(ctx context.Context) (metrics.Backlog, error) {
		reads++
		_, ok := ctx.Deadline()
		assert.True(t, ok, "a read is bounded")
		return metrics.Backlog{Enrollments: 4, CRMDeliveries: 9}, fail
	})
	body := scrape(t, m)
	assert.Contains(t, body, `tend_outbox_backlog{outbox="enrollments"} 4`)
	assert.Contains(t, body, `tend_outbox_backlog{outbox="crm"} 9`)
	scrape(t, m)
	assert.Equal(t, 1, reads)

	m2 := metrics.New()
	m2.WatchBacklog(func(context.Context) (metrics.Backlog, error) { return metrics.Backlog{}, errors.New("database down") })
	assert.NotContains(t, scrape(t, m2), "tend_outbox_backlog{")
}

// /readyz is 503 naming the check that failed — only its name — and 200 when all pass.
func TestReadyNamesTheFailingCheck(t *testing.T) {
	pgUp := true
	h := metrics.Ready(time.Second, nil,
		metrics.Check{Name: "postgres", Run: func(context.Context) error {
			if !pgUp {
				return errors.New("dial tcp 10.1.2.3:5432: connection refused")
			}
			return nil
		}},
		metrics.Check{Name: "temporal", Run: func(context.Context) error { return nil }})
	get := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec
	}
	rec := get()
	assert.Equal(t, http.StatusOK, rec.Code)
	pgUp = false
	rec = get()
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.JSONEq(t, `{"status":"unavailable","failing":["postgres"]}`, rec.Body.String())
	assert.NotContains(t, rec.Body.String(), "10.1.2.3", "no internal address on a public port")
}

func scrape(t *testing.T, m *metrics.Set) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var b strings.Builder
	_, err = io.Copy(&b, resp.Body)
	require.NoError(t, err)
	return b.String()
}

// The Grafana dashboard in deploy/ queries only metrics tend exposes: every tend_* name in its
// expressions is one of the Set's (histograms by their _bucket, _count and _sum series).
func TestDashboardQueriesExistingMetrics(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/grafana-dashboard.json")
	require.NoError(t, err)
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &d))
	require.NotEmpty(t, d.Panels)

	m := metrics.New()
	m.WatchQueue("coalescer_pending", "Leads waiting.", func() int { return 0 })
	m.WatchOpens(func() metrics.OpenCounts { return metrics.OpenCounts{} })
	m.WatchBacklog(func(context.Context) (metrics.Backlog, error) { return metrics.Backlog{}, nil })
	m.Tracked("click", false)
	m.StageChanged("lead", "mql")
	m.HandedOff(false)
	m.SLABreached(time.Second)
	m.HTTPRequest("GET /healthz", 200, time.Millisecond)
	m.Captured(true)
	m.Enrolled(true)
	m.Bounce("hard", true)
	m.ScoreUpdated()
	body := scrape(t, m)
	name := regexp.MustCompile(`\btend_[a-z_]+`)
	for _, p := range d.Panels {
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				assert.Regexp(t, `(?m)^`+regexp.QuoteMeta(n)+`[{ ]`, body, "panel %q queries %s, which tend does not expose", p.Title, n)
			}
		}
	}
}
