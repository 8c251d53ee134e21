package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tendhq/tend/internal/cluster"
)

// clusterOptions are the flags of tend cluster.
type clusterOptions struct {
	dir                  string
	servers, workers     int
	httpAddr, inboxAddr  string
	temporalPort         int
	temporalBin, sqlTool string
}

// defaultClusterOptions keeps the topology off tend dev's ports, so both can run side by side.
func defaultClusterOptions() clusterOptions {
	return clusterOptions{dir: filepath.Join(".tend", "cluster"), servers: 2, workers: 3,
		httpAddr: "127.0.0.1:8090", inboxAddr: "127.0.0.1:8035", temporalPort: 7333,
		temporalBin: filepath.Join("bin", "temporal-server"), sqlTool: filepath.Join("bin", "temporal-sql-tool")}
}

func newClusterCommand(cl *cli) *cobra.Command {
	o := defaultClusterOptions()
	cmd := &cobra.Command{
		Use:   "cluster [flags]",
		Short: "run the production topology here: Temporal server on Postgres, 2 servers, 3 workers (make cluster)",
		Long: `Runs tend's production topology on this machine as processes, with no Docker: a private
Postgres with Temporal's databases apart from tend's, Temporal's schema by temporal-sql-tool, the
real Temporal server, tend migrate, tend servers behind a round-robin load balancer, tend workers,
and an SMTP sink with an inbox page. make cluster builds the binaries and runs it.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runCluster(cmd.Context(), o, cl.stdout, cl.getenv) },
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", o.dir, "data directory: Postgres, Temporal's configuration, keys, logs")
	f.IntVar(&o.servers, "servers", o.servers, "tend servers behind the load balancer")
	f.IntVar(&o.workers, "workers", o.workers, "tend workers")
	f.StringVar(&o.httpAddr, "http", o.httpAddr, "load balancer listen address: tend's public URL")
	f.StringVar(&o.inboxAddr, "inbox", o.inboxAddr, "SMTP sink's inbox page listen address")
	f.IntVar(&o.temporalPort, "temporal-port", o.temporalPort, "Temporal frontend port")
	f.StringVar(&o.temporalBin, "temporal-server", o.temporalBin, "Temporal server binary (make cluster builds it)")
	f.StringVar(&o.sqlTool, "sql-tool", o.sqlTool, "temporal-sql-tool binary (make cluster builds it)")
	return cmd
}

// runCluster brings up the production topology on this machine (internal/cluster) with this
// binary as every tend part, prints where it answers, and stops it in order on SIGINT/SIGTERM.
func runCluster(ctx context.Context, o clusterOptions, stdout io.Writer, getenv func(string) string) error {
	if o.servers < 1 || o.workers < 1 {
		return fmt.Errorf("%w: --servers and --workers must be at least 1", errUsage)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// The caller's content and sender settings reach every part.
	var env []string
	for _, k := range []string{"TEND_SEQUENCES", "TEND_SCORING", "TEND_SALES", "TEND_TEMPLATES_DIR", "TEND_FROM_NAME",
		"TEND_FROM_ADDRESS", "TEND_POSTAL_ADDRESS", "TEND_MESSAGE_ID_DOMAIN", "TEND_LOG_LEVEL", "TEND_RECONCILE_EVERY", "TEND_WORKFLOW_CACHE_SIZE"} {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	fmt.Fprintf(stdout, "tend cluster: Postgres, the Temporal server, %d tend servers, %d tend workers and an SMTP sink in %s\n", o.servers, o.workers, o.dir)
	c, err := cluster.Start(ctx, cluster.Config{Dir: o.dir, Servers: o.servers, Workers: o.workers, HTTPAddr: o.httpAddr,
		InboxAddr: o.inboxAddr, TemporalPort: o.temporalPort, Env: env, Supervise: true, Log: stdout,
		Bin: cluster.Binaries{Tend: self, TemporalServer: o.temporalBin, SQLTool: o.sqlTool}})
	if err != nil {
		return err
	}
	e := c.Endpoints
	fmt.Fprintf(stdout, "\ntend          %s (load balancer over %v)\n", e.API, e.Servers)
	fmt.Fprintf(stdout, "dashboard     %s/app  (API key in %s)\n", e.API, filepath.Join(o.dir, "secrets.env"))
	fmt.Fprintf(stdout, "inbox         %s\n", e.Inbox)
	fmt.Fprintf(stdout, "Temporal      %s, namespace %s; its metrics %s\n", e.Temporal, e.Namespace, e.TemporalMetrics)
	for i, m := range e.ServerMetrics {
		fmt.Fprintf(stdout, "server-%d      %s\n", i+1, m)
	}
	for i, m := range e.WorkerMetrics {
		fmt.Fprintf(stdout, "worker-%d      %s\n", i+1, m)
	}
	fmt.Fprintf(stdout, "logs          %s\n", filepath.Join(o.dir, "logs"))
	fmt.Fprintf(stdout, "\ntry: TEND_URL=%s TEND_API_KEY=%s bin/tend versions\n", e.API, e.APIKey)
	fmt.Fprintln(stdout, "Ctrl+C stops it all (servers drain, workers finish their activities).")
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping tend cluster …")
	c.Stop()
	return nil
}
