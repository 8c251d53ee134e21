package main

import (
	"context"
	"crypto/rand"
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

	"github.com/spf13/cobra"

	"github.com/tendhq/tend/examples"
	"github.com/tendhq/tend/internal/app"
	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/devstack"
	"github.com/tendhq/tend/internal/mailcapture"
	"github.com/tendhq/tend/internal/metrics"
	"github.com/tendhq/tend/internal/pgcluster"
	"github.com/tendhq/tend/internal/track"
)

// devOptions are the flags of tend dev.
type devOptions struct {
	dataDir, httpAddr, metrics                        string
	temporalPort, uiPort, smtpPort, inboxPort, pgPort int
	demo                                              bool
}

func newDevCommand(cl *cli) *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev [flags]",
		Short: "run the whole stack on this machine (Temporal, Postgres, SMTP capture, UI)",
		Long: "Runs a private Postgres (unless DATABASE_URL is set), an embedded Temporal server with its Web UI, a capture\n" +
			"SMTP server with an inbox (unless SMTP_URL is set), the worker and the HTTP API; state is kept in the data\n" +
			"directory. On the first start it captures three demo leads. Every port flag accepts 0: any free port.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context(), cl) },
	}
	fs := cmd.Flags()
	fs.StringVar(&o.dataDir, "data", "", "data directory (default TEND_DATA_DIR or .tend)")
	fs.StringVar(&o.httpAddr, "http", "", "API listen address (default TEND_HTTP_ADDR or 127.0.0.1:8080)")
	fs.IntVar(&o.temporalPort, "temporal-port", 7233, "embedded Temporal frontend port")
	fs.IntVar(&o.uiPort, "ui-port", 8233, "Temporal Web UI port (0 disables it)")
	fs.IntVar(&o.smtpPort, "smtp-port", 1025, "capture SMTP server port")
	fs.IntVar(&o.inboxPort, "inbox-port", 8025, "capture inbox web page port")
	fs.IntVar(&o.pgPort, "pg-port", 0, "private Postgres port (default: a free port)")
	fs.StringVar(&o.metrics, "metrics", "", "metrics and readiness listen address of both parts (default TEND_METRICS_ADDR or 127.0.0.1:9090; off disables)")
	fs.BoolVar(&o.demo, "demo", true, "capture three demo leads when the database has none")
	return cmd
}

// runDev runs tend dev with args, as tend bench starts its private stack.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	return run(ctx, append([]string{"dev"}, args...), stdout, stderr, getenv)
}

