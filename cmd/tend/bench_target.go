package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// benchTarget is what the measurements need to know of the tend they measure, and all they know
// of it: the private stack of `tend bench` and the processes of `make cluster` (`tend bench
// --cluster`) are both described by one, so the two topologies are measured by the same code.
type benchTarget struct {
	// Topology names it in the report and the result: "embedded" or "cluster".
	Topology string
	// API is the base URL of a tend server ("http://127.0.0.1:8080"); APIKey one of its keys.
	API, APIKey string
	// Temporal is the frontend's host:port and Namespace tend's namespace there.
	Temporal, Namespace string
	// DatabaseURL is tend's own Postgres database: sends and handoffs are counted where they are
	// recorded.
	DatabaseURL string
	// Inbox is the SMTP sink's inbox (internal/mailcapture's handler: GET /api/messages).
	Inbox string
	// WorkerMetrics are the /metrics URLs of the worker processes, whose resident memory is read
	// from process_resident_memory_bytes; empty means the worker is this process.
	WorkerMetrics []string
}

// targetFromEndpoints describes the private stack tend dev wrote the endpoints of.
func targetFromEndpoints(ep endpoints, apiKey string) benchTarget {
	t := benchTarget{Topology: "embedded", API: ep.API, APIKey: apiKey, Temporal: ep.Temporal, Namespace: ep.Namespace,
		DatabaseURL: ep.DatabaseURL, Inbox: ep.Inbox}
	if ep.Metrics != "" {
		t.WorkerMetrics = []string{ep.Metrics}
	}
	return t
}

// workerRSS reads process_resident_memory_bytes from each worker's /metrics.
func workerRSS(ctx context.Context, hc *http.Client, urls []string) ([]uint64, error) {
	var out []uint64
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("read worker metrics: %w", err)
		}
		v, found, err := metricValue(bufio.NewScanner(resp.Body), "process_resident_memory_bytes")
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read worker metrics at %s: %w", u, err)
		}
		if !found {
			return nil, fmt.Errorf("worker metrics at %s have no process_resident_memory_bytes", u)
		}
		out = append(out, uint64(v))
	}
	return out, nil
}

// metricValue finds an unlabelled sample in the Prometheus text format.
func metricValue(sc *bufio.Scanner, name string) (float64, bool, error) {
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name+" ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, false, fmt.Errorf("%s: %w", name, err)
		}
		return v, true, nil
	}
	return 0, false, sc.Err()
}
