package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// part is one of tend's processes (or Temporal's), kept running like a process supervisor does:
// when it exits, for whatever reason, it is started again a moment later, until stop.
type part struct {
	name    string
	bin     string
	args    []string
	env     []string
	logPath string
	// restartDelay is how long the supervisor waits before starting the part again.
	restartDelay time.Duration

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the current process has exited
	stopping bool
	// signalled is set when the harness sent the signal that ended the current process.
	signalled  bool
	starts     int
	unexpected []string // exits the harness did not cause
	done       chan struct{}
}

// startPart starts the part's process and a supervisor that restarts it after every exit.
func startPart(t *testing.T, p *part) {
	t.Helper()
	p.done = make(chan struct{})
	if err := p.launch(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	go p.supervise()
	t.Cleanup(p.stop)
}

func (p *part) launch() error {
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group: a Ctrl+C of the test reaches the test, which then kills its parts.
	// Pdeathsig: should the test binary die without its cleanups (go test's -timeout panics),
	// its parts die with it instead of staying on their ports.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(f, "---- chaos: start %s at %s\n", p.name, time.Now().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.signalled = cmd, exited, false
	p.starts++
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(f, "---- chaos: %s exited at %s: %v\n", p.name, time.Now().Format(time.RFC3339Nano), err)
		f.Close()
		p.mu.Lock()
		if !p.signalled && !p.stopping {
			p.unexpected = append(p.unexpected, fmt.Sprintf("%s exited by itself: %v", p.name, err))
		}
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

func (p *part) supervise() {
	defer close(p.done)
	for {
		p.mu.Lock()
		exited := p.exited
		p.mu.Unlock()
		<-exited
		time.Sleep(p.restartDelay)
		p.mu.Lock()
		stopping := p.stopping
		p.mu.Unlock()
		if stopping {
			return
		}
		for p.launch() != nil {
			time.Sleep(time.Second)
		}
	}
}

// signal sends sig to the running process and waits (up to grace) until it has exited; a process
// that outlives the grace period is killed. The supervisor then starts it again.
func (p *part) signal(sig syscall.Signal, grace time.Duration) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.signalled = true
	p.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%s did not exit within %s of %s; killed", p.name, grace, sig)
	}
}

// stop ends the part for good: SIGKILL, no restart.
func (p *part) stop() {
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		return
	}
	p.stopping = true
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	_ = cmd.Process.Kill()
	<-exited
	<-p.done
}

func (p *part) unexpectedExits() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.unexpected...)
}

// logTail returns the last n lines of the part's log.
func (p *part) logTail(n int) string {
	return tailLines(p.logPath, n)
}

func tailLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// grepLog returns the lines of the part's log that contain any of the words, at most n of them.
func grepLog(path string, n int, words ...string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		for _, w := range words {
			if bytes.Contains(line, []byte(w)) {
				out = append(out, string(line))
				break
			}
		}
		if len(out) >= n {
			break
		}
	}
	return out
}

// buildTend builds the tend binary once into dir; the module root is two levels up.
func buildTend(t *testing.T, dir string) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "tend")
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tend")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tend: %v\n%s", err, out)
	}
	t.Logf("built tend in %s", time.Since(start).Round(time.Second))
	return bin
}

// freePort picks a free port on 127.0.0.1 below Linux's ephemeral range, so that no outgoing
// connection takes it while a part is down between a kill and its restart.
func freePort(t *testing.T, taken map[int]bool) int {
	t.Helper()
	for range 500 {
		p := 20000 + rand.IntN(12000)
		if taken[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		_ = l.Close()
		taken[p] = true
		return p
	}
	t.Fatal("no free port between 20000 and 32000")
	return 0
}

// waitTCP waits until addr accepts connections.
func waitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
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

// waitHealthy waits until the tend server answers /healthz.
func waitHealthy(ctx context.Context, base string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := c.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tend server not healthy after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
