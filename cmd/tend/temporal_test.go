package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tend temporal needs its state file; without it, it says so and starts nothing.
func TestTemporalNeedsDB(t *testing.T) {
	t.Parallel()
	r := tend(t, nil, "temporal", "--port", "7999")
	require.ErrorIs(t, r.err, errUsage)
	assert.Contains(t, r.err.Error(), "--db is required")
	r = tend(t, nil, "temporal", "--db", filepath.Join(t.TempDir(), "t.db"), "--port", "0")
	require.ErrorIs(t, r.err, errUsage)
	assert.Contains(t, r.err.Error(), "--port 0 is not a TCP port")
}

// tend temporal serves Temporal's frontend on the port until it is stopped, keeping its state in
// the file, and starts again on the same file.
func TestTemporalServesUntilStopped(t *testing.T) {
	t.Parallel()
	dbPath := filepath.Join(t.TempDir(), "temporal.db")
	port := strconv.Itoa(freeLowPort(t))
	for round := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan result, 1)
		go func() {
			var out, errOut syncWriter
			err := run(ctx, []string{"temporal", "--db", dbPath, "--port", port}, &out, &errOut, func(string) string { return "" })
			done <- result{err: err, stdout: out.String(), stderr: errOut.String()}
		}()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
			if err == nil {
				c.Close()
				break
			}
			require.True(t, time.Now().Before(deadline), "round %d: frontend not listening: %v", round, err)
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
		select {
		case r := <-done:
			require.NoError(t, r.err, "round %d", round)
			assert.Contains(t, r.stdout, "temporal listening on 127.0.0.1:"+port)
		case <-time.After(time.Minute):
			t.Fatalf("round %d: tend temporal did not stop", round)
		}
		_, err := os.Stat(dbPath)
		require.NoError(t, err, "the state file is kept")
	}
}

// freeLowPort returns a free port below the ephemeral range, as Temporal's ports must be.
func freeLowPort(t *testing.T) int {
	t.Helper()
	for p := 20000 + int(time.Now().UnixNano()%10000); p < 32000; p += 7 {
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

// syncWriter is a buffer the server's goroutines may write to while the test reads it.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
