// Package e2e drives tend end to end on real parts: a real Postgres cluster, a real Temporal server
// in process (temporaltest), a real SMTP server receiving the mail, and tend's HTTP API over TCP.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/server/temporaltest"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/app"
	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/mail"
	"github.com/tendhq/tend/internal/mailcapture"
	"github.com/tendhq/tend/internal/metrics"
	"github.com/tendhq/tend/internal/pgtest"
	"github.com/tendhq/tend/internal/sales"
	"github.com/tendhq/tend/internal/sequence"
	"github.com/tendhq/tend/internal/track"
	"github.com/tendhq/tend/workflows"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const apiKey = "test-key-0123456789"

// webhookSecret signs the bounce and complaint webhooks in the tests.
const webhookSecret = "e2e-webhook-secret"

// stack is one tend deployment under test.
type stack struct {
	t        *testing.T
	store    *db.Store
	inbox    *mailcapture.Server
	temporal *temporaltest.TestServer
	client   client.Client
	worker   worker.Worker
	deps     app.WorkerDeps
	queue    string
	api      *httptest.Server
	capture  *capture.Service
	app      *app.API
	keys     *track.Keys
	log      *slog.Logger
	seed     content.FileSeed
}

func teamFile(team string) string {
	if team == "" {
		return "off"
	}
	return team
}

// openContent opens the published content (seeding it from the files the first time) and keeps
// it current with a watcher of its own until the test ends.
func (s *stack) openContent(seqFile, team string) *content.Live {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s.t.Cleanup(cancel)
	live, err := app.OpenContent(ctx, s.store, content.FileSeed{Sequences: seqFile, Scoring: "../examples/scoring.yaml", Sales: teamFile(team)},
		300*time.Millisecond, s.log)
	require.NoError(s.t, err)
	return live
}

type options struct {
	afterAccepted func(ctx context.Context, in activities.SendInput) error
	heuristics    *track.Heuristics
	beforeSend    func(ctx context.Context, in activities.SendInput)
	// team is a sales team file; empty means no handoff to sales.
	team string
	// sequences replaces testdata/sequences.yaml.
	sequences string
	// live runs the API and the worker on content published in the store (seeded from the
	// files), each with its own watcher, as servers and workers do.
	live bool
	// metrics gives the API and the worker a Prometheus registry, and the worker a Temporal
	// client that reports the SDK's metrics to it.
	metrics *metrics.Set
}

