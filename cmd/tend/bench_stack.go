package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tendhq/tend/internal/cluster"
)

// startBenchEmbedded starts the stack of tend dev (Temporal on SQLite, Postgres, capture SMTP,
// API and worker in this process) in dir and describes it.
func startBenchEmbedded(ctx context.Context, dir, seqFile, salesFile string, stdout io.Writer, getenv func(string) string) (benchTarget, func(), error) {
	devLog, err := os.Create(filepath.Join(dir, "tend.log"))
	if err != nil {
		return benchTarget{}, nil, err
	}
	env := map[string]string{"TEND_SEQUENCES": seqFile, "TEND_SALES": salesFile, "TEND_LOG_LEVEL": "warn",
		"DATABASE_URL": "", "SMTP_URL": "", "TEND_API_KEYS": "", "TEND_PUBLIC_URL": ""}
	benchEnv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return getenv(k)
	}
	devCtx, stopDev := context.WithCancel(ctx)
	devDone := make(chan error, 1)
	data := filepath.Join(dir, "data")
	go func() {
		devDone <- runDev(devCtx, []string{"--data", data, "--http", "127.0.0.1:0", "--temporal-port", "0", "--ui-port", "0",
			"--smtp-port", "0", "--inbox-port", "0", "--metrics", "127.0.0.1:0", "--demo=false"}, io.Discard, devLog, benchEnv)
	}()
	stop := func() {
		stopDev()
		<-devDone
		devLog.Close()
	}
	fmt.Fprintln(stdout, "starting a private stack (Postgres, Temporal on SQLite, capture SMTP, API, worker) …")
	ep, err := waitEndpoints(ctx, data, devDone, filepath.Join(dir, "tend.log"))
	if err != nil {
		stop()
		return benchTarget{}, nil, err
	}
	key, err := os.ReadFile(filepath.Join(data, "api-key"))
	if err != nil {
		stop()
		return benchTarget{}, nil, err
	}
	return targetFromEndpoints(ep, strings.TrimSpace(string(key))), stop, nil
}

// startBenchCluster starts the production topology of tend cluster in dir — the Temporal server
// on Postgres, 2 tend servers behind the load balancer, 3 workers, the SMTP sink — with this
// binary as every tend part, and describes it.
func startBenchCluster(ctx context.Context, o benchOptions, dir, seqFile, salesFile string, stdout io.Writer) (benchTarget, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return benchTarget{}, nil, err
	}
	fmt.Fprintln(stdout, "starting the cluster topology (Postgres, Temporal server, 2 tend servers behind a load balancer, 3 workers, SMTP sink) …")
	c, err := cluster.Start(ctx, cluster.Config{Dir: filepath.Join(dir, "cluster"), HTTPAddr: "127.0.0.1:0", InboxAddr: "127.0.0.1:0",
		Bin: cluster.Binaries{Tend: self, TemporalServer: o.temporalBin, SQLTool: o.sqlTool},
		Env: []string{"TEND_SEQUENCES=" + seqFile, "TEND_SALES=" + salesFile, "TEND_LOG_LEVEL=warn"}})
	if err != nil {
		return benchTarget{}, nil, err
	}
	e := c.Endpoints
	return benchTarget{Topology: "cluster", API: e.API, APIKey: e.APIKey, Temporal: e.Temporal, Namespace: e.Namespace,
		DatabaseURL: e.DatabaseURL, Inbox: e.Inbox, WorkerMetrics: e.WorkerMetrics}, c.Stop, nil
}
