package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// devEnv is the whole environment of the `tend dev` the tests run.
var devEnv = map[string]string{"TEND_SEQUENCES": "testdata/dev-sequences.yaml", "TEND_LOG_LEVEL": "warn", "TEND_SALES": "off"}

// devArgs runs `tend dev` on dataDir with every port chosen free by tend itself.
func devArgs(dataDir string) []string {
	return []string{"dev", "--data", dataDir, "--http", "127.0.0.1:0", "--temporal-port", "0", "--ui-port", "0",
		"--smtp-port", "0", "--inbox-port", "0"}
}

type devRun struct {
	endpoints endpoints
	cancel    context.CancelFunc
	done      chan error
	out       *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDev runs `tend dev` in this process with its own data directory, every port chosen free
// by tend itself, and returns once endpoints.json tells where the API and the inbox are.
func startDev(t *testing.T, dataDir string, flags ...string) *devRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &devRun{cancel: cancel, done: make(chan error, 1), out: &syncBuffer{}}
	env := devEnv
	args := append(devArgs(dataDir), flags...)
	endpointsFile := filepath.Join(dataDir, "endpoints.json")
	_ = os.Remove(endpointsFile)
	go func() { r.done <- run(ctx, args, r.out, r.out, func(k string) string { return env[k] }) }()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if b, err := os.ReadFile(endpointsFile); err == nil && json.Unmarshal(b, &r.endpoints) == nil {
			return r
		}
		select {
		case err := <-r.done:
			t.Fatalf("tend dev exited: %v\n%s", err, r.out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("tend dev did not come up\n%s", r.out.String())
		}
	}
}

func (r *devRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		require.NoError(t, err, "tend dev output:\n%s", r.out.String())
	case <-time.After(60 * time.Second):
		t.Fatal("tend dev did not stop within a minute")
	}
}

type inboxMessage struct {
	To        []string `json:"to"`
	Subject   string   `json:"subject"`
	MessageID string   `json:"message_id"`
}

func inbox(t *testing.T, r *devRun) []inboxMessage {
	resp, err := http.Get(r.endpoints.Inbox + "/api/messages")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var msgs []inboxMessage
	if json.NewDecoder(resp.Body).Decode(&msgs) != nil {
		return nil
	}
	return msgs
}

