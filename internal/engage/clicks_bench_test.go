package engage_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/api"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/engage"
	"github.com/tendhq/tend/internal/track"
)

// clicks is a click path under test over a fresh database with sent messages that have links.
type clicks struct {
	svc      *engage.Service
	store    *db.Store
	notified *notified
	leads    []string // lead of each send, by position
	tokens   []string // click tokens: every link of every send, send by send
	opens    []string // open pixel token of each send
}

// setupClicks returns a service whose database holds sends sends of links links each, all sent,
// and each send already clicked prior times by a person within the last hour (spread over its
// links) and opened as often, as a popular email is.
func setupClicks(t testing.TB, sends, links, prior int) *clicks {
	t.Helper()
	ctx := context.Background()
	store := dbtest.Store(t)
	keys, err := track.ParseKeys(track.GenerateKey("k1"))
	require.NoError(t, err)
	c := &clicks{store: store, notified: &notified{}}
	var history []db.Event
	now := time.Now()
	for i := range sends {
		capt, err := store.RecordCapture(ctx, db.Capture{Email: fmt.Sprintf("reader%d@example.com", i), Source: "test", Segment: "general", Stage: "lead"})
		require.NoError(t, err)
		claim, err := store.ClaimSend(ctx, db.SendKey{LeadID: capt.Lead.ID, SequenceID: "general", StepID: "one"}, "welcome", "mail.example.com")
		require.NoError(t, err)
		var ls []db.Link
		for l := range links {
			ls = append(ls, db.Link{Index: l, URL: fmt.Sprintf("https://example.com/guide/%d", l)})
		}
		require.NoError(t, claim.RecordLinks(ctx, ls))
		require.NoError(t, claim.MarkSent(ctx, "Welcome", 250))
		id := uuid.MustParse(claim.Send.ID)
		for l := range links {
			c.tokens = append(c.tokens, keys.Sign(track.Token{Kind: track.KindClick, SendID: id, Link: l}))
		}
		c.opens = append(c.opens, keys.Sign(track.Token{Kind: track.KindOpen, SendID: id}))
		c.leads = append(c.leads, capt.Lead.ID)
		for k := range prior {
			l := k % links
			history = append(history, db.Event{LeadID: capt.Lead.ID, Type: "click", SendID: claim.Send.ID, LinkIndex: &l,
				URL: ls[l].URL, UserAgent: browserUA, Duplicate: k >= links,
				OccurredAt: now.Add(-time.Hour + time.Duration(k+1)*time.Hour/time.Duration(prior+1))})
			history = append(history, db.Event{LeadID: capt.Lead.ID, Type: "open", SendID: claim.Send.ID, UserAgent: browserUA,
				Duplicate: k > 0, OccurredAt: now.Add(-time.Hour + time.Duration(k+1)*time.Hour/time.Duration(prior+1))})
		}
	}
	for chunk := range slices.Chunk(history, 10000) {
		require.NoError(t, store.CopyEvents(ctx, chunk))
	}
	_, err = store.Pool().Exec(ctx, `ANALYZE events`)
	require.NoError(t, err)
	c.svc = &engage.Service{Store: store, Keys: keys, Heuristics: track.DefaultHeuristics(), Notifier: c.notified}
	return c
}

