// Package app wires tend's parts together — the same way for `tend dev`, `tend server`,
// `tend worker` and the end-to-end tests — so that what is tested is what runs.
package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/api"
	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/config"
	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/crmhook"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/engage"
	"github.com/tendhq/tend/internal/every"
	"github.com/tendhq/tend/internal/metrics"
	"github.com/tendhq/tend/internal/render"
	"github.com/tendhq/tend/internal/rollout"
	"github.com/tendhq/tend/internal/sales"
	"github.com/tendhq/tend/internal/score"
	"github.com/tendhq/tend/internal/sequence"
	"github.com/tendhq/tend/internal/track"
	"github.com/tendhq/tend/templates"
	"github.com/tendhq/tend/workflows"
)

// NewRenderer parses the built-in templates, overridden file by file from dir when set.
func NewRenderer(dir string) (*render.Renderer, error) {
	r, err := render.New(render.Overlay(dir, templates.FS))
	if err != nil {
		return nil, fmt.Errorf("load templates: %w", err)
	}
	return r, nil
}

// LoadCatalog reads and validates the sequences file against the templates that exist.
func LoadCatalog(path string, r *render.Renderer) (*sequence.Catalog, error) {
	c, err := sequence.Load(path, sequence.Options{TemplateExists: r.Has})
	if err != nil {
		return nil, fmt.Errorf("load sequences:\n%w", err)
	}
	return c, nil
}

// DialTemporal connects to the Temporal frontend described by cfg (plain, TLS, mTLS or API key).
func DialTemporal(ctx context.Context, cfg config.Config, log *slog.Logger) (client.Client, error) {
	return DialTemporalWithMetrics(ctx, cfg, log, nil)
}

// DialTemporalWithMetrics is DialTemporal with the SDK's client and worker metrics (temporal_*)
// on m's registry; a nil m records none.
func DialTemporalWithMetrics(ctx context.Context, cfg config.Config, log *slog.Logger, m *metrics.Set) (client.Client, error) {
	opts := client.Options{
		HostPort:       cfg.TemporalAddress,
		Namespace:      cfg.TemporalNamespace,
		Logger:         tlog.NewStructuredLogger(log.With("component", "temporal")),
		MetricsHandler: m.Temporal(),
	}
	if cfg.TemporalTLS || cfg.TemporalTLSCert != "" || cfg.TemporalAPIKey != "" || cfg.TemporalTLSCA != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.TemporalTLSCert != "" {
			cert, err := tls.LoadX509KeyPair(cfg.TemporalTLSCert, cfg.TemporalTLSKey)
			if err != nil {
				return nil, fmt.Errorf("TEMPORAL_TLS_CERT/TEMPORAL_TLS_KEY: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		if cfg.TemporalTLSCA != "" {
			pem, err := os.ReadFile(cfg.TemporalTLSCA)
			if err != nil {
				return nil, fmt.Errorf("TEMPORAL_TLS_CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("TEMPORAL_TLS_CA: %s holds no PEM certificate", cfg.TemporalTLSCA)
			}
			tc.RootCAs = pool
		}
		opts.ConnectionOptions = client.ConnectionOptions{TLS: tc}
	}
	if cfg.TemporalAPIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(cfg.TemporalAPIKey)
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", cfg.TemporalAddress, cfg.TemporalNamespace, err)
	}
	return c, nil
}

// LoadScoring reads and validates the scoring model.
func LoadScoring(path string) (*score.Model, error) {
	m, err := score.Load(path)
	if err != nil {
		return nil, fmt.Errorf("load scoring model:\n%w", err)
	}
	return m, nil
}

// LoadTeam reads and validates the sales team file against the segments of the catalog and the
// scoring model's event types.
func LoadTeam(path string, c *sequence.Catalog) (*sales.Team, error) {
	var segs []string
	for _, s := range c.Segments {
		segs = append(segs, s.ID)
	}
	t, err := sales.Load(path, sales.Options{Segments: segs, EventTypes: score.EventTypes()})
	if err != nil {
		return nil, fmt.Errorf("load sales team:\n%w", err)
	}
	return t, nil
}

// TemporalDecider sends a rep's answer to the lead's workflow as a Temporal update.
type TemporalDecider struct{ Client client.Client }

// Decide runs the update and waits for its outcome.
func (t TemporalDecider) Decide(ctx context.Context, leadID string, d workflows.Decision) (workflows.DecisionResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	h, err := t.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: workflows.LeadWorkflowID(leadID),
		UpdateName: workflows.UpdateDecide, Args: []any{d}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		return workflows.DecisionResult{}, err
	}
	var out workflows.DecisionResult
	return out, h.Get(ctx, &out)
}

