package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The tracking targets: tend's opens and clicks at half the static GIF's rate or better, p99 ≤ 25 ms.
const (
	trackTargetRatio = 0.5
	trackTargetP99   = 25 * time.Millisecond
)

// pixelGIF is a transparent 1×1 GIF, as a tracking pixel answers.
var pixelGIF = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")

var trackingURL = regexp.MustCompile(`https?://[^\s"'<>]+/t/[oc]/[^\s"'<>&?]+`)

// trackingURLs collects the open and click URLs of this run's emails still in the sink: real
// tokens, signed by tend for real sends.
func (b *bench) trackingURLs(ctx context.Context) (opens, clicks []string, err error) {
	msgs, err := b.messages(ctx)
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		if len(m.To) != 1 || !strings.HasPrefix(m.To[0], "bench-"+b.run+"-") {
			continue
		}
		for _, u := range trackingURL.FindAllString(m.HTML, -1) {
			if seen[u] {
				continue
			}
			seen[u] = true
			if strings.Contains(u, "/t/o/") {
				opens = append(opens, u)
			} else {
				clicks = append(clicks, u)
			}
		}
	}
	return opens, clicks, nil
}

// tracking loads a static GIF served here, then tend's open URLs, then its click URLs, each for
// the same time with the same requests in flight, from many loopback source addresses: tend limits
// each client address, and the figure sought is the endpoint's, not the limiter's.
func (b *bench) tracking(ctx context.Context, opens, clicks []string) error {
	if len(opens) == 0 || len(clicks) == 0 {
		return fmt.Errorf("tracking: the sink holds no open or click URL of this run's emails (%d opens, %d clicks)", len(opens), len(clicks))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("tracking: serve the static GIF: %w", err)
	}
	static := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/gif")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(pixelGIF)
	})}
	go func() { _ = static.Serve(ln) }()
	defer static.Close()

	clients := sourceClients(b.o.trackAddresses, b.o.trackConcurrency)
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()
	r := &benchTracking{SourceAddresses: len(clients), Concurrency: b.o.trackConcurrency, TargetRatio: trackTargetRatio,
		TargetP99: ms(trackTargetP99)}
	r.Static = loadURLs(ctx, clients, []string{"http://" + ln.Addr().String() + "/pixel.gif"}, b.o.trackConcurrency, b.o.trackFor)
	if r.Opens, err = b.loadRecorded(ctx, clients, opens, "open"); err != nil {
		return err
	}
	if r.Clicks, err = b.loadRecorded(ctx, clients, clicks, "click"); err != nil {
		return err
	}
	r.OpenRatio = ratio(r.Opens.PerSecond, r.Static.PerSecond)
	r.ClickRatio = ratio(r.Clicks.PerSecond, r.Static.PerSecond)
	b.res.Tracking = r
	line := func(name string, l benchLoad, extra string) {
		recorded := ""
		if name != "static GIF" {
			recorded = fmt.Sprintf(", %d recorded", l.Recorded)
		}
		fmt.Fprintf(b.out, "tracking     %-10s %6.0f/s%s; %d answered%s, %d limited, %d failed%s; %s\n", name, l.PerSecond, extra, l.OK, recorded,
			l.Limited, l.Failed, failedBy(l.FailedBy), l.Latency)
	}
	fmt.Fprintf(b.out, "tracking     %s each, %d in flight from %d loopback addresses; %d open and %d click URLs of real sends; target ≥ %.0f%% of the static GIF, p99 ≤ %s\n",
		b.o.trackFor, b.o.trackConcurrency, len(clients), len(opens), len(clicks), 100*trackTargetRatio, trackTargetP99)
	line("static GIF", r.Static, "")
	line("opens", r.Opens, fmt.Sprintf(" (%.0f%% of static)", 100*r.OpenRatio))
	line("clicks", r.Clicks, fmt.Sprintf(" (%.0f%% of static)", 100*r.ClickRatio))
	if r.Opens.OK == 0 || r.Clicks.OK == 0 {
		return errors.New("tracking: tend answered no open or no click")
	}
	return nil
}

