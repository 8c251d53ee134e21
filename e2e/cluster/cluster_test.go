// Package cluster runs leads through tend's production topology — the real Temporal server on
// Postgres as its own process, two `tend server` processes behind a load balancer, three
// `tend worker` processes and an SMTP sink, all from freshly built binaries (internal/cluster,
// what `make cluster` runs) — kills one worker with SIGKILL while emails are falling due, and
// checks what a user would: every email arrives exactly once, every worker did work, both
// servers answered, and a Prometheus scrape of each part shows its metrics.
package cluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/cluster"
	"github.com/tendhq/tend/internal/mailcapture"
)

const (
	leads = 60
	steps = 3
)

func TestWorkerKilledMidRunLosesAndRepeatsNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := build(t, dir)
	testdata, err := filepath.Abs("testdata")
	require.NoError(t, err)
	examples, err := filepath.Abs(filepath.Join("..", "..", "examples"))
	require.NoError(t, err)

	start := time.Now()
	c, err := cluster.Start(ctx, cluster.Config{Dir: filepath.Join(dir, "cluster"), Bin: bin, Ephemeral: true,
		HTTPAddr: "127.0.0.1:0", InboxAddr: "127.0.0.1:0", Log: testLog{t},
		Env: []string{
			"TEND_SEQUENCES=" + filepath.Join(testdata, "sequences.yaml"),
			"TEND_SCORING=" + filepath.Join(examples, "scoring.yaml"),
			"TEND_SALES=off",
			"TEND_LOG_LEVEL=info",
		}})
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range append(c.Parts(), c.Temporal) {
				t.Logf("---- %s (%s), last lines:\n%s", p.Name, p.LogPath, tailFile(p.LogPath, 15))
			}
		}
	})
	t.Logf("topology up in %s", time.Since(start).Round(time.Millisecond))
	require.Len(t, c.Servers, 2)
	require.Len(t, c.Workers, 3)

	db, err := pgxpool.New(ctx, c.DatabaseURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)

	// Capture every lead through the load balancer, eight at a time.
	var wg sync.WaitGroup
	errs := make(chan error, leads)
	sem := make(chan struct{}, 8)
	for i := range leads {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- capture(ctx, c.API, c.APIKey, i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	// Kill worker-3 once every worker has sent something and half the emails are in: the third
	// steps of most leads, and some of their second, are still to come.
	victim := c.Workers[2]
	sentBy := make([]float64, len(c.Workers))
	require.Eventually(t, func() bool {
		all := true
		for i, w := range c.Workers {
			sentBy[i] = scrape(t, w.MetricsURL, "tend_emails_total", "outcome", "sent")
			all = all && sentBy[i] > 0
		}
		return all && len(c.Sink.Messages()) >= leads*steps/2
	}, 2*time.Minute, 100*time.Millisecond, "every worker sends before the kill")
	beforeKill := len(c.Sink.Messages())
	victim.Kill()
	require.False(t, victim.Running())
	t.Logf("worker-3 SIGKILLed after it sent %.0f emails; %d of %d emails in; sent by worker 1 and 2: %.0f, %.0f",
		sentBy[2], beforeKill, leads*steps, sentBy[0], sentBy[1])
	require.Less(t, beforeKill, leads*steps, "the kill comes while emails are still due")

	// Every email arrives, once: under one Message-ID per lead and step. The one copy tend's
	// promise allows (README, "What each failure does") is a send whose worker died between the
	// SMTP server's 250 and the commit that records it: the retry sends it again under the same
	// Message-ID, which receivers deduplicate. A second Message-ID would be a second email.
	key := func(to, subject string) string { return to + " | " + subject }
	due := map[string]bool{}
	for i := range leads {
		for s := 1; s <= steps; s++ {
			due[key(email(i), fmt.Sprintf("Cluster %d of 3 for Lead%d", s, i))] = true
		}
	}
	require.Eventually(t, func() bool {
		arrived := map[string]bool{}
		for _, m := range c.Sink.Messages() {
			if len(m.To) == 1 && due[key(m.To[0], m.Subject)] {
				arrived[key(m.To[0], m.Subject)] = true
			}
		}
		var sent int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM sends WHERE status = 'sent'`).Scan(&sent); err != nil {
			return false
		}
		return len(arrived) == len(due) && sent == leads*steps
	}, 4*time.Minute, 250*time.Millisecond, "all %d emails arrive and are recorded after the kill", leads*steps)
	time.Sleep(3 * time.Second) // a copy would arrive within the activity's retry
	msgs := c.Sink.Messages()
	idsOf := map[string]map[string]bool{} // pair → its Message-IDs
	pairOf := map[string]string{}         // Message-ID → its pair
	resent := 0
	for _, m := range msgs {
		require.Len(t, m.To, 1)
		k := key(m.To[0], m.Subject)
		require.True(t, due[k], "an email nobody was due: %s", k)
		if idsOf[k] == nil {
			idsOf[k] = map[string]bool{}
		}
		if idsOf[k][m.MessageID] {
			resent++
		}
		idsOf[k][m.MessageID] = true
		if other, ok := pairOf[m.MessageID]; ok {
			assert.Equal(t, other, k, "Message-ID %s on two emails", m.MessageID)
		}
		pairOf[m.MessageID] = k
	}
	for k := range due {
		assert.Len(t, idsOf[k], 1, "%s received under one Message-ID", k)
	}
	assert.LessOrEqual(t, resent, 3, "copies under the same Message-ID come only from sends in flight at the kill")
	t.Logf("%d emails, %d of them a copy under the same Message-ID (the documented window)", len(msgs), resent)
	var rows int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM sends`).Scan(&rows))
	assert.Equal(t, leads*steps, rows, "one send row per lead and step")

	// Every worker did work; the survivors took over the killed one's share.
	after := []float64{scrape(t, c.Workers[0].MetricsURL, "tend_emails_total", "outcome", "sent"),
		scrape(t, c.Workers[1].MetricsURL, "tend_emails_total", "outcome", "sent")}
	assert.Greater(t, sentBy[2], 0.0, "worker-3 sent before it was killed")
	assert.Greater(t, after[0]+after[1], sentBy[0]+sentBy[1], "the surviving workers sent what fell due after the kill")
	// worker-3 may have sent a few more between its last scrape and the kill, never fewer.
	assert.LessOrEqual(t, after[0]+after[1]+sentBy[2], float64(leads*steps), "no worker counts an email twice")

	// A burst of clicks through the balancer, from many client addresses as real readers are:
	// every one is followed to its link, none refused for want of a database connection.
	clicks := clickURLs(msgs)
	require.NotEmpty(t, clicks, "the emails carry tracked links")
	codes := burst(ctx, clicks, 3, 32)
	assert.Equal(t, map[int]int{http.StatusFound: 3 * len(clicks)}, codes, "every click redirects")

	// Both servers answered through the balancer, and each part's scrape shows its metrics.
	for _, s := range c.Servers {
		n := scrapeCount(t, s.MetricsURL, "tend_http_request_duration_seconds", "route", "POST /api/v1/leads")
		assert.Greater(t, n, 0.0, "%s answered captures", s.Name)
		exposes(t, s.Name, s.MetricsURL, "tend_captures_total", "tend_enrollments_total", "tend_http_request_duration_seconds", "process_resident_memory_bytes")
	}
	for _, w := range c.Workers[:2] {
		exposes(t, w.Name, w.MetricsURL, "tend_emails_total", "tend_score_updates_total", "temporal_workflow_task_execution_latency",
			"temporal_activity_execution_latency", "process_resident_memory_bytes")
	}
	exposes(t, "temporal", c.TemporalMetrics, "persistence_requests")
}

var clickLink = regexp.MustCompile(`https?://[^\s"<>]+/t/c/[A-Za-z0-9_.~-]+`)

// clickURLs is one tracked link from each message.
func clickURLs(msgs []mailcapture.Message) []string {
	var out []string
	for _, m := range msgs {
		if u := clickLink.FindString(m.Text); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// burst GETs each URL rounds times with inFlight requests at once, each from its own loopback
// address (tend limits hits per client address), and counts the answers by status.
func burst(ctx context.Context, urls []string, rounds, inFlight int) map[int]int {
	var mu sync.Mutex
	codes := map[int]int{}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for i := range jobs {
				ip := net.IPv4(127, 3, byte(i/250), byte(i%250+1))
				c := &http.Client{Timeout: 10 * time.Second,
					Transport:     &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}).DialContext},
					CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				code := 0
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, urls[i%len(urls)], nil)
				if err == nil {
					if resp, err := c.Do(req); err == nil {
						code = resp.StatusCode
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
				c.CloseIdleConnections()
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		})
	}
	for i := range rounds * len(urls) {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return codes
}

// exposes checks that a scrape of url has each metric family in names.
func exposes(t *testing.T, part, url string, names ...string) {
	t.Helper()
	mf := families(t, url)
	for _, name := range names {
		_, ok := mf[name]
		assert.True(t, ok, "%s's scrape shows %s", part, name)
	}
}
func email(i int) string { return fmt.Sprintf("lead%d@cluster.example", i) }

func capture(ctx context.Context, api, key string, i int) error {
	body := fmt.Sprintf(`{"email":%q,"name":"Lead%d Test","interests":["alpha"],"source":"api","consent":{"granted":true,"wording_id":"cluster"}}`, email(i), i)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+"/api/v1/leads", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("capture lead %d: %s", i, resp.Status)
	}
	return nil
}

