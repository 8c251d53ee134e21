// Package cluster runs tend's production topology on one machine, with no Docker: a Postgres
// server holding Temporal's two databases and tend's own apart; the real Temporal server
// (go.temporal.io/server/cmd/server) as its own process on that Postgres, its schema made by
// temporal-sql-tool; several `tend server` processes behind a round-robin load balancer; several
// `tend worker` processes; and an SMTP sink with an inbox page. Every tend part serves its own
// /metrics and /readyz. `make cluster` runs it; the e2e cluster test kills a worker in it.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tendhq/tend/internal/mailcapture"
	"github.com/tendhq/tend/internal/pgcluster"
)

// Binaries are the programs the topology runs.
type Binaries struct {
	// Tend is the tend binary (make build).
	Tend string
	// TemporalServer is go.temporal.io/server/cmd/server built from the module tend requires.
	TemporalServer string
	// SQLTool is go.temporal.io/server/cmd/tools/sql (temporal-sql-tool).
	SQLTool string
}

// Config says what to run and where.
type Config struct {
	// Dir holds the Postgres data, Temporal's configuration, the secrets and every part's log.
	// A second start on the same Dir keeps the data and the secrets.
	Dir string
	Bin Binaries
	// Servers and Workers are how many tend servers and workers run (default 2 and 3).
	Servers, Workers int
	// HTTPAddr is the load balancer's address, the public URL of tend (default 127.0.0.1:8080;
	// port 0 picks a free one, as do the other ports of the topology, which are always free ones
	// unless BasePort is set).
	HTTPAddr string
	// InboxAddr serves the SMTP sink's inbox page (default 127.0.0.1:8025).
	InboxAddr string
	// TemporalPort is the Temporal frontend's port (default 7233; 0 picks a free one).
	TemporalPort int
	// Env is added to every tend part's environment after what the cluster sets, so it can
	// point tend at other content (TEND_SEQUENCES …) or override anything else.
	Env []string
	// Supervise starts a part again when it exits, as a process supervisor would. A test that
	// kills a worker to see the others take over leaves it off.
	Supervise bool
	// Ephemeral runs Postgres without fsync: for tests, whose data may be lost.
	Ephemeral bool
	// Shards is Temporal's numHistoryShards (default 4, as Temporal's own development
	// configuration; fixed once the database exists).
	Shards int
	// Log receives one line per step of the start-up.
	Log io.Writer
}

// Endpoints are where the topology answers; Start writes them to Dir/endpoints.json, in the
// shape `tend dev` writes its own, plus the lists of parts.
type Endpoints struct {
	API         string   `json:"api"`
	Inbox       string   `json:"inbox"`
	SMTP        string   `json:"smtp"`
	Temporal    string   `json:"temporal"`
	Namespace   string   `json:"namespace"`
	DatabaseURL string   `json:"database_url"`
	APIKey      string   `json:"api_key"`
	Servers     []string `json:"servers"`
	// ServerMetrics and WorkerMetrics are the parts' /metrics URLs, in part order.
	ServerMetrics   []string `json:"server_metrics"`
	WorkerMetrics   []string `json:"worker_metrics"`
	TemporalMetrics string   `json:"temporal_metrics"`
}

// Cluster is a running topology.
type Cluster struct {
	Endpoints
	// Temporal, Servers and Workers are the processes.
	Temporal *Proc
	Servers  []*Proc
	Workers  []*Proc
	// Sink is the SMTP server every email goes to.
	Sink *mailcapture.Server

	cfg   Config
	pg    *pgcluster.Cluster
	lb    *balancer
	inbox *http.Server
}

// Namespace is the Temporal namespace the topology registers and tend uses.
const Namespace = "default"

// TaskQueue is the task queue of every worker in the topology.
const TaskQueue = "tend"