// CancelLead cancels the lead's workflow; a lead without one is fine.
func (t TemporalDecider) CancelLead(ctx context.Context, leadID string) error {
	err := t.Client.CancelWorkflow(ctx, workflows.LeadWorkflowID(leadID), "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil
	}
	return err
}

// OpenContent returns the published content — the kinds the store has none of yet first published
// from the TEND_* files (seed) — and keeps it current until ctx ends: a version published by
// `tend apply` on any server is in use here within poll, without a restart.
func OpenContent(ctx context.Context, store *db.Store, seed content.FileSeed, poll time.Duration, log *slog.Logger) (*content.Live, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	live, err := content.Open(ctx, store, seed.Read, log)
	if err != nil {
		return nil, err
	}
	log.Info("content in use", "versions", live.Current().Versions)
	w := &content.Watcher{Store: store, Live: live, Poll: poll, Log: log}
	go w.Watch(ctx)
	return live, nil
}

// WorkerDeps are what the activities need.
type WorkerDeps struct {
	// Team, when set, hands hand-off ready leads to reps with an SLA clock.
	Team *sales.Team
	// PublicURL is where reps reach accept and reject links.
	PublicURL string
	Store     *db.Store
	Catalog   *sequence.Catalog
	Model     *score.Model
	Renderer  *render.Renderer
	Mailer    activities.Mailer
	From      activities.From
	Tracking  *activities.Tracking
	Log       *slog.Logger
	// AfterAccepted and BeforeSend are fault-injection hooks for tests; nil in production.
	AfterAccepted func(ctx context.Context, in activities.SendInput) error
	BeforeSend    func(ctx context.Context, in activities.SendInput)
	// Live, when set, is the published content the activities read at every call; Catalog,
	// Model, Renderer and Team left nil are taken from it as it is now.
	Live *content.Live
	// Metrics, when set, counts what the activities do.
	Metrics *metrics.Set
	// StopTimeout is how long a stopping worker lets running activities finish before their
	// context is cancelled (worker.Options.WorkerStopTimeout); 0 cancels them at once.
	StopTimeout time.Duration
}

// fromLive fills the content fields left nil from the live content.
func (d *WorkerDeps) fromLive() {
	if d.Live == nil {
		return
	}
	cur := d.Live.Current()
	if d.Catalog == nil {
		d.Catalog = cur.Catalog
	}
	if d.Model == nil {
		d.Model = cur.Model
	}
	if d.Renderer == nil {
		d.Renderer = cur.Renderer
	}
	if d.Team == nil {
		d.Team = cur.Team
	}
}

// NewWorker returns a worker with tend's workflows and activities registered (not started).
func NewWorker(c client.Client, taskQueue string, d WorkerDeps) worker.Worker {
	if taskQueue == "" {
		taskQueue = workflows.TaskQueue
	}
	d.fromLive()
	w := worker.New(c, taskQueue, worker.Options{WorkerStopTimeout: d.StopTimeout})
	w.RegisterWorkflowWithOptions(workflows.Lead, workflow.RegisterOptions{Name: workflows.LeadWorkflowName})
	// Whether leads are handed to sales is decided at start: a team published later, where none
	// was, takes a restart of the workers.
	leads := &activities.Leads{Store: d.Store, Catalog: d.Catalog, Model: d.Model, Log: d.Log, SalesEnabled: d.Team != nil, Live: d.Live,
		Metrics: d.Metrics}
	if d.Team != nil {
		leads.RecycleCoolOff = d.Team.Recycle.CoolOff
	}
	w.RegisterActivity(leads)
	if d.Team != nil {
		var keys *track.Keys
		if d.Tracking != nil {
			keys = d.Tracking.Keys
		}
		w.RegisterActivity(&activities.Sales{Store: d.Store, Team: d.Team, Mailer: d.Mailer, Keys: keys, BaseURL: d.PublicURL,
			From: d.From, Log: d.Log, Live: d.Live, Metrics: d.Metrics})
	}
	w.RegisterActivity(&activities.Email{Store: d.Store, Mailer: d.Mailer, Renderer: d.Renderer, From: d.From, Consent: d.Catalog.Consent,
		Tracking: d.Tracking, Log: d.Log, AfterAccepted: d.AfterAccepted, BeforeSend: d.BeforeSend, Live: d.Live, Metrics: d.Metrics})
	// The rollout of a published version and the resume of a pause run as workflows here too.
	rollout.Register(w, &rollout.Activities{Store: d.Store, Signal: c, Log: d.Log})
	return w
}

// dryRun adapts the rollout's dry run to the content API.
type dryRun struct{ r *rollout.DryRunner }

func (d dryRun) DryRun(ctx context.Context, current, proposed *content.Set) (any, error) {
	return d.r.DryRun(ctx, current, proposed)
}

// TemporalStates reads lead workflow state through a query.
type TemporalStates struct{ Client client.Client }

