package chaos

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tendhq/tend/internal/cluster"
)

// startPart starts one of tend's processes (or Temporal's) under a supervisor: when it exits, for
// whatever reason, it is started again restartDelay later, until the test ends (internal/cluster's
// Proc, which make cluster runs its parts with). The test kills and stops them through it.
func startPart(t *testing.T, name, bin string, args, env []string, logPath string, restartDelay time.Duration) *cluster.Proc {
	t.Helper()
	p, err := cluster.StartProc(cluster.ProcConfig{Name: name, Bin: bin, Args: args, Env: env, LogPath: logPath,
		Supervise: true, RestartDelay: restartDelay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
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

// freePort picks a free port on 127.0.0.1 that no part of this run has yet.
func freePort(t *testing.T, taken map[int]bool) int {
	t.Helper()
	p, err := cluster.FreePort(taken)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
