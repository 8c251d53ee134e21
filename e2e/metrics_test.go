package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/metrics"
)

// A Prometheus scrape after a real lead's journey shows what tend did — the capture, the emails
// sent, the tracking hits, the score updates, the HTTP requests by route — and the Temporal SDK's
// own worker metrics, on one registry.
func TestMetricsScrapeShowsTheWork(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	s := setup(t, options{metrics: m})
	code, body := s.post("/api/v1/leads", ada())
	require.Equal(t, 201, code, "%v", body)
	msgs := s.waitMessages(1, 30*time.Second, 0)
	leadID := body["id"].(string)
	ls := links(t, msgs[0])
	require.NotEmpty(t, ls)
	time.Sleep(2500 * time.Millisecond) // a click within 2 s of the send looks like a scanner's
	request(t, http.MethodGet, ls[0], browserUA)
	eventually(t, 20*time.Second, func() bool { return s.score(leadID) > 0 }, "the click is scored")

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	scrape := func() string {
		resp, err := http.Get(srv.URL)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	value := func(text, series string) float64 {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+]+)$`)
		mm := re.FindStringSubmatch(text)
		if mm == nil {
			return -1
		}
		v, _ := strconv.ParseFloat(mm[1], 64)
		return v
	}
	var text string
	eventually(t, 20*time.Second, func() bool {
		text = scrape()
		return value(text, `tend_emails_total{outcome="sent"}`) >= 1
	}, "an email counted as sent")
	assert.Equal(t, 1.0, value(text, `tend_captures_total{result="created"}`), "one lead created")
	assert.GreaterOrEqual(t, value(text, `tend_score_updates_total`), 1.0)
	assert.Regexp(t, `(?m)^tend_tracking_events_total\{kind="click",origin="human"\} [1-9]`, text)
	assert.Regexp(t, `(?m)^tend_http_request_duration_seconds_count\{code="2xx",route="POST /api/v1/leads"\} 1$`, text)
	assert.Regexp(t, `(?m)^temporal_\w+`, text, "the SDK's own metrics")
	assert.Regexp(t, `(?m)^tend_outbox_backlog\{outbox="enrollments"\} 0$`, text)
}