// build builds tend, the Temporal server and temporal-sql-tool into dir, as make cluster does.
func build(t *testing.T, dir string) cluster.Binaries {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	b := cluster.Binaries{Tend: filepath.Join(dir, "tend"), TemporalServer: filepath.Join(dir, "temporal-server"), SQLTool: filepath.Join(dir, "temporal-sql-tool")}
	for _, x := range []struct{ out, pkg string }{
		{b.Tend, "./cmd/tend"},
		{b.TemporalServer, "go.temporal.io/server/cmd/server"},
		{b.SQLTool, "go.temporal.io/server/cmd/tools/sql"},
	} {
		start := time.Now()
		cmd := exec.Command("go", "build", "-o", x.out, x.pkg)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go build %s:\n%s", x.pkg, out)
		t.Logf("built %s in %s", x.pkg, time.Since(start).Round(time.Second))
	}
	return b
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// families parses a Prometheus scrape.
func families(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	var p expfmt.TextParser
	mf, err := p.TextToMetricFamilies(strings.NewReader(get(t, url)))
	require.NoError(t, err, "parse the scrape of %s", url)
	return mf
}

func matching(m *dto.Metric, label, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == label && l.GetValue() == value {
			return true
		}
	}
	return false
}

// scrape is the sum of the counter name's series whose label has value.
func scrape(t *testing.T, url, name, label, value string) float64 {
	t.Helper()
	return sumSeries(t, url, name, label, value, func(m *dto.Metric) float64 { return m.GetCounter().GetValue() })
}

// scrapeCount is the number of observations of the histogram name's series whose label has value.
func scrapeCount(t *testing.T, url, name, label, value string) float64 {
	t.Helper()
	return sumSeries(t, url, name, label, value, func(m *dto.Metric) float64 { return float64(m.GetHistogram().GetSampleCount()) })
}

// sumSeries adds up of(series) over the series of the metric name whose label has value.
func sumSeries(t *testing.T, url, name, label, value string, of func(*dto.Metric) float64) float64 {
	t.Helper()
	var sum float64
	if f, ok := families(t, url)[name]; ok {
		for _, m := range f.GetMetric() {
			if matching(m, label, value) {
				sum += of(m)
			}
		}
	}
	return sum
}

// tailFile is cluster.Tail with each line cut at 400 characters: Temporal's errors carry stack
// traces.
func tailFile(path string, n int) string {
	lines := strings.Split(cluster.Tail(path, n), "\n")
	for i, l := range lines {
		if len(l) > 400 {
			lines[i] = l[:400] + " …"
		}
	}
	return strings.Join(lines, "\n")
}

// testLog writes the cluster's start-up lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