func waitInbox(t *testing.T, r *devRun, n int, timeout time.Duration) []inboxMessage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if msgs := inbox(t, r); len(msgs) >= n {
			return msgs
		}
		select {
		case err := <-r.done:
			t.Fatalf("tend dev exited: %v\n%s", err, r.out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("the inbox did not reach %d messages in %s; have %d\n%s", n, timeout, len(inbox(t, r)), r.out.String())
	return nil
}

// `tend dev` on a fresh data directory brings everything up and the demo leads' first emails
// arrive; stopped and started again, it resumes the leads where they were and sends every
// remaining step exactly once.
func TestDevRunsTheWholeStackAndResumesAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Postgres and Temporal")
	}
	data := filepath.Join(t.TempDir(), "data")
	first := startDev(t, data)
	// Demo leads: Ada (analytics: three steps, 4 s apart), Grace (security → default general: one),
	// Alan (newsletter → general: one). Their first emails go out at once.
	msgs := waitInbox(t, first, 3, 3*time.Minute)
	assert.Contains(t, first.out.String(), "tend dev is running")

	// The API answers with the dev key kept in the data directory.
	key, err := os.ReadFile(filepath.Join(data, "api-key"))
	require.NoError(t, err)
	req, _ := http.NewRequest(http.MethodPost, first.endpoints.API+"/api/v1/leads",
		strings.NewReader(`{"email":"newcomer@example.com","interests":["newsletter"],"source":"newsletter_signup"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(key)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	waitInbox(t, first, 4, time.Minute)
	first.stop(t)
	require.Less(t, len(msgs), 6, "Ada's later steps are still pending at the restart")

	second := startDev(t, data)
	defer second.stop(t)
	waitInbox(t, second, 6, 2*time.Minute)
	time.Sleep(5 * time.Second) // nothing more may come
	msgs = inbox(t, second)
	require.Len(t, msgs, 6, "3 for Ada, 1 each for Grace, Alan and the newcomer")
	seen := map[string]bool{}
	ada := 0
	for _, m := range msgs {
		assert.False(t, seen[m.MessageID], "message %s delivered twice", m.MessageID)
		seen[m.MessageID] = true
		if m.To[0] == "ada@example.com" {
			ada++
		}
	}
	assert.Equal(t, 3, ada)
	assert.NotContains(t, second.out.String(), "demo lead", "demo leads are captured only once")
}

// A `tend dev` killed with -9 leaves its Postgres running (on its port), postmaster.pid, the
// Temporal SQLite file mid-write and endpoints.json; the next `tend dev` on that data directory
// comes up all the same, with the leads of the first and their workflows running on.
func TestDevComesBackAfterKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Postgres and Temporal twice")
	}
	data := filepath.Join(t.TempDir(), "data")
	// The same fixed ports for both runs: the killed one's must all be free again.
	ports := []string{"--pg-port", strconv.Itoa(freeTCPPort(t)), "--temporal-port", strconv.Itoa(freeTCPPort(t)),
		"--http", "127.0.0.1:" + strconv.Itoa(freeTCPPort(t)), "--smtp-port", strconv.Itoa(freeTCPPort(t))}
	t.Cleanup(func() {
		// Whatever happens below, no Postgres outlives the test (SIGQUIT: immediate shutdown).
		if b, err := os.ReadFile(filepath.Join(data, "postgres", "postmaster.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0]); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGQUIT)
			}
		}
	})

	// The first tend dev is a process of its own (this test binary acting as tend), so that it
	// can be killed the way a crash or an OOM kill ends it.
	first := exec.Command(os.Args[0], append(devArgs(data), ports...)...)
	first.Env = []string{envRunAsTend + "=1", "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range devEnv {
		first.Env = append(first.Env, k+"="+v)
	}
	out := &syncBuffer{}
	first.Stdout, first.Stderr = out, out
	require.NoError(t, first.Start())
	exited := make(chan error, 1)
	go func() { exited <- first.Wait() }()
	deadline := time.Now().Add(3 * time.Minute)
	for strings.Count(out.String(), "demo lead ") < 3 {
		select {
		case err := <-exited:
			t.Fatalf("the first tend dev exited: %v\n%s", err, out.String())
		case <-time.After(100 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "the first tend dev did not capture its demo leads\n%s", out.String())
	}
	require.NoError(t, first.Process.Kill())
	<-exited

	second := startDev(t, data, ports...)
	defer second.stop(t)
	assert.Contains(t, second.out.String(), "left running", "the killed one's Postgres was found and stopped")
	assert.NotContains(t, second.out.String(), "demo lead", "the demo leads of the first run are still in Postgres")
	// A lead captured now gets its first email: Postgres, Temporal (on the SQLite file the killed
	// one was writing), the worker and the capture SMTP server all work. The demo leads' emails
	// are not waited for: one whose send was in flight at the kill is retried only when the send
	// activity's start-to-close timeout (two minutes) has passed.
	key, err := os.ReadFile(filepath.Join(data, "api-key"))
	require.NoError(t, err)
	req, _ := http.NewRequest(http.MethodPost, second.endpoints.API+"/api/v1/leads",
		strings.NewReader(`{"email":"after-crash@example.com","interests":["newsletter"],"source":"newsletter_signup"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(key)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	deadline = time.Now().Add(time.Minute)
	for !slices.ContainsFunc(inbox(t, second), func(m inboxMessage) bool { return m.To[0] == "after-crash@example.com" }) {
		require.True(t, time.Now().Before(deadline), "no email for the lead captured after the restart\n%s", second.out.String())
		time.Sleep(100 * time.Millisecond)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