// BenchmarkClickRecording measures clicks recorded per second through Service.Click on a real
// Postgres, 32 at once, on sends already clicked 1, 50 or 300 times in the last hour: each click
// verifies its token, reads the send and its link, decides duplicate and scanner, and is stored
// before Click returns.
// Run: go test -run '^$' -bench BenchmarkClickRecording -benchtime 3000x ./internal/engage
func BenchmarkClickRecording(b *testing.B) {
	for _, prior := range []int{1, 50, 300} {
		b.Run(fmt.Sprintf("clicks-per-send=%d", prior), func(b *testing.B) {
			c := setupClicks(b, 200, 3, prior)
			stop := c.run()
			defer stop()
			ctx := context.Background()
			var next atomic.Int64
			b.SetParallelism(16) // 32 in flight on 2 cores, as tend bench loads it
			cpu := cpuTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					h := engage.Hit{Token: c.tokens[int(i*7919)%len(c.tokens)], Method: "GET", UserAgent: browserUA, At: time.Now()}
					if _, err := c.svc.Click(ctx, h); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "clicks/s")
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "tend-cpu-µs/op")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// run starts the service's background recording; the returned stop ends it and waits until it
// has drained.
func (c *clicks) run() (stop func()) {
	o := &opens{svc: c.svc}
	return o.run()
}

// BenchmarkTrackingHTTP measures the tracking endpoints end to end through the real HTTP handler
// (httptest, 32 requests in flight, no per-address limiter) beside a static GIF's ceiling through
// the same client: opens answered per second and clicks
// redirected per second on sends already clicked 50 times in the last hour, with their p99.
// Opens are counted once the last one is stored, so the figure is of durable recording.
// Run: go test -run '^$' -bench BenchmarkTrackingHTTP -benchtime 10000x ./internal/engage
func BenchmarkTrackingHTTP(b *testing.B) {
	b.Run("static", func(b *testing.B) {
		// The ceiling: a 1×1 GIF from a bare net/http handler, through the same client.
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "image/gif")
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(gif)
		}))
		defer hs.Close()
		cpu := cpuTime()
		b.ResetTimer()
		lat := loadHTTP(b, []string{hs.URL + "/pixel.gif"}, b.N, 32, http.StatusOK)
		b.StopTimer()
		reportHTTP(b, "static", lat, cpu)
	})
	for _, kind := range []string{"opens", "clicks"} {
		b.Run(kind, func(b *testing.B) {
			c := setupClicks(b, 200, 3, 50)
			stop := c.run()
			hs := httptest.NewServer((&api.Server{Store: c.store, Engage: c.svc}).Handler())
			defer hs.Close()
			urls := make([]string, 0, len(c.tokens))
			want := http.StatusFound
			if kind == "opens" {
				want = http.StatusOK
				for _, t := range c.opens {
					urls = append(urls, hs.URL+"/t/o/"+t)
				}
			} else {
				for _, t := range c.tokens {
					urls = append(urls, hs.URL+"/t/c/"+t)
				}
			}
			var before int
			require.NoError(b, c.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events WHERE type = 'open'`).Scan(&before))
			cpu := cpuTime()
			b.ResetTimer()
			lat := loadHTTP(b, urls, b.N, 32, want)
			if kind == "opens" {
				stop() // the clock stops when every answered open is stored
				stop = func() {}
			}
			b.StopTimer()
			defer stop()
			if kind == "opens" {
				var n int
				require.NoError(b, c.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events WHERE type = 'open'`).Scan(&n))
				require.Equal(b, b.N, n-before, "every answered open is stored")
			}
			reportHTTP(b, kind, lat, cpu)
		})
	}
}

// gif is a transparent 1×1 GIF, as the static ceiling serves it.
var gif = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

// reportHTTP reports the rate, the CPU per request of this process (server, recording and the
// load's client alike) and the latency percentiles.
func reportHTTP(b *testing.B, kind string, lat []time.Duration, cpu time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), kind+"/s")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// cpuTime is the CPU this process has used (user and system): the figures above share 2 cores
// with Postgres and, on a busy machine, with others, so CPU per operation is the steadier one.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadHTTP GETs total URLs (in turn) with workers in flight and returns each answer's latency;
// an answer other than want fails the benchmark.
func loadHTTP(b *testing.B, urls []string, total, workers, want int) []time.Duration {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true},
		Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, total)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var mine []time.Duration
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
			for {
				i := next.Add(1) - 1
				if i >= int64(total) {
					return
				}
				req, _ := http.NewRequest(http.MethodGet, urls[int(i*7919)%len(urls)], nil)
				req.Header.Set("User-Agent", browserUA)
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					b.Errorf("GET %s: %d, want %d", req.URL.Path[:5], resp.StatusCode, want)
					return
				}
				mine = append(mine, time.Since(start))
			}
		})
	}
	wg.Wait()
	return lat
}