// run runs everything on this machine: a private Postgres (unless DATABASE_URL is set), an
// embedded Temporal server with its Web UI, a capture SMTP server with an inbox (unless SMTP_URL
// is set), the worker and the HTTP API; and on first start it captures three demo leads.
func (o devOptions) run(ctx context.Context, cl *cli) error {
	stdout, stderr, getenv := cl.stdout, cl.stderr, cl.getenv
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	if o.dataDir != "" {
		cfg.DataDir = o.dataDir
	}
	if o.httpAddr != "" {
		cfg.HTTPAddr = o.httpAddr
	}
	log := newLogger(stderr, cfg.LogLevel)
	metricsAddr, explicit, stopTimeout, err := operatorEnv(func(k string) string {
		if k == "TEND_METRICS_ADDR" && o.metrics != "" {
			return o.metrics
		}
		return getenv(k)
	}, "127.0.0.1:9090")
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()

	// Postgres.
	if cfg.DatabaseURL == "" {
		fmt.Fprintln(stdout, "starting Postgres in", filepath.Join(dir, "postgres"))
		pg, err := pgcluster.Start(ctx, pgcluster.Config{Dir: filepath.Join(dir, "postgres"), Port: o.pgPort, Log: newPrefixWriter(stderr, "postgres: ")})
		if err != nil {
			return fmt.Errorf("start Postgres: %w", err)
		}
		cleanups = append(cleanups, func() { _ = pg.Stop() })
		if err := pg.CreateDatabase(ctx, "tend"); err != nil {
			return err
		}
		cfg.DatabaseURL = pg.URL("tend")
	}

	// Temporal.
	fmt.Fprintln(stdout, "starting Temporal (state in", filepath.Join(dir, "temporal.db")+")")
	tsrv, err := devstack.StartTemporal(ctx, devstack.TemporalConfig{DBPath: filepath.Join(dir, "temporal.db"), Port: o.temporalPort,
		UIPort: o.uiPort, Namespace: cfg.TemporalNamespace, Log: log})
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { _ = tsrv.Stop() })
	cfg.TemporalAddress = tsrv.Address

	// SMTP.
	inboxURL := ""
	if cfg.SMTPURL == "" {
		mc := mailcapture.New(mailcapture.Options{Log: log.With("component", "mailcapture"), Dir: filepath.Join(dir, "inbox")})
		if err := mc.Start(net.JoinHostPort("127.0.0.1", strconv.Itoa(o.smtpPort))); err != nil {
			return fmt.Errorf("start capture SMTP server: %w", err)
		}
		cleanups = append(cleanups, func() { _ = mc.Close() })
		cfg.SMTPURL = "smtp://" + mc.Addr() + "?tls=none"
		inboxAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(o.inboxPort))
		ln, err := net.Listen("tcp", inboxAddr)
		if err != nil {
			return fmt.Errorf("capture inbox on %s: %w", inboxAddr, err)
		}
		inboxAddr = ln.Addr().String()
		inbox := &http.Server{Handler: mc.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = inbox.Serve(ln) }()
		cleanups = append(cleanups, func() { _ = inbox.Close() })
		inboxURL = "http://" + inboxAddr
	}

	// Examples, from the working directory when present, else the copies built into the binary.
	for _, ex := range []struct {
		env, file string
		path      *string
	}{{"TEND_SEQUENCES", "sequences.yaml", &cfg.Sequences}, {"TEND_SCORING", "scoring.yaml", &cfg.Scoring},
		{"TEND_SALES", "sales.yaml", &cfg.Sales}} {
		if getenv(ex.env) != "" {
			continue
		}
		if err := useBuiltInExample(dir, ex.file, ex.path); err != nil {
			return err
		}
	}
	if cfg.TrackingKeys == "" {
		k, err := devSecret(dir, "tracking-key", func() (string, error) { return track.GenerateKey("dev1"), nil })
		if err != nil {
			return err
		}
		cfg.TrackingKeys = k
	}
	if cfg.WebhookSecret == "" {
		if cfg.WebhookSecret, err = devSecret(dir, "webhook-secret", func() (string, error) { return randomKey(), nil }); err != nil {
			return err
		}
	}
	if cfg.BounceDomain == "" {
		cfg.BounceDomain = cfg.MessageIDDomain
	}
	if cfg.UnsubscribeMailto == "" {
		cfg.UnsubscribeMailto = "unsubscribe@" + cfg.MessageIDDomain
	}
	if len(cfg.APIKeys) == 0 {
		key, err := devAPIKey(dir)
		if err != nil {
			return err
		}
		cfg.APIKeys = []string{key}
	}

	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, store.Close)
	if _, err := store.Migrate(ctx); err != nil {
		return err
	}
	if cfg.SuppressionKey == "" {
		if cfg.SuppressionKey, err = devSecret(dir, "suppression-key", func() (string, error) { return randomKey(), nil }); err != nil {
			return err
		}
	}
	if err := useSuppressionKey(ctx, cfg, store); err != nil {
		return err
	}
	// One registry for both parts: the server's and the worker's metrics on one address.
	set := metrics.New()
	tc, err := app.DialTemporalWithMetrics(ctx, cfg, log, set)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, tc.Close)
	c, err := loadContent(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	c.metrics, c.stopTimeout = set, stopTimeout
	metricsURL, stopOperator, err := serveOperator(metricsAddr, explicit, set, app.Ready(store, tc, log.With("component", "ready")), log)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, stopOperator)
	if metricsURL != "" {
		metricsURL = "http://" + metricsURL + "/metrics"
	}
	svc, stopServer, err := startServer(ctx, cfg, c, store, tc, log, &cfg.HTTPAddr)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, stopServer)
	if getenv("TEND_PUBLIC_URL") == "" {
		cfg.PublicURL = "http://" + cfg.HTTPAddr
	}
	stopWorker, err := startWorker(ctx, cfg, c, store, tc, log)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, stopWorker)

	api := "http://" + cfg.HTTPAddr
	fmt.Fprintf(stdout, `
tend dev is running.
  API            %s   (API key: %s)
  Dashboard      %s/app   (sign in with the API key)
  Temporal UI    %s
  Temporal gRPC  %s   (namespace %s)
  Postgres       %s
  Metrics        %s   (and /readyz)
  Sequences      version %d, first read from %s
                 (after an edit: tend apply %s — TEND_URL=%s TEND_API_KEY=%s)
`, api, cfg.APIKeys[0], api, orNone(tsrv.UIURL), tsrv.Address, cfg.TemporalNamespace, redactURL(cfg.DatabaseURL), orNone(metricsURL),
		c.live.Current().Version(content.Sequences), cfg.Sequences, cfg.Sequences, api, cfg.APIKeys[0])
	if inboxURL != "" {
		fmt.Fprintf(stdout, "  Inbox          %s   (JSON: %s/api/messages)\n", inboxURL, inboxURL)
	} else {
		fmt.Fprintln(stdout, "  SMTP           SMTP_URL")
	}
	fmt.Fprintf(stdout, `
Capture a lead:
  curl -s -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \
    -d '{"email":"you@example.com","name":"Your Name","interests":["analytics"],"source":"ebook_download"}' \
    %s/api/v1/leads

Press Ctrl+C to stop; state is kept in %s and resumes on the next start.
`, cfg.APIKeys[0], api, dir)

	if err := writeEndpoints(dir, endpoints{API: api, Inbox: inboxURL, SMTP: cfg.SMTPURL, Temporal: tsrv.Address,
		TemporalUI: tsrv.UIURL, Namespace: cfg.TemporalNamespace, DatabaseURL: cfg.DatabaseURL, Metrics: metricsURL}); err != nil {
		return err
	}
	if o.demo {
		if err := seedDemo(ctx, svc, stdout); err != nil {
			log.Warn("demo leads not captured", "err", err)
		}
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping tend dev …")
	return nil
}

