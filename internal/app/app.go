// Package app wires tend's parts together — the same way for `tend dev`, `tend server`,
// `tend worker` and the end-to-end tests — so that what is tested is what runs.
package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tendhq/tend/activities"
	"github.com/tendhq/tend/internal/api"
	"github.com/tendhq/tend/internal/capture"
	"github.com/tendhq/tend/internal/config"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/render"
	"github.com/tendhq/tend/internal/sequence"
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
	opts := client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    tlog.NewStructuredLogger(log.With("component", "temporal")),
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

// WorkerDeps are what the activities need.
type WorkerDeps struct {
	Store    *db.Store
	Catalog  *sequence.Catalog
	Renderer *render.Renderer
	Mailer   activities.Mailer
	From     activities.From
	Log      *slog.Logger
	// AfterAccepted is a fault-injection hook for tests; nil in production.
	AfterAccepted func(ctx context.Context, in activities.SendInput) error
}

// NewWorker returns a worker with tend's workflows and activities registered (not started).
func NewWorker(c client.Client, taskQueue string, d WorkerDeps) worker.Worker {
	if taskQueue == "" {
		taskQueue = workflows.TaskQueue
	}
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(workflows.Lead, workflow.RegisterOptions{Name: workflows.LeadWorkflowName})
	w.RegisterActivity(&activities.Leads{Store: d.Store, Catalog: d.Catalog, Log: d.Log})
	w.RegisterActivity(&activities.Email{Store: d.Store, Mailer: d.Mailer, Renderer: d.Renderer, From: d.From, Log: d.Log,
		AfterAccepted: d.AfterAccepted})
	return w
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
	Log       *slog.Logger
}

// NewAPI returns the HTTP handler and the capture service behind it (whose reconciler the caller
// runs).
func NewAPI(d APIDeps) (http.Handler, *capture.Service) {
	svc := &capture.Service{Store: d.Store, Catalog: d.Catalog, Log: d.Log,
		Enroller: capture.TemporalEnroller{Client: d.Temporal, TaskQueue: d.TaskQueue}}
	s := &api.Server{Capture: svc, Store: d.Store, States: TemporalStates{Client: d.Temporal}, APIKeys: d.APIKeys, Log: d.Log}
	return s.Handler(), svc
}

// FromConfig returns the sender identity from the configuration.
func FromConfig(cfg config.Config) activities.From {
	return activities.From{Name: cfg.FromName, Address: cfg.FromAddress, Domain: cfg.MessageIDDomain, PostalAddress: cfg.PostalAddress}
}
