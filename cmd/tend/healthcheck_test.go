package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealthcheckFollowsTheReadinessAnswer(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if !ready {
			http.Error(w, `{"status":"not ready","failed":["temporal"]}`, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}`))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	env := func(k string) string {
		if k == "TEND_METRICS_ADDR" {
			return addr
		}
		return ""
	}
	var out bytes.Buffer
	if err := runHealthcheck(context.Background(), "", time.Second, &out, env); err != nil {
		t.Fatalf("a ready part: %v", err)
	}
	ready = false
	err := runHealthcheck(context.Background(), "", time.Second, &out, env)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "temporal") {
		t.Fatalf("a part that is not ready: want an error naming the 503 and what failed, got %v", err)
	}
	if errors.Is(err, errUsage) {
		t.Fatalf("not ready is a failure (exit 1), not a usage error: %v", err)
	}
	srv.Close()
	if err := runHealthcheck(context.Background(), srv.URL+"/readyz", time.Second, &out, env); err == nil {
		t.Fatal("a part that does not answer is not ready")
	}
	if err := runHealthcheck(context.Background(), "file:///etc/passwd", time.Second, &out, env); !errors.Is(err, errUsage) {
		t.Fatalf("a URL that is not http(s) is a usage error, got %v", err)
	}
}
