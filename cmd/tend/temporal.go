package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/tendhq/tend/internal/devstack"
)

// runTemporal runs only the embedded Temporal server of `tend dev` (SQLite file, no UI) in the
// foreground until SIGINT or SIGTERM. It lets a test run Temporal as a process of its own, which it
// can stop and start again on the same file while tend's server and worker keep running; the chaos
// test (e2e/chaos) does that.
func runTemporal(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newFlags("temporal", stderr)
	dbPath := fs.String("db", "", "SQLite file of the server's state (created on first start)")
	port := fs.Int("port", 7233, "frontend (gRPC) port on 127.0.0.1")
	namespace := fs.String("namespace", "", "namespace to create (default TEMPORAL_NAMESPACE or default)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dbPath == "" {
		return fmt.Errorf("%w: tend temporal --db FILE [--port N]: --db is required", errUsage)
	}
	if *port < 1 || *port > 65535 {
		return fmt.Errorf("%w: --port %d is not a TCP port", errUsage, *port)
	}
	ns := *namespace
	if ns == "" {
		ns = getenv("TEMPORAL_NAMESPACE")
	}
	log := newLogger(stderr, getenv("TEND_LOG_LEVEL"))
	srv, err := devstack.StartTemporal(ctx, devstack.TemporalConfig{DBPath: *dbPath, Port: *port, Namespace: ns, Log: log})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "temporal listening on", srv.Address)
	<-ctx.Done()
	if err := srv.Stop(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("stop temporal: %w", err)
	}
	return nil
}
