package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/app"
	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/config"
	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/crmhook"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/every"
	"github.com/tendhq/tend/internal/leader"
	"github.com/tendhq/tend/internal/mail"
	"github.com/tendhq/tend/internal/metrics"
	"github.com/tendhq/tend/internal/sales"
	"github.com/tendhq/tend/internal/score"
	"github.com/tendhq/tend/internal/sequence"
	"github.com/tendhq/tend/internal/track"
)

func loadConfig(getenv func(string) string) (config.Config, error) {
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return cfg, fmt.Errorf("configuration:\n%w", err)
	}
	return cfg, nil
}

func openStore(ctx context.Context, cfg config.Config) (*db.Store, error) {
	if cfg.DatabaseURL == "" {
		return nil, errors.New("DATABASE_URL is not set (e.g. postgres://tend:secret@localhost:5432/tend)")
	}
	return db.Open(ctx, cfg.DatabaseURL)
}

// openStoreFromEnv opens the store of the configuration in the environment, for commands that
// need nothing else of it.
func openStoreFromEnv(ctx context.Context, getenv func(string) string) (*db.Store, error) {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return nil, err
	}
	return openStore(ctx, cfg)
}

// suppressionKey decodes TEND_SUPPRESSION_KEY and gives it to the store; old clear rows on the
// suppression list are hashed.
func useSuppressionKey(ctx context.Context, cfg config.Config, store *db.Store) error {
	if cfg.SuppressionKey == "" {
		return fmt.Errorf("TEND_SUPPRESSION_KEY is not set: the suppression list keeps keyed hashes of addresses (e.g. TEND_SUPPRESSION_KEY=%s); set it once and never change it", randomKey())
	}
	key, err := base64.StdEncoding.DecodeString(cfg.SuppressionKey)
	if err != nil || len(key) < 32 {
		return errors.New("TEND_SUPPRESSION_KEY must be base64 of at least 32 bytes")
	}
	if err := store.SetSuppressionKey(key); err != nil {
		return err
	}
	if _, err := store.HashSuppressions(ctx, key); err != nil {
		return fmt.Errorf("hash the suppression list: %w", err)
	}
	return nil
}

func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func runMigrate(ctx context.Context, stdout io.Writer, getenv func(string) string) error {
	store, err := openStoreFromEnv(ctx, getenv)
	if err != nil {
		return err
	}
	defer store.Close()
	applied, err := store.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "database schema is up to date")
	}
	for _, m := range applied {
		fmt.Fprintln(stdout, "applied", m)
	}
	return nil
}

// trackingKeys parses TEND_TRACKING_KEYS.
func trackingKeys(cfg config.Config) (*track.Keys, error) {
	if cfg.TrackingKeys == "" {
		return nil, fmt.Errorf("TEND_TRACKING_KEYS is not set: links in emails are signed with it (e.g. TEND_TRACKING_KEYS=%s)", track.GenerateKey("k1"))
	}
	return track.ParseKeys(cfg.TrackingKeys)
}

func runScoringLint(files []string, stdout io.Writer) error {
	return lintFiles("scoring", files, stdout, func(f string) error {
		_, err := score.Load(f)
		return err
	})
}

func runSalesLint(files []string, stdout io.Writer, getenv func(string) string) error {
	opts := sales.Options{EventTypes: score.EventTypes()}
	seqPath := getenv("TEND_SEQUENCES")
	if seqPath == "" {
		seqPath = "examples/sequences.yaml"
	}
	if c, err := sequence.Load(seqPath, sequence.Options{}); err == nil {
		for _, s := range c.Segments {
			opts.Segments = append(opts.Segments, s.ID)
		}
	}
	return lintFiles("sales", files, stdout, func(f string) error {
		_, err := sales.Load(f, opts)
		return err
	})
}