// seedDemo captures three demo leads, one per kind of segment, when the database has no lead yet,
// so a newcomer sees drip emails arrive without typing anything.
func seedDemo(ctx context.Context, svc *capture.Service, stdout io.Writer) error {
	n, err := svc.Store.LeadCount(ctx)
	if err != nil || n > 0 {
		return err
	}
	demo := []capture.Request{
		{Email: "ada@example.com", Name: "Ada Lovelace", Company: "Analytical Engines Ltd", Interests: []string{"analytics"},
			Source: "ebook_download", TimeZone: "Europe/London", Consent: &capture.Consent{Granted: true, WordingID: "demo-v1"}},
		{Email: "grace@example.com", Name: "Grace Hopper", Company: "Compiler Works", Interests: []string{"security"},
			Source: "webinar_registration", TimeZone: "America/New_York", Consent: &capture.Consent{Granted: true, WordingID: "demo-v1"}},
		{Email: "alan@example.com", Name: "", Source: "newsletter_signup", Consent: &capture.Consent{Granted: true, WordingID: "demo-v1"}},
	}
	for _, r := range demo {
		res, err := svc.Capture(ctx, r, capture.Meta{ImportBatch: "tend-dev-demo"})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "demo lead %s captured: segment %s, stage %s\n", res.Lead.ID, res.Lead.Segment, res.Lead.Stage)
	}
	fmt.Fprintln(stdout, "their first emails arrive in the inbox within seconds, the next ones over the following minutes")
	return nil
}

// endpoints is what `tend dev` listens on, written to <data>/endpoints.json for scripts and
// tests (every port flag accepts 0 for "any free port").
type endpoints struct {
	API         string `json:"api"`
	Inbox       string `json:"inbox,omitempty"`
	SMTP        string `json:"smtp"`
	Temporal    string `json:"temporal"`
	TemporalUI  string `json:"temporal_ui,omitempty"`
	Namespace   string `json:"namespace"`
	DatabaseURL string `json:"database_url"`
	Metrics     string `json:"metrics,omitempty"`
}

func writeEndpoints(dir string, e endpoints) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "endpoints.json"), append(b, '\n'), 0o600)
}

// useBuiltInExample points path at a copy of the built-in example file in dir when path does not
// exist (tend dev run outside the repository).
func useBuiltInExample(dir, file string, path *string) error {
	if _, err := os.Stat(*path); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	data, err := examples.FS.ReadFile(file)
	if err != nil {
		return err
	}
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return err
	}
	*path = p
	return nil
}

// devAPIKey returns the API key kept in the data directory, creating it on first start.
func devAPIKey(dir string) (string, error) {
	return devSecret(dir, "api-key", func() (string, error) {
		buf := make([]byte, 16)
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		return "dev_" + hex.EncodeToString(buf), nil
	})
}

// devSecret returns the secret kept in the data directory under name, creating it on first start,
// so tokens in emails already sent stay valid across restarts.
func devSecret(dir, name string, generate func() (string, error)) (string, error) {
	p := filepath.Join(dir, name)
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	v, err := generate()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("save %s: %w", name, err)
	}
	return v, nil
}

func orNone(s string) string {
	if s == "" {
		return "(disabled)"
	}
	return s
}

func redactURL(u string) string {
	if at := strings.LastIndex(u, "@"); at > 0 {
		if scheme := strings.Index(u, "://"); scheme > 0 && scheme < at {
			return u[:scheme+3] + "…@" + u[at+1:]
		}
	}
	return u
}

// prefixWriter prefixes each line, for the Postgres server log.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func newPrefixWriter(w io.Writer, prefix string) io.Writer {
	return &prefixWriter{w: w, prefix: prefix}
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			if _, err := io.WriteString(p.w, p.prefix+line); err != nil {
				return 0, err
			}
		}
	}
	return len(b), nil
}