// Start brings the topology up in order — Postgres, Temporal's schema, Temporal, its namespace,
// tend's migration, the servers, the workers, the balancer — and returns once every part is
// ready. On an error everything started so far is stopped.
func Start(ctx context.Context, cfg Config) (c *Cluster, err error) {
	if cfg.Servers <= 0 {
		cfg.Servers = 2
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 3
	}
	if cfg.Shards <= 0 {
		cfg.Shards = 4
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:8080"
	}
	if cfg.InboxAddr == "" {
		cfg.InboxAddr = "127.0.0.1:8025"
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	for name, path := range map[string]string{"tend": cfg.Bin.Tend, "temporal-server": cfg.Bin.TemporalServer, "temporal-sql-tool": cfg.Bin.SQLTool} {
		if fi, err := os.Stat(path); err != nil || fi.IsDir() {
			return nil, fmt.Errorf("the %s binary %q is missing (make cluster builds it into bin/)", name, path)
		}
	}
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return nil, err
	}
	logs := filepath.Join(cfg.Dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, err
	}
	c = &Cluster{cfg: cfg}
	defer func() {
		if err != nil {
			c.Stop()
			c = nil
		}
	}()
	step := func(format string, args ...any) { fmt.Fprintf(cfg.Log, "cluster: "+format+"\n", args...) }

	// Postgres, with Temporal's databases apart from tend's.
	pgLog, err := os.OpenFile(filepath.Join(logs, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	// Temporal's four services each keep their own pools (maxConns in temporal.yaml), beside five
	// tend parts and their leader sessions: more than Postgres's default 100 connections, which a
	// burst of clicks found ("too many clients already").
	if c.pg, err = pgcluster.Start(ctx, pgcluster.Config{Dir: filepath.Join(cfg.Dir, "postgres"), Log: pgLog, Ephemeral: cfg.Ephemeral,
		Settings: []string{"max_connections=300"}}); err != nil {
		pgLog.Close()
		return nil, fmt.Errorf("start Postgres: %w", err)
	}
	for _, db := range []string{temporalDB, visibilityDB, "tend"} {
		if err := c.pg.CreateDatabase(ctx, db); err != nil {
			return nil, err
		}
	}
	step("Postgres on 127.0.0.1:%d: databases %s and %s for Temporal, tend for tend", c.pg.Port(), temporalDB, visibilityDB)

	if err := setupSchema(ctx, cfg.Bin.SQLTool, c.pg.Port(), pgcluster.Superuser, filepath.Join(logs, "temporal-sql-tool.log")); err != nil {
		return nil, err
	}
	step("Temporal schema up to date (temporal-sql-tool, postgresql/v12)")

	// Temporal, as its own process.
	taken := map[int]bool{}
	port := func(want int) (int, error) {
		if want != 0 {
			return want, portFree(want)
		}
		return FreePort(taken)
	}
	var tp temporalPorts
	if tp.Frontend, err = port(cfg.TemporalPort); err != nil {
		return nil, fmt.Errorf("the Temporal frontend port: %w", err)
	}
	taken[tp.Frontend] = true
	for _, p := range []*int{&tp.FrontendHTTP, &tp.FrontendMembership, &tp.History, &tp.HistoryMembership, &tp.Matching,
		&tp.MatchingMembership, &tp.Worker, &tp.WorkerMembership, &tp.Metrics} {
		if *p, err = FreePort(taken); err != nil {
			return nil, err
		}
	}
	confPath := filepath.Join(cfg.Dir, "temporal.yaml")
	if err := writeTemporalConfig(confPath, filepath.Join(cfg.Dir, "temporal-dynamic.yaml"), cfg.Shards, c.pg.Port(), pgcluster.Superuser, tp); err != nil {
		return nil, fmt.Errorf("write Temporal's configuration: %w", err)
	}
	c.Endpoints.Temporal = net.JoinHostPort("127.0.0.1", strconv.Itoa(tp.Frontend))
	c.Endpoints.Namespace = Namespace
	c.Endpoints.TemporalMetrics = fmt.Sprintf("http://127.0.0.1:%d/metrics", tp.Metrics)
	if c.Temporal, err = StartProc(ProcConfig{Name: "temporal", LogPath: filepath.Join(logs, "temporal.log"), MetricsURL: c.Endpoints.TemporalMetrics,
		Bin: cfg.Bin.TemporalServer, Args: []string{"--config-file", confPath, "--allow-no-auth", "start"},
		Env: os.Environ(), Supervise: cfg.Supervise}); err != nil {
		return nil, err
	}
	if err := WaitTCP(ctx, c.Endpoints.Temporal, 2*time.Minute, c.Temporal); err != nil {
		return nil, err
	}
	nsCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = registerNamespace(nsCtx, c.Endpoints.Temporal, Namespace, 72*time.Hour)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%w (Temporal's log: %s)", err, c.Temporal.LogPath)
	}
	step("Temporal server %s on %s, namespace %s", filepath.Base(cfg.Bin.TemporalServer), c.Endpoints.Temporal, Namespace)

	// The SMTP sink and its inbox.
	c.Sink = mailcapture.New(mailcapture.Options{MaxMessages: 1 << 20})
	if err := c.Sink.Start("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("start the SMTP sink: %w", err)
	}
	c.Endpoints.SMTP = c.Sink.Addr()
	inboxLn, err := net.Listen("tcp", cfg.InboxAddr)
	if err != nil {
		return nil, fmt.Errorf("inbox page on %s: %w", cfg.InboxAddr, err)
	}
	c.inbox = &http.Server{Handler: c.Sink.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = c.inbox.Serve(inboxLn) }()
	c.Endpoints.Inbox = "http://" + inboxLn.Addr().String()

	// tend: the balancer's address is the public URL, so it is taken first.
	lbLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("load balancer on %s: %w", cfg.HTTPAddr, err)
	}
	publicAddr := lbLn.Addr().String()
	lbLn.Close()
	c.Endpoints.API = "http://" + publicAddr
	sec, err := secrets(filepath.Join(cfg.Dir, "secrets.env"))
	if err != nil {
		return nil, err
	}
	c.Endpoints.APIKey = sec["TEND_API_KEY"]
	c.Endpoints.DatabaseURL = c.pg.URL("tend")
	env := append(os.Environ(),
		"DATABASE_URL="+c.Endpoints.DatabaseURL,
		"TEMPORAL_ADDRESS="+c.Endpoints.Temporal,
		"TEMPORAL_NAMESPACE="+Namespace,
		"TEND_TASK_QUEUE="+TaskQueue,
		"SMTP_URL=smtp://"+c.Endpoints.SMTP+"?tls=none",
		"TEND_PUBLIC_URL="+c.Endpoints.API,
		"TEND_TRUSTED_PROXIES=127.0.0.1/32",
		// The topology runs tend's example content (make cluster is a laptop's); an operator's
		// own files come in through Env or the environment.
		"TEND_ALLOW_EXAMPLES=1",
	)
	for _, k := range sortedKeys(sec) {
		if k != "TEND_API_KEY" {
			env = append(env, k+"="+sec[k])
		}
	}
	env = append(env, cfg.Env...)

	migrate := filepath.Join(logs, "migrate.log")
	if err := runLogged(ctx, migrate, env, cfg.Bin.Tend, "migrate"); err != nil {
		return nil, fmt.Errorf("tend migrate: %w", err)
	}
	// startPart starts one tend part on a metrics address of its own; own are its other settings,
	// and the caller's Env comes last, so it wins over them.
	startPart := func(name, command string, own ...string) (*Proc, error) {
		metricsPort, err := FreePort(taken)
		if err != nil {
			return nil, err
		}
		partEnv := append(append(append([]string{}, env...), own...), fmt.Sprintf("TEND_METRICS_ADDR=127.0.0.1:%d", metricsPort))
		return StartProc(ProcConfig{Name: name, LogPath: filepath.Join(logs, name+".log"),
			MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort),
			ReadyURL:   fmt.Sprintf("http://127.0.0.1:%d/readyz", metricsPort),
			Bin:        cfg.Bin.Tend, Args: []string{command}, Supervise: cfg.Supervise,
			Env: append(partEnv, cfg.Env...)})
	}
	for i := range cfg.Servers {
		httpPort, err := FreePort(taken)
		if err != nil {
			return nil, err
		}
		p, err := startPart(fmt.Sprintf("server-%d", i+1), "server", fmt.Sprintf("TEND_HTTP_ADDR=127.0.0.1:%d", httpPort))
		if err != nil {
			return nil, err
		}
		c.Servers = append(c.Servers, p)
		c.Endpoints.Servers = append(c.Endpoints.Servers, fmt.Sprintf("http://127.0.0.1:%d", httpPort))
		c.Endpoints.ServerMetrics = append(c.Endpoints.ServerMetrics, p.MetricsURL)
	}
	for i := range cfg.Workers {
		p, err := startPart(fmt.Sprintf("worker-%d", i+1), "worker")
		if err != nil {
			return nil, err
		}
		c.Workers = append(c.Workers, p)
		c.Endpoints.WorkerMetrics = append(c.Endpoints.WorkerMetrics, p.MetricsURL)
	}
	for _, p := range c.Parts() {
		if err := waitReady(ctx, p, 2*time.Minute); err != nil {
			return nil, err
		}
	}
	if c.lb, err = newBalancer(publicAddr, c.Endpoints.Servers); err != nil {
		return nil, fmt.Errorf("load balancer on %s: %w", publicAddr, err)
	}
	step("%d tend servers behind %s, %d tend workers; SMTP sink %s, inbox %s", cfg.Servers, c.Endpoints.API, cfg.Workers, c.Endpoints.SMTP, c.Endpoints.Inbox)

	b, err := json.MarshalIndent(c.Endpoints, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "endpoints.json"), append(b, '\n'), 0o600); err != nil {
		return nil, err
	}
	return c, nil
}