func runLint(files []string, stdout io.Writer, getenv func(string) string) error {
	r, err := app.NewRenderer(getenv("TEND_TEMPLATES_DIR"))
	if err != nil {
		return err
	}
	return lintFiles("sequences", files, stdout, func(f string) error {
		_, err := sequence.Load(f, sequence.Options{TemplateExists: r.Has})
		return err
	})
}

// lintFiles loads every file with load and prints each problem as file:line: message; it fails
// when any file has one.
func lintFiles(what string, files []string, stdout io.Writer, load func(string) error) error {
	if len(files) == 0 {
		return fmt.Errorf("%w: tend %s lint FILE [FILE]", errUsage, what)
	}
	bad := 0
	for _, f := range files {
		err := load(f)
		var diags sequence.Diagnostics
		switch {
		case errors.As(err, &diags):
			for _, d := range diags {
				fmt.Fprintln(stdout, d.String())
			}
			bad += len(diags)
		case err != nil:
			fmt.Fprintf(stdout, "%s:0: %v\n", f, err)
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d problem(s) found", bad)
	}
	fmt.Fprintf(stdout, "%d file(s) OK\n", len(files))
	return nil
}

// parts is what both the worker and the server read: the published content, kept current, the
// tracking keys, and the process's metrics.
type parts struct {
	live    *content.Live
	keys    *track.Keys
	metrics *metrics.Set
	// stopTimeout is how long a stopping worker lets running activities finish.
	stopTimeout time.Duration
}

// defaultWorkerStopTimeout lets a send under way finish on a stop: an SMTP transaction, a retry
// of the database write after it.
const defaultWorkerStopTimeout = 30 * time.Second

// operatorEnv reads the operator settings of a server or worker: TEND_METRICS_ADDR (def when
// empty, "off" for none; explicit says the operator set it) and TEND_WORKER_STOP_TIMEOUT.
func operatorEnv(getenv func(string) string, def string) (addr string, explicit bool, stopTimeout time.Duration, err error) {
	if addr, explicit, err = metricsAddrEnv(getenv, def); err != nil {
		return "", false, 0, err
	}
	stopTimeout = defaultWorkerStopTimeout
	if v := strings.TrimSpace(getenv("TEND_WORKER_STOP_TIMEOUT")); v != "" {
		if stopTimeout, err = time.ParseDuration(v); err != nil || stopTimeout < 0 {
			return "", false, 0, fmt.Errorf("TEND_WORKER_STOP_TIMEOUT: %q is not a duration like 30s", v)
		}
	}
	return addr, explicit, stopTimeout, nil
}

// metricsAddrEnv reads TEND_METRICS_ADDR (def when empty; "off", returned as "", for none);
// explicit says the operator set it.
func metricsAddrEnv(getenv func(string) string, def string) (addr string, explicit bool, err error) {
	addr = strings.TrimSpace(getenv("TEND_METRICS_ADDR"))
	explicit = addr != ""
	if !explicit {
		addr = def
	}
	if strings.EqualFold(addr, "off") {
		return "", explicit, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", false, fmt.Errorf("TEND_METRICS_ADDR: %q is not a listen address like :9090 or 127.0.0.1:9090 (or off)", addr)
	}
	return addr, explicit, nil
}

// serveOperator serves the operator endpoints — /metrics, /readyz, /healthz — on addr, apart
// from the public HTTP port. A default address already taken (another tend part on the same
// machine) is logged and left out, so that it never stops the part doing its work; an address
// the operator set is an error. An empty addr serves nothing.
func serveOperator(addr string, explicit bool, m *metrics.Set, ready http.Handler, log *slog.Logger) (listening string, stop func(), err error) {
	if addr == "" {
		return "", func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if explicit {
			return "", nil, fmt.Errorf("listen on %s (TEND_METRICS_ADDR): %w", addr, err)
		}
		log.Error("metrics and readiness not served: the default address is taken; set TEND_METRICS_ADDR", "addr", addr, "err", err)
		return "", func() {}, nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.Handle("GET /readyz", ready)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	return ln.Addr().String(), func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

// loadContent opens the published content for every part started in this process — the kinds the
// store has none of yet are published first from the TEND_* files — and keeps it current until
// ctx ends.
func loadContent(ctx context.Context, cfg config.Config, store *db.Store, log *slog.Logger) (parts, error) {
	var p parts
	var err error
	if p.keys, err = trackingKeys(cfg); err != nil {
		return p, err
	}
	seed := content.FileSeed{Sequences: cfg.Sequences, Scoring: cfg.Scoring, Sales: cfg.Sales, TemplatesDir: cfg.TemplatesDir}
	p.live, err = app.OpenContent(ctx, store, seed, cfg.ContentPoll, log.With("component", "content"))
	return p, err
}

// startWorker starts what `tend worker` and `tend dev` run: the workflows and activities.
func startWorker(ctx context.Context, cfg config.Config, c parts, store *db.Store, tc client.Client, log *slog.Logger) (stop func(), err error) {
	if cfg.SMTPURL == "" {
		return nil, errors.New("SMTP_URL is not set (e.g. smtp://user:pass@smtp.example.com:587)")
	}
	mcfg, err := mail.ParseURL(cfg.SMTPURL)
	if err != nil {
		return nil, err
	}
	mailer, err := mail.New(mcfg, log.With("component", "mail"))
	if err != nil {
		return nil, err
	}
	if cfg.WorkflowCacheSize > 0 {
		// Process-wide, and read when the first worker starts.
		worker.SetStickyWorkflowCacheSize(cfg.WorkflowCacheSize)
	}
	w := app.NewWorker(tc, cfg.TaskQueue, app.WorkerDeps{Store: store, Live: c.live, Mailer: mailer, PublicURL: cfg.PublicURL,
		Metrics: c.metrics, StopTimeout: c.stopTimeout,
		From: app.FromConfig(cfg), Log: log.With("component", "worker"),
		Tracking: &activities.Tracking{Keys: c.keys, BaseURL: cfg.PublicURL, MailtoAddress: cfg.UnsubscribeMailto, BounceDomain: cfg.BounceDomain}})
	if err := w.Start(); err != nil {
		_ = mailer.Close()
		return nil, fmt.Errorf("start worker: %w", err)
	}
	return func() { w.Stop(); _ = mailer.Close() }, nil
}

// startServer starts the HTTP API and its background loops, which run while this server leads;
// stop shuts both down.
func startServer(ctx context.Context, cfg config.Config, c parts, store *db.Store, tc client.Client, log *slog.Logger, listening *string) (svc *capture.Service, stop func(), err error) {
	if len(cfg.APIKeys) == 0 {
		log.Warn("TEND_API_KEYS is empty: every admin API call will be refused")
	}
	var crm *crmhook.Deliverer
	if cfg.CRMWebhookURL != "" {
		crm = &crmhook.Deliverer{Store: store, URL: cfg.CRMWebhookURL, Secret: cfg.CRMWebhookSecret, Log: log.With("component", "crm")}
	}
	a := app.NewAPI(app.APIDeps{CRM: crm, Store: store, Live: c.live, Temporal: tc, TaskQueue: cfg.TaskQueue, APIKeys: cfg.APIKeys,
		KeyNames: cfg.APIKeyNames, Keys: c.keys, Heuristics: track.DefaultHeuristics(), RateLimit: 20, TrustedProxies: cfg.TrustedProxies,
		WebhookSecret: cfg.WebhookSecret,
		Retention:     time.Duration(cfg.RetentionDays) * 24 * time.Hour,
		Metrics:       c.metrics,
		Log:           log.With("component", "api")})
	svc = a.Capture
	mux := http.NewServeMux()
	mux.Handle("/", a.Handler)
	// Ready needs Temporal as well as Postgres: a server that cannot start workflows cannot
	// enrol the leads it captures.
	mux.Handle("GET /readyz", app.Ready(store, tc, log.With("component", "ready")))
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s (TEND_HTTP_ADDR): %w", cfg.HTTPAddr, err)
	}
	if listening != nil {
		*listening = ln.Addr().String()
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// The periodic loops (every.Tick) run on one server of the cluster at a time: the leader.
	el := &leader.Elector{URL: cfg.DatabaseURL, Log: log.With("component", "leader")}
	elected := make(chan struct{})
	go func() { el.Run(rctx); close(elected) }()
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		a.Run(every.WithGate(rctx, el), cfg.ReconcileEvery)
	}()
	return svc, func() {
		// HTTP first, so that every open answered is queued before the recorder drains the queue.
		sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		_ = srv.Shutdown(sctx)
		cancel()
		select {
		case <-ran:
		case <-time.After(20 * time.Second):
			log.Warn("stopping: background work did not finish in 20s")
		}
		<-elected // the lock is given up, so another server takes over at once
	}, nil
}

// Default operator addresses of the server and the worker: apart, so that one of each runs on a
// machine without settings.
const (
	serverMetricsAddr = ":9091"
	workerMetricsAddr = ":9090"
)

func runServer(ctx context.Context, allowExamples bool, stderr io.Writer, getenv func(string) string) error {
	return runPart(ctx, "server", serverMetricsAddr, allowExamples, stderr, getenv,
		func(cfg config.Config, c parts, store *db.Store, tc client.Client, log *slog.Logger) (func(), error) {
			_, stop, err := startServer(ctx, cfg, c, store, tc, log, nil)
			if err == nil {
				log.Info("tend server listening", "addr", cfg.HTTPAddr)
			}
			return stop, err
		})
}

func runWorker(ctx context.Context, allowExamples bool, stderr io.Writer, getenv func(string) string) error {
	return runPart(ctx, "worker", workerMetricsAddr, allowExamples, stderr, getenv,
		func(cfg config.Config, c parts, store *db.Store, tc client.Client, log *slog.Logger) (func(), error) {
			stop, err := startWorker(ctx, cfg, c, store, tc, log)
			if err == nil {
				log.Info("tend worker running", "task_queue", cfg.TaskQueue, "namespace", cfg.TemporalNamespace)
			}
			return stop, err
		})
}

// runPart connects to Postgres and Temporal as configured, starts one part of tend and runs it
// until ctx ends; allowExamples lets it start with the demo sender identity or example team.
func runPart(ctx context.Context, name, defaultMetricsAddr string, allowExamples bool, stderr io.Writer, getenv func(string) string,
	start func(config.Config, parts, *db.Store, client.Client, *slog.Logger) (func(), error)) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	cfg.AllowExamples = cfg.AllowExamples || allowExamples
	if err := cfg.CheckNotExample(); err != nil {
		return fmt.Errorf("tend %s will not send as the demo:\n%w", name, err)
	}
	log := newLogger(stderr, cfg.LogLevel)
	metricsAddr, explicit, stopTimeout, err := operatorEnv(getenv, defaultMetricsAddr)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := useSuppressionKey(ctx, cfg, store); err != nil {
		return err
	}
	c, err := loadContent(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	c.metrics, c.stopTimeout = metrics.New(), stopTimeout
	tc, err := app.DialTemporalWithMetrics(ctx, cfg, log, c.metrics)
	if err != nil {
		return err
	}
	defer tc.Close()
	listening, stopOperator, err := serveOperator(metricsAddr, explicit, c.metrics, app.Ready(store, tc, log.With("component", "ready")), log)
	if err != nil {
		return err
	}
	defer stopOperator() // after the part: a scrape sees the drain
	if listening != "" {
		log.Info("metrics and readiness", "addr", listening, "paths", "/metrics /readyz /healthz")
	}
	stop, err := start(cfg, c, store, tc, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	stop()
	return nil
}
