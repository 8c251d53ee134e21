package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"text/template"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Temporal's two databases, apart from tend's own.
const (
	temporalDB   = "temporal"
	visibilityDB = "temporal_visibility"
)

// setupSchema creates or updates Temporal's schema in both its databases with temporal-sql-tool,
// from the schema files built into the tool (postgresql/v12), as Temporal's admin-tools image does.
// Run again on an up-to-date database it changes nothing.
func setupSchema(ctx context.Context, sqlTool string, pgPort int, user, logPath string) error {
	for _, s := range []struct{ db, schema string }{
		{temporalDB, "postgresql/v12/temporal"},
		{visibilityDB, "postgresql/v12/visibility"},
	} {
		base := []string{"--plugin", "postgres12", "--ep", "127.0.0.1", "-p", strconv.Itoa(pgPort), "-u", user, "--db", s.db}
		for _, args := range [][]string{
			append(append([]string{}, base...), "setup-schema", "-v", "0.0"),
			append(append([]string{}, base...), "update-schema", "--schema-name", s.schema),
		} {
			if err := runLogged(ctx, logPath, nil, sqlTool, args...); err != nil {
				return fmt.Errorf("temporal-sql-tool %s on %s: %w", args[len(base)], s.db, err)
			}
		}
	}
	return nil
}

// runLogged runs a command to completion in the environment env (nil: this process's) with its
// output appended to logPath; a failure quotes the output's end.
func runLogged(ctx context.Context, logPath string, env []string, bin string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if f, ferr := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); ferr == nil {
		fmt.Fprintf(f, "---- cluster: %s %v\n", bin, args)
		_, _ = f.Write(out.Bytes())
		f.Close()
	}
	if err != nil {
		b := out.Bytes()
		return fmt.Errorf("%w: %s", err, b[max(0, len(b)-800):])
	}
	return nil
}

// temporalPorts are the ports of the one Temporal server process, which runs all four services.
type temporalPorts struct {
	Frontend, FrontendHTTP, FrontendMembership int
	History, HistoryMembership                 int
	Matching, MatchingMembership               int
	Worker, WorkerMembership                   int
	Metrics                                    int
}

// temporalConfig is Temporal's development-postgres12.yaml, trimmed to what this topology uses:
// both stores on the local Postgres, the given ports, Prometheus metrics, no archival. Each of
// the four services opens its own pools, so 10 + 4 connections each, not the example's 20 + 2.
var temporalConfig = template.Must(template.New("temporal").Parse(`# written by tend cluster; edits are overwritten at the next start
log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: {{.Shards}}
  datastores:
    default:
      sql:
        pluginName: postgres12
        databaseName: ` + temporalDB + `
        connectAddr: "127.0.0.1:{{.PGPort}}"
        connectProtocol: tcp
        user: {{.User}}
        maxConns: 10
        maxIdleConns: 10
        maxConnLifetime: 1h
    visibility:
      sql:
        pluginName: postgres12
        databaseName: ` + visibilityDB + `
        connectAddr: "127.0.0.1:{{.PGPort}}"
        connectProtocol: tcp
        user: {{.User}}
        maxConns: 4
        maxIdleConns: 4
        maxConnLifetime: 1h
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: "127.0.0.1:{{.P.Metrics}}"
services:
  frontend:
    rpc: { grpcPort: {{.P.Frontend}}, membershipPort: {{.P.FrontendMembership}}, bindOnLocalHost: true, httpPort: {{.P.FrontendHTTP}} }
  history:
    rpc: { grpcPort: {{.P.History}}, membershipPort: {{.P.HistoryMembership}}, bindOnLocalHost: true }
  matching:
    rpc: { grpcPort: {{.P.Matching}}, membershipPort: {{.P.MatchingMembership}}, bindOnLocalHost: true }
  worker:
    rpc: { grpcPort: {{.P.Worker}}, membershipPort: {{.P.WorkerMembership}}, bindOnLocalHost: true }
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:{{.P.Frontend}}"
dcRedirectionPolicy:
  policy: noop
archival:
  history: { state: disabled }
  visibility: { state: disabled }
namespaceDefaults:
  archival:
    history: { state: disabled }
    visibility: { state: disabled }
dynamicConfigClient:
  filepath: "{{.DynamicConfig}}"
  pollInterval: 10s
`))

// dynamicConfig turns on workflow updates (a rep's accept is one), which tend uses and which
// servers before 1.28 left off; nothing else is changed from Temporal's defaults.
const dynamicConfig = `# written by tend cluster
frontend.enableUpdateWorkflowExecution:
  - value: true
`

func writeTemporalConfig(path, dynPath string, shards, pgPort int, user string, p temporalPorts) error {
	var b bytes.Buffer
	if err := temporalConfig.Execute(&b, map[string]any{"Shards": shards, "PGPort": pgPort, "User": user, "P": p, "DynamicConfig": dynPath}); err != nil {
		return err
	}
	if err := os.WriteFile(dynPath, []byte(dynamicConfig), 0o644); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// registerNamespace creates namespace on the server at hostPort unless it exists, then waits
// until the frontend serves it: a new namespace reaches the frontends' caches some seconds after
// it is written.
func registerNamespace(ctx context.Context, hostPort, namespace string, retention time.Duration) error {
	quiet := tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	nc, err := client.NewNamespaceClient(client.Options{HostPort: hostPort, Logger: quiet})
	if err != nil {
		return fmt.Errorf("connect to Temporal at %s: %w", hostPort, err)
	}
	defer nc.Close()
	for {
		err = nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace:                        namespace,
			Description:                      "tend's lead workflows",
			WorkflowExecutionRetentionPeriod: durationpb.New(retention),
		})
		var exists *serviceerror.NamespaceAlreadyExists
		if err == nil || errors.As(err, &exists) {
			break
		}
		// The history service may still be joining the ring a moment after the frontend's port
		// opened.
		if ctx.Err() != nil {
			return fmt.Errorf("register namespace %s: %w", namespace, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	c, err := client.Dial(client.Options{HostPort: hostPort, Namespace: namespace, Logger: quiet})
	if err != nil {
		return fmt.Errorf("connect to Temporal at %s: %w", hostPort, err)
	}
	defer c.Close()
	for {
		_, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: namespace, PageSize: 1})
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("namespace %s registered but not served: %w", namespace, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