// Stop stops the parts in the order that loses nothing: the balancer, then the servers (they
// drain their requests), the workers (they let activities finish), Temporal, the sink, and
// Postgres last.
func (c *Cluster) Stop() {
	if c.lb != nil {
		c.lb.close()
	}
	for _, p := range c.Servers {
		p.Stop(15 * time.Second)
	}
	for _, p := range c.Workers {
		p.Stop(40 * time.Second)
	}
	if c.Temporal != nil {
		c.Temporal.Stop(20 * time.Second)
	}
	if c.inbox != nil {
		_ = c.inbox.Close()
	}
	if c.Sink != nil {
		_ = c.Sink.Close()
	}
	if c.pg != nil {
		_ = c.pg.Stop()
	}
}

// Parts are every tend process, servers first.
func (c *Cluster) Parts() []*Proc { return append(append([]*Proc{}, c.Servers...), c.Workers...) }

// secrets reads the topology's keys from path, making them on the first start: random, so that
// no example value ever serves, and kept, so that links in emails already sent still verify
// after a restart.
func secrets(path string) (map[string]string, error) {
	want := map[string]func() string{
		"TEND_API_KEYS":        func() string { return "admin:" + randomHex(24) },
		"TEND_TRACKING_KEYS":   func() string { return "k1:" + base64.StdEncoding.EncodeToString(randomBytes(32)) },
		"TEND_SUPPRESSION_KEY": func() string { return base64.StdEncoding.EncodeToString(randomBytes(32)) },
		"TEND_WEBHOOK_SECRET":  func() string { return randomHex(24) },
	}
	have := map[string]string{}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
			have[k] = v
		}
	}
	changed := false
	for k, make := range want {
		if have[k] == "" {
			have[k], changed = make(), true
		}
	}
	if changed {
		var out strings.Builder
		out.WriteString("# tend cluster's keys, made at its first start; delete the file to make new ones\n")
		for _, k := range sortedKeys(have) {
			fmt.Fprintf(&out, "%s=%s\n", k, have[k])
		}
		if err := os.WriteFile(path, []byte(out.String()), 0o600); err != nil {
			return nil, err
		}
	}
	// The admin key is given to clients without its name.
	if _, key, ok := strings.Cut(have["TEND_API_KEYS"], ":"); ok {
		have["TEND_API_KEY"] = key
	}
	return have, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }
