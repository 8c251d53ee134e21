package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend/internal/devstack"
)

func newTemporalCommand(cl *cli) *cobra.Command {
	var o temporalOptions
	cmd := &cobra.Command{
		Use:   "temporal --db FILE [--port N] [--namespace NS]",
		Short: "run only the embedded Temporal server (SQLite) until SIGTERM",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runTemporal(cmd.Context(), o, cl) },
	}
	cmd.Flags().StringVar(&o.dbPath, "db", "", "SQLite file of the server's state (created on first start)")
	cmd.Flags().IntVar(&o.port, "port", 7233, "frontend (gRPC) port on 127.0.0.1")
	cmd.Flags().StringVar(&o.namespace, "namespace", "", "namespace to create (default TEMPORAL_NAMESPACE or default)")
	return cmd
}

// temporalOptions are the flags of tend temporal.
type temporalOptions struct {
	dbPath, namespace string
	port              int
}

// runTemporal runs only the embedded Temporal server of `tend dev` (SQLite file, no UI) in the
// foreground until SIGINT or SIGTERM. It lets a test run Temporal as a process of its own, which it
// can stop and start again on the same file while tend's server and worker keep running; the chaos
// test (e2e/chaos) does that.
func runTemporal(ctx context.Context, o temporalOptions, cl *cli) error {
	if o.dbPath == "" {
		return fmt.Errorf("%w: tend temporal --db FILE [--port N]: --db is required", errUsage)
	}
	if o.port < 1 || o.port > 65535 {
		return fmt.Errorf("%w: --port %d is not a TCP port", errUsage, o.port)
	}
	ns := o.namespace
	if ns == "" {
		ns = cl.getenv("TEMPORAL_NAMESPACE")
	}
	log := newLogger(cl.stderr, cl.getenv("TEND_LOG_LEVEL"))
	srv, err := devstack.StartTemporal(ctx, devstack.TemporalConfig{DBPath: o.dbPath, Port: o.port, Namespace: ns, Log: log})
	if err != nil {
		return err
	}
	fmt.Fprintln(cl.stdout, "temporal listening on", srv.Address)
	<-ctx.Done()
	if err := srv.Stop(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("stop temporal: %w", err)
	}
	return nil
}