func setup(t *testing.T, opts options) *stack {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	store := dbtest.Store(t)

	inbox := mailcapture.New(mailcapture.Options{})
	require.NoError(t, inbox.Start("127.0.0.1:0"))
	t.Cleanup(func() { _ = inbox.Close() })
	host, port, _ := net.SplitHostPort(inbox.Addr())
	p, _ := strconv.Atoi(port)
	mailer, err := mail.New(mail.Config{Host: host, Port: p, TLS: "none", Timeout: 5 * time.Second}, log)
	require.NoError(t, err)
	t.Cleanup(func() { _ = mailer.Close() })

	renderer, err := app.NewRenderer("")
	require.NoError(t, err)
	seqFile := "testdata/sequences.yaml"
	if opts.sequences != "" {
		seqFile = opts.sequences
	}
	catalog, err := sequence.Load(seqFile, sequence.Options{TemplateExists: renderer.Has})
	require.NoError(t, err)

	model, err := app.LoadScoring("../examples/scoring.yaml")
	require.NoError(t, err)
	keys, err := track.ParseKeys(track.GenerateKey("e2e"))
	require.NoError(t, err)

	ts := temporaltest.NewServer(temporaltest.WithT(t))
	c := ts.GetDefaultClient()
	s := &stack{t: t, store: store, inbox: inbox, temporal: ts, client: c, queue: "tend-" + t.Name(), log: log, keys: keys}

	heur := track.DefaultHeuristics()
	if opts.heuristics != nil {
		heur = *opts.heuristics
	}
	var team *sales.Team
	if opts.team != "" {
		team, err = app.LoadTeam(opts.team, catalog)
		require.NoError(t, err)
	}
	var apiLive *content.Live
	if opts.live {
		apiLive = s.openContent(seqFile, opts.team)
		catalog = apiLive.Current().Catalog
	}
	s.app = app.NewAPI(app.APIDeps{Metrics: opts.metrics, Live: apiLive, Store: store, Catalog: catalog, Temporal: c, TaskQueue: s.queue, APIKeys: []string{apiKey},
		Keys: keys, Heuristics: heur, NotifyEvery: 200 * time.Millisecond, Team: team, WebhookSecret: webhookSecret, Log: log})
	s.capture = s.app.Capture
	s.api = httptest.NewServer(s.app.Handler)
	t.Cleanup(s.api.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go s.app.Run(ctx, time.Second)

	s.deps = app.WorkerDeps{Store: store, Catalog: catalog, Model: model, Renderer: renderer, Mailer: mailer, Log: log,
		Team: team, PublicURL: s.api.URL,
		From:          activities.From{Name: "Acme Insights", Address: "hello@acme.test", Domain: "acme.test", PostalAddress: "Acme Insights GmbH, Beispielstraße 1, 10115 Berlin"},
		Tracking:      &activities.Tracking{Keys: keys, BaseURL: s.api.URL, MailtoAddress: "unsubscribe@acme.test", BounceDomain: "acme.test"},
		AfterAccepted: opts.afterAccepted, BeforeSend: opts.beforeSend, Metrics: opts.metrics}
	if opts.metrics != nil {
		mc, err := client.Dial(client.Options{HostPort: ts.GetFrontendHostPort(), Namespace: ts.GetDefaultNamespace(),
			MetricsHandler: opts.metrics.Temporal()})
		require.NoError(t, err)
		t.Cleanup(mc.Close)
		s.client = mc
	}
	if opts.live {
		s.seed = content.FileSeed{Sequences: seqFile, Scoring: "../examples/scoring.yaml", Sales: teamFile(opts.team)}
		s.deps.Live = s.openContent(seqFile, opts.team)
		s.deps.Catalog, s.deps.Model, s.deps.Renderer, s.deps.Team = nil, nil, nil, nil
	}
	s.startWorker()
	return s
}

func (s *stack) startWorker() {
	s.worker = app.NewWorker(s.client, s.queue, s.deps)
	require.NoError(s.t, s.worker.Start())
	w := s.worker
	s.t.Cleanup(w.Stop)
}

// post sends a JSON request to the API and decodes the JSON answer.
func (s *stack) post(path string, body any) (int, map[string]any) {
	s.t.Helper()
	b, err := json.Marshal(body)
	require.NoError(s.t, err)
	req, err := http.NewRequest(http.MethodPost, s.api.URL+path, bytes.NewReader(b))
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	return do(s.t, req)
}

func (s *stack) get(path string) (int, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.api.URL+path, nil)
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	return do(s.t, req)
}

func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out), "body: %s", raw)
	return resp.StatusCode, out
}

// waitMessages waits for exactly n messages: at least n within the timeout, and no more during a
// quiet period after that.
func (s *stack) waitMessages(n int, timeout, quiet time.Duration) []mailcapture.Message {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := s.inbox.WaitFor(ctx, n)
	require.NoError(s.t, err, "waiting for %d messages, have %d", n, len(s.inbox.Messages()))
	time.Sleep(quiet)
	msgs := s.inbox.Messages()
	if len(msgs) != n {
		subjects := make([]string, len(msgs))
		for i, m := range msgs {
			subjects[i] = m.Subject
		}
		s.t.Fatalf("want exactly %d messages, got %d: %q", n, len(msgs), subjects)
	}
	return msgs
}

// leadState queries the lead's workflow.
func (s *stack) leadState(leadID string) workflows.LeadState {
	s.t.Helper()
	st, err := app.TemporalStates{Client: s.client}.LeadState(context.Background(), leadID)
	require.NoError(s.t, err)
	return *st
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out: "+msg, args...)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	if os.Getenv("TEND_E2E_VERBOSE") != "" {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}
