package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FreePort picks a free port on 127.0.0.1 below Linux's ephemeral range, so that no outgoing
// connection takes it while its part is down between a crash and its restart; it records the
// port in taken and never returns one already there.
func FreePort(taken map[int]bool) (int, error) {
	for range 1000 {
		p := 20000 + rand.IntN(12000)
		if taken[p] {
			continue
		}
		if portFree(p) == nil {
			taken[p] = true
			return p, nil
		}
	}
	return 0, errors.New("no free port on 127.0.0.1 between 20000 and 32000")
}

func portFree(p int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return err
	}
	return l.Close()
}

// WaitTCP waits until addr accepts connections, failing early when p (when not nil, and not
// supervised) exits.
func WaitTCP(ctx context.Context, addr string, timeout time.Duration, p *Proc) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if p != nil && !p.Running() && !p.supervise {
			return fmt.Errorf("%s exited before it listened on %s; its log %s ends:\n%s", p.Name, addr, p.LogPath, Tail(p.LogPath, 20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not accept connections after %s: %w", addr, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitReady waits until the part's /readyz answers 200: its Postgres and Temporal are reachable.
func waitReady(ctx context.Context, p *Proc, timeout time.Duration) error {
	return WaitOK(ctx, p.ReadyURL, timeout, p)
}

// WaitOK waits until a GET of url answers 200, failing early when p (when not nil, and not
// supervised) exits.
func WaitOK(ctx context.Context, url string, timeout time.Duration, p *Proc) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if p != nil && !p.Running() && !p.supervise {
			return fmt.Errorf("%s exited before %s answered; its log %s ends:\n%s", p.Name, url, p.LogPath, Tail(p.LogPath, 20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not answer 200 after %s: %w", url, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Tail is the last n lines of the file at path (a log's end, for an error message).
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
