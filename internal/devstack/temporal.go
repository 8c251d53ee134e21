// Package devstack runs, inside one process, what tend needs around it on a laptop: an embedded
// Temporal server persisting to a SQLite file, the Temporal Web UI, a private Postgres cluster and
// the capture SMTP server. It is the only package besides the end-to-end tests that links the
// Temporal server, which keeps the ordinary edit-test loop fast.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	tlog "go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/metrics"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

// TemporalConfig configures the embedded Temporal server.
type TemporalConfig struct {
	// DBPath is the SQLite file; its schema is created on first start.
	DBPath string
	// IP to listen on; default 127.0.0.1.
	IP string
	// Port of the frontend (gRPC); 0 takes a free port. The other services take free ports.
	Port int
	// UIPort of the Web UI; 0 disables the UI.
	UIPort    int
	Namespace string
	Log       *slog.Logger
}

// Temporal is a running embedded Temporal server.
type Temporal struct {
	srv temporal.Server
	ui  *uiserver.Server
	// Address is the frontend's host:port.
	Address string
	// UIURL is the Web UI's address, empty when disabled.
	UIURL string
}

// StartTemporal starts an embedded Temporal server that persists to cfg.DBPath (WAL journal), so a
// restart resumes every workflow where it was.
func StartTemporal(ctx context.Context, cfg TemporalConfig) (*Temporal, error) {
	if cfg.IP == "" {
		cfg.IP = "127.0.0.1"
	}
	taken := map[int]bool{cfg.Port: true, cfg.UIPort: true}
	if cfg.Port == 0 {
		p, err := freePort(cfg.IP, taken)
		if err != nil {
			return nil, err
		}
		cfg.Port = p
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if err := portFree(cfg.IP, cfg.Port); err != nil {
		return nil, fmt.Errorf("temporal frontend port: %w", err)
	}
	if cfg.UIPort != 0 {
		if err := portFree(cfg.IP, cfg.UIPort); err != nil {
			return nil, fmt.Errorf("temporal UI port: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(cfg.DBPath), 0o755); err != nil {
		return nil, fmt.Errorf("create temporal data dir: %w", err)
	}
	sqlCfg := &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: cfg.DBPath,
		ConnectAttributes: map[string]string{
			"mode":         "rwc",
			"journal_mode": "wal",
			"synchronous":  "normal",
		},
	}
	if _, err := os.Stat(cfg.DBPath); errors.Is(err, os.ErrNotExist) {
		if err := sqlite.SetupSchema(sqlCfg); err != nil {
			return nil, fmt.Errorf("create temporal schema: %w", err)
		}
	}
	ns, err := sqlite.NewNamespaceConfig("active", cfg.Namespace, false, nil)
	if err != nil {
		return nil, fmt.Errorf("namespace config: %w", err)
	}
	if err := sqlite.CreateNamespaces(sqlCfg, ns); err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", cfg.Namespace, err)
	}

	ports := func() int { p, err := freePort(cfg.IP, taken); must(err); return p }
	// Membership is static: every service of this one process knows the others' addresses. With
	// ringpop, a restart first tries to join the hosts that the previous run left in the database's
	// membership table; under load that took over 30 s and the server then exits the process.
	hosts := map[primitives.ServiceName]static.Hosts{}
	service := func(name primitives.ServiceName, port int) config.Service {
		hosts[name] = static.SingleLocalHost(net.JoinHostPort(cfg.IP, strconv.Itoa(port)))
		return config.Service{RPC: config.RPC{GRPCPort: port, BindOnIP: cfg.IP}}
	}
	frontend := net.JoinHostPort(cfg.IP, strconv.Itoa(cfg.Port))
	sc := &config.Config{
		Global: config.Global{
			Metrics: &metrics.Config{Prometheus: &metrics.PrometheusConfig{ListenAddress: net.JoinHostPort(cfg.IP, strconv.Itoa(ports())), HandlerPath: "/metrics"}},
		},
		Persistence: config.Persistence{
			DefaultStore: sqliteplugin.PluginName, VisibilityStore: sqliteplugin.PluginName, NumHistoryShards: 1,
			DataStores: map[string]config.DataStore{sqliteplugin.PluginName: {SQL: sqlCfg}},
		},
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace: false, FailoverVersionIncrement: 10, MasterClusterName: "active", CurrentClusterName: "active",
			ClusterInformation: map[string]cluster.ClusterInformation{
				"active": {Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontend},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services: map[string]config.Service{
			"frontend": service(primitives.FrontendService, cfg.Port),
			"history":  service(primitives.HistoryService, ports()),
			"matching": service(primitives.MatchingService, ports()),
			"worker":   service(primitives.WorkerService, ports()),
		},
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History: config.HistoryArchivalNamespaceDefaults{State: "disabled"}, Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		PublicClient: config.PublicClient{HostPort: frontend},
	}
	// The server's own log is verbose and noisy at shutdown; it goes to a file beside its database.
	logger := tlog.NewZapLogger(tlog.BuildZapLogger(tlog.Config{Level: "warn", OutputFile: cfg.DBPath + ".log", Format: "console"}))
	authorizer, err := authorization.GetAuthorizerFromConfig(&sc.Global.Authorization)
	if err != nil {
		return nil, err
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&sc.Global.Authorization, logger)
	if err != nil {
		return nil, err
	}
	dc := dynamicconfig.StaticClient{
		// Let lead workflows be listed by type and status in the UI without Elasticsearch.
		dynamicconfig.FrontendEnableUpdateWorkflowExecution.Key(): true,
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(sc),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dc),
		temporal.WithStaticHosts(hosts),
	)
	if err != nil {
		return nil, fmt.Errorf("configure temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start temporal server: %w", err)
	}
	t := &Temporal{srv: srv, Address: frontend}
	if cfg.UIPort != 0 {
		uiCfg := &uiconfig.Config{
			Host: cfg.IP, Port: cfg.UIPort, TemporalGRPCAddress: frontend, EnableUI: true,
			DefaultNamespace: cfg.Namespace, HideLogs: true, DisableNewsFetch: true,
			CORS: uiconfig.CORS{CookieInsecure: true},
		}
		t.ui = uiserver.NewServer(uioptions.WithConfigProvider(uiCfg))
		go func() { _ = t.ui.Start() }()
		t.UIURL = fmt.Sprintf("http://%s", net.JoinHostPort(cfg.IP, strconv.Itoa(cfg.UIPort)))
	}
	return t, nil
}

// Stop stops the UI and the server.
func (t *Temporal) Stop() error {
	if t.ui != nil {
		t.ui.Stop()
	}
	return t.srv.Stop()
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// freePort picks a free port below Linux's ephemeral range (32768+). The Temporal server binds its
// ports itself, some time after they are chosen; a port from the ephemeral range could be handed
// to another process's outgoing connection or port-0 listener in between, and the server exits
// the whole process when a bind fails.
//
// taken holds the ports already chosen for this server; the chosen one is added to it, so that
// no two services are given the same port.
func freePort(ip string, taken map[int]bool) (int, error) {
	for range 200 {
		p := 20000 + mrand.IntN(12000)
		if taken[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p)))
		if err != nil {
			continue
		}
		_ = l.Close()
		taken[p] = true
		return p, nil
	}
	return 0, errors.New("no free port between 20000 and 32000")
}

// portFree fails with a helpful message when something already listens on the port.
func portFree(ip string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("%s:%d is in use (is another tend dev or Temporal running?): %w", ip, port, err)
	}
	return l.Close()
}