// sourceClients returns one HTTP client per loopback source address, 127.0.0.2 on; none follows a
// redirect (a click's answer is the redirect).
func sourceClients(addresses, perClient int) []*http.Client {
	out := make([]*http.Client, addresses)
	for i := range out {
		d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: loopbackSource(i)}}
		out[i] = &http.Client{Timeout: 10 * time.Second,
			Transport:     &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: perClient, DisableCompression: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return out
}

// loopbackSource is the i-th source address of the load, from 127.0.0.2 on through the whole of
// 127.0.0.0/8, which Linux answers on the loopback interface.
func loopbackSource(i int) net.IP {
	n := uint32(i) + 2
	return net.IPv4(127, byte(n>>16), byte(n>>8), byte(n))
}

// loadURLs keeps inFlight GETs going for d, each worker taking the next source address and URL
// in turn, so every address sees the same small share of the load.
func loadURLs(ctx context.Context, clients []*http.Client, urls []string, inFlight int, d time.Duration) benchLoad {
	var mu sync.Mutex
	var l benchLoad
	var lat []time.Duration
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range inFlight {
		wg.Go(func() {
			var mine []time.Duration
			ok, limited, failed := 0, 0, 0
			why := map[string]int{}
			for k := 0; ctx.Err() == nil; k++ {
				c := clients[(g+k*inFlight)%len(clients)]
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, urls[(g*7919+k)%len(urls)], nil)
				t := time.Now()
				resp, err := c.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed++
						why[failureKind(err)]++
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusTooManyRequests:
					limited++
				case resp.StatusCode < 400:
					ok++
					mine = append(mine, time.Since(t))
				default:
					failed++
					why[resp.Status]++
				}
			}
			mu.Lock()
			l.OK += ok
			l.Limited += limited
			l.Failed += failed
			for k, n := range why {
				if l.FailedBy == nil {
					l.FailedBy = map[string]int{}
				}
				l.FailedBy[k] += n
			}
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	l.Requests = l.OK + l.Limited + l.Failed
	l.Seconds = elapsed.Seconds()
	l.PerSecond = rate(l.OK, elapsed)
	l.Latency = percentiles(lat)
	return l
}

// loadRecorded loads tend's tracking URLs of one kind, then counts the events tend stored for them
// once its open queue had a moment to drain: an answer is only half of a tracking hit.
func (b *bench) loadRecorded(ctx context.Context, clients []*http.Client, urls []string, kind string) (benchLoad, error) {
	var since time.Time
	if err := b.store.Pool().QueryRow(ctx, `SELECT now()`).Scan(&since); err != nil {
		return benchLoad{}, fmt.Errorf("tracking: read the database's clock: %w", err)
	}
	l := loadURLs(ctx, clients, urls, b.o.trackConcurrency, b.o.trackFor)
	time.Sleep(2 * time.Second)
	if err := b.store.Pool().QueryRow(ctx, `SELECT count(*) FROM events WHERE type = $1 AND received_at >= $2`, kind, since).Scan(&l.Recorded); err != nil {
		return l, fmt.Errorf("tracking: count the recorded %ss: %w", kind, err)
	}
	return l, nil
}

// failureKind names a transport error without its addresses, so that equal failures count together.
func failureKind(err error) string {
	switch {
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no local port left"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, context.DeadlineExceeded), os.IsTimeout(err):
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	return "other transport error"
}

// failedBy lists the failures' kinds, most frequent first: " (502 Bad Gateway 60, timeout 10)".
func failedBy(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	kinds := make([]string, 0, len(m))
	for k := range m {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		return m[kinds[i]] > m[kinds[j]] || m[kinds[i]] == m[kinds[j]] && kinds[i] < kinds[j]
	})
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