// LeadState queries the lead's workflow.
func (t TemporalStates) LeadState(ctx context.Context, leadID string) (*workflows.LeadState, error) {
	v, err := t.Client.QueryWorkflow(ctx, workflows.LeadWorkflowID(leadID), "", workflows.QueryState)
	if err != nil {
		return nil, err
	}
	var st workflows.LeadState
	if err := v.Get(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

// APIDeps are what the HTTP server needs.
type APIDeps struct {
	Store     *db.Store
	Catalog   *sequence.Catalog
	Temporal  client.Client
	TaskQueue string
	APIKeys   []string
	// KeyNames names each API key (config.APIKeyNames).
	KeyNames   map[string]string
	Keys       *track.Keys
	Heuristics track.Heuristics
	// NotifyEvery is how often the events of a lead are signalled to its workflow (coalescing).
	NotifyEvery time.Duration
	// RateLimit is the requests per second one client address may make to the public tracking
	// endpoints (burst 4×); 0 means no limit.
	RateLimit float64
	// TrustedProxies are the load balancers whose X-Forwarded-For names the client.
	TrustedProxies []netip.Prefix
	// Team is the sales team (nil: no sales handoff).
	Team *sales.Team
	// WebhookSecret signs bounce and complaint webhooks.
	WebhookSecret string
	// Retention, when positive, folds raw events older than it into daily counts every hour.
	Retention time.Duration
	// CRM, when set, receives every stage change.
	CRM *crmhook.Deliverer
	// Live, when set, is the published content: capture, engagement and the sales routes read
	// it at every request, and the content routes (apply, versions, pause …) are served.
	// Catalog and Team left nil are taken from it.
	Live *content.Live
	// DryRun, Rollout and Resumer, when set, tell an apply what it does to the leads in flight,
	// move them onto a published version, and release the sends a pause held.
	DryRun  content.DryRunner
	Rollout content.Rollout
	Resumer content.Resumer
	Log     *slog.Logger
	// Metrics, when set, counts captures, engagement and the sales stages reps set through the
	// API, times every request by route, and exposes the coalescer, the open recorder and the
	// outbox backlog.
	Metrics *metrics.Set
}

// API is the HTTP server's handler and the services behind it.
type API struct {
	Handler   http.Handler
	Capture   *capture.Service
	Engage    *engage.Service
	Coalescer *engage.Coalescer
	store     *db.Store
	log       *slog.Logger
	retention time.Duration
	crm       *crmhook.Deliverer
}

// NewAPI returns the HTTP API; call Run to start its background work.
func NewAPI(d APIDeps) *API {
	if d.NotifyEvery == 0 {
		d.NotifyEvery = 500 * time.Millisecond
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Live != nil && d.Temporal != nil {
		// What an apply does to the leads in flight: read from their workflows, and told to them.
		starter := &rollout.Starter{Client: d.Temporal, Store: d.Store, TaskQueue: d.TaskQueue}
		if d.DryRun == nil {
			d.DryRun = dryRun{&rollout.DryRunner{Leads: d.Store, States: rollout.QueryStates{Client: d.Temporal}, Log: d.Log}}
		}
		if d.Rollout == nil {
			d.Rollout = starter
		}
		if d.Resumer == nil {
			d.Resumer = starter
		}
	}
	if d.Live != nil {
		if d.Catalog == nil {
			d.Catalog = d.Live.Current().Catalog
		}
		if d.Team == nil {
			d.Team = d.Live.Current().Team
		}
	}
	svc := &capture.Service{Store: d.Store, Catalog: d.Catalog, Log: d.Log, Live: d.Live, Metrics: d.Metrics,
		Enroller: capture.TemporalEnroller{Client: d.Temporal, TaskQueue: d.TaskQueue}}
	co := &engage.Coalescer{Interval: d.NotifyEvery, Log: d.Log, Send: EngagedSignaler(d.Temporal, d.TaskQueue)}
	eng := &engage.Service{Store: d.Store, Keys: d.Keys, Heuristics: d.Heuristics, Catalog: d.Catalog, Notifier: co, Log: d.Log, Live: d.Live,
		Metrics: d.Metrics}
	eng.Start()
	s := &api.Server{Capture: svc, Store: d.Store, States: TemporalStates{Client: d.Temporal}, APIKeys: d.APIKeys, KeyNames: d.KeyNames,
		Live: d.Live, DryRun: d.DryRun, Rollout: d.Rollout, Resumer: d.Resumer, Engage: eng, Decider: TemporalDecider{Client: d.Temporal}, Keys: d.Keys, Team: d.Team,
		Canceller: TemporalDecider{Client: d.Temporal}, WebhookSecret: d.WebhookSecret, TrustedProxies: d.TrustedProxies,
		Metrics: d.Metrics, Log: d.Log}
	if d.RateLimit > 0 {
		s.Limiter = api.NewLimiter(d.RateLimit, int(4*d.RateLimit)+1)
	}
	if d.Metrics != nil {
		d.Metrics.WatchQueue("coalescer_pending", "Leads with new events waiting for their workflow to be signalled.", co.Len)
		d.Metrics.WatchOpens(func() metrics.OpenCounts {
			st := eng.OpenStats()
			return metrics.OpenCounts{Waiting: st.Waiting, Dropped: st.Dropped, Failed: st.Failed}
		})
		if d.Store != nil {
			d.Metrics.WatchBacklog(func(ctx context.Context) (metrics.Backlog, error) {
				e, crm, err := d.Store.Backlog(ctx)
				return metrics.Backlog{Enrollments: e, CRMDeliveries: crm}, err
			})
		}
	}
	return &API{Handler: api.Instrument(s.Handler(), d.Metrics), Capture: svc, Engage: eng, Coalescer: co, store: d.Store, log: d.Log, retention: d.Retention, crm: d.CRM}
}

// Run runs the API's background work until ctx ends: the enrolment reconciler, the open recorder,
// the coalescer that signals workflows, and a sweep that re-notifies leads whose events were
// never scored (a notification lost in a restart). When ctx ends it returns once the queued opens
// are stored and the coalescer has sent their notifications: stop serving HTTP first.
func (a *API) Run(ctx context.Context, reconcileEvery time.Duration) {
	go a.Capture.RunReconciler(ctx, reconcileEvery, reconcileEvery)
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		a.Engage.RunOpenRecorder(ctx)
	}()
	// The coalescer outlives the recorder, so the opens stored while draining are signalled too.
	notifyCtx, stopNotify := context.WithCancel(context.WithoutCancel(ctx))
	notified := make(chan struct{})
	go func() {
		defer close(notified)
		a.Coalescer.Run(notifyCtx)
	}()
	defer func() {
		<-recorded
		stopNotify()
		<-notified
	}()
	if a.retention > 0 {
		go a.runRetention(ctx)
	}
	if a.crm != nil {
		go a.crm.Run(ctx, 2*time.Second)
	}
	every.Tick(ctx, reconcileEvery, a.sweepUnscored)
}

// sweepUnscored re-notifies the leads whose events were never scored.
func (a *API) sweepUnscored(ctx context.Context) {
	ids, err := a.store.LeadsWithUnscoredEvents(ctx, 5*time.Second, 500)
	if err != nil && ctx.Err() == nil {
		a.log.Warn("sweep unscored events", "err", err)
	}
	for _, id := range ids {
		a.Coalescer.Notify(id)
	}
}

// runRetention folds raw events older than the retention period into daily counts, hourly.
// Under the leader's gate only one server runs it; were two to overlap, each batch is one statement.
func (a *API) runRetention(ctx context.Context) {
	every.Once(ctx, a.purge)
	every.Tick(ctx, time.Hour, a.purge)
}

func (a *API) purge(ctx context.Context) {
	n, err := a.store.PurgeEvents(ctx, time.Now().Add(-a.retention))
	if err != nil && ctx.Err() == nil {
		a.log.Warn("retention", "err", err)
	} else if n > 0 {
		a.log.Info("retention folded old events into daily counts", "events", n)
	}
}

// EngagedSignaler returns a function that tells a lead's workflow about new events, starting the
// workflow if the lead has none yet.
func EngagedSignaler(c client.Client, taskQueue string) func(ctx context.Context, leadID string) error {
	if taskQueue == "" {
		taskQueue = workflows.TaskQueue
	}
	return func(ctx context.Context, leadID string) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := c.SignalWithStartWorkflow(ctx, workflows.LeadWorkflowID(leadID), workflows.SignalEngaged, workflows.Engaged{},
			client.StartWorkflowOptions{ID: workflows.LeadWorkflowID(leadID), TaskQueue: taskQueue,
				WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE},
			workflows.Lead, workflows.LeadInput{LeadID: leadID})
		return err
	}
}

// FromConfig returns the sender identity from the configuration.
func FromConfig(cfg config.Config) activities.From {
	return activities.From{Name: cfg.FromName, Address: cfg.FromAddress, Domain: cfg.MessageIDDomain, PostalAddress: cfg.PostalAddress}
}

// Ready answers /readyz for a server or worker: ready when Postgres answers a ping and the
// Temporal frontend passes its health check.
func Ready(store *db.Store, tc client.Client, log *slog.Logger) http.Handler {
	return metrics.Ready(3*time.Second, log,
		metrics.Check{Name: "postgres", Run: func(ctx context.Context) error { return store.Pool().Ping(ctx) }},
		metrics.Check{Name: "temporal", Run: func(ctx context.Context) error {
			_, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		}})
}
