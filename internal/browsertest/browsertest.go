//go:build unix

// Package browsertest drives Debian's headless Chromium from tests, so that web pages are checked
// in a real browser: their DOM after parsing, and screenshots. Outside CI a machine without
// Chromium skips such tests; in CI (CI=true) a missing browser fails them.
package browsertest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Path returns the browser to drive, skipping t when there is none outside CI.
func Path(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed but CI=true: install it (apt-get install -y chromium) so web pages are tested in a real browser")
	}
	t.Skip("chromium not found at /usr/bin/chromium or on PATH: skipping a browser test (apt-get install -y chromium to run it)")
	return ""
}

// Run runs one headless Chromium command against url (with extra flags such as --dump-dom or
// --screenshot=FILE) and returns its standard output.
func Run(t testing.TB, bin, url string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(),
	}, extra...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	// Chromium forks helpers (zygote, renderer, GPU); on timeout kill them all, not just the parent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("chromium %s timed out after 30s; stderr:\n%s", url, tail(stderr.String()))
	}
	if err != nil {
		t.Fatalf("chromium %s: %v; stderr:\n%s", url, err, tail(stderr.String()))
	}
	return stdout.String()
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}
