// Package capture records leads: it validates and normalises a capture (web form, API, CSV
// import), upserts the lead by email with its source and consent, assigns the segment, and enrols
// the lead in its workflow. Enrolment goes through an outbox written in the same transaction as the
// lead, so a capture that reached Postgres always reaches Temporal, if need be later through the
// reconciler.
package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/every"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/metrics"
	"github.com/tendhq/tend/internal/sequence"
	"github.com/tendhq/tend/workflows"
)

// Request is one capture of a lead, as received.
type Request struct {
	Email      string            `json:"email"`
	Name       string            `json:"name,omitempty"`
	Company    string            `json:"company,omitempty"`
	Interests  []string          `json:"interests,omitempty"`
	Source     string            `json:"source,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	TimeZone   string            `json:"time_zone,omitempty"`
	Consent    *Consent          `json:"consent,omitempty"`
}

// Consent is the consent the person gave with this capture.
type Consent struct {
	Granted   bool   `json:"granted"`
	WordingID string `json:"wording_id,omitempty"`
}

// Meta is what the capture's channel knows besides the request.
type Meta struct {
	IP          string
	ImportBatch string
}

// Result is a recorded capture.
type Result struct {
	Lead    db.Lead
	Created bool
	// Enrolled is false when Temporal could not be reached; the reconciler enrols the lead later.
	Enrolled bool
}

// Enroller delivers a capture to the lead's workflow, starting it if needed.
type Enroller interface {
	Enroll(ctx context.Context, leadID string, c workflows.Capture) error
}

// Service records captures.
type Service struct {
	Store    *db.Store
	Catalog  *sequence.Catalog
	Enroller Enroller
	Log      *slog.Logger
	// Live, when set, is the published content: its catalog replaces Catalog, so that a new
	// version's segments take the next capture.
	Live *content.Live
	// Metrics, when set, counts captures and enrolments.
	Metrics *metrics.Set
}

func (s *Service) catalog() *sequence.Catalog {
	if s.Live != nil {
		return s.Live.Current().Catalog
	}
	return s.Catalog
}

// Capture validates req, records it and enrols the lead. A *ValidationError means nothing was
// stored; db.ErrUnavailable means the database could not be reached and nothing was stored.
func (s *Service) Capture(ctx context.Context, req Request, meta Meta) (Result, error) {
	n, err := normalize(req)
	if err != nil {
		return Result{}, err
	}
	cat := s.catalog()
	// A new lead is cold with no score yet; a segment's when may still choose it by its stage or
	// attributes (an industry, a region).
	seg := cat.SegmentForLead(n.Interests, sequence.Facts{Stage: stageFor(n.Source), Band: "cold", Attributes: n.Attributes})
	c := db.Capture{
		Email: n.Email, Name: n.Name, Company: n.Company, Interests: n.Interests, Attributes: n.Attributes,
		TimeZone: n.TimeZone, Source: n.Source, Segment: seg.ID, Stage: string(stageFor(n.Source)), ImportBatch: meta.ImportBatch,
		EventType: eventFor(n.Source),
		Resegment: func(stored db.Lead) string { return SegmentAfter(cat, stored, n.Interests) },
	}
	if n.Consent != nil {
		c.Consent = &db.Consent{Granted: n.Consent.Granted, WordingID: n.Consent.WordingID, IP: meta.IP}
	}
	rec, err := s.Store.RecordCapture(ctx, c)
	if err != nil {
		return Result{}, fmt.Errorf("record capture: %w", err)
	}
	res := Result{Lead: rec.Lead, Created: rec.Created}
	s.Metrics.Captured(rec.Created)
	res.Enrolled = s.deliver(ctx, db.Enrollment{ID: rec.EnrollmentID, LeadID: rec.Lead.ID, Segment: rec.Lead.Segment,
		Stage: rec.Lead.Stage, TimeZone: rec.Lead.TimeZone})
	return res, nil
}

// SegmentAfter is the segment of a lead that already exists once a capture with these interests is
// recorded. The interests that count are this capture's, less those the lead opted out of in the
// preference centre, that some segment claims. None (no interests at all, as in a newsletter
// signup or an import without the column, or only interests no segment lists) keeps the lead's
// segment, however the lead got there (a capture, a click on another segment's content, the
// preference centre). Otherwise the lead goes to the first segment in file order that claims one
// of them: the interest the person just declared is the best guess of what it wants to read next,
// as a click on another segment's content is; the lead's earlier interests stay stored.
func SegmentAfter(cat *sequence.Catalog, stored db.Lead, interests []string) string {
	var counted []string
	for _, in := range interests {
		if !slices.Contains(stored.OptedOutInterests, in) && claimed(cat, in) {
			counted = append(counted, in)
		}
	}
	if len(counted) == 0 {
		return stored.Segment
	}
	return cat.SegmentForLead(counted, sequence.Facts{Stage: lifecycle.Stage(stored.Stage), Band: stored.Band, Score: stored.Score,
		Attributes: stored.Attributes}).ID
}

// claimed reports whether a segment lists the interest.
func claimed(cat *sequence.Catalog, interest string) bool {
	for _, s := range cat.Segments {
		for _, want := range s.Interests {
			if strings.EqualFold(want, interest) {
				return true
			}
		}
	}
	return false
}

// deliver signals the lead's workflow and marks the outbox row delivered. A failure leaves the row
// for the reconciler.
func (s *Service) deliver(ctx context.Context, e db.Enrollment) bool {
	err := s.Enroller.Enroll(ctx, e.LeadID, workflows.Capture{Segment: e.Segment, Stage: lifecycleStage(e.Stage), TimeZone: e.TimeZone,
		EnrollmentID: e.ID})
	if err != nil {
		s.Metrics.Enrolled(false)
		s.logger().Warn("enrolment deferred: Temporal did not take the capture", "lead_id", e.LeadID, "err", err)
		if mErr := s.Store.MarkEnrollmentFailed(context.WithoutCancel(ctx), e.ID, err.Error()); mErr != nil {
			s.logger().Warn("could not record failed enrolment", "lead_id", e.LeadID, "err", mErr)
		}
		return false
	}
	s.Metrics.Enrolled(true)
	if err := s.Store.MarkEnrollmentDelivered(context.WithoutCancel(ctx), e.ID); err != nil {
		// The workflow has the capture; delivering it again later is harmless.
		s.logger().Warn("could not mark enrolment delivered", "lead_id", e.LeadID, "err", err)
	}
	return true
}

// Reconcile delivers outbox rows older than age that are still undelivered and returns how many it
// delivered.
func (s *Service) Reconcile(ctx context.Context, age time.Duration) (int, error) {
	pending, err := s.Store.PendingEnrollments(ctx, time.Now().Add(-age), 100)
	if err != nil {
		return 0, fmt.Errorf("list pending enrolments: %w", err)
	}
	n := 0
	for _, e := range pending {
		if ctx.Err() != nil {
			break
		}
		if s.deliver(ctx, e) {
			n++
		}
	}
	return n, nil
}

// RunReconciler calls Reconcile every interval until ctx ends.
func (s *Service) RunReconciler(ctx context.Context, interval, age time.Duration) {
	every.Tick(ctx, interval, func(ctx context.Context) {
		n, err := s.Reconcile(ctx, age)
		if err != nil && ctx.Err() == nil {
			s.logger().Warn("reconciler", "err", err)
		}
		if n > 0 {
			s.logger().Info("reconciler enrolled deferred captures", "count", n)
		}
	})
}

func (s *Service) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// TemporalEnroller enrols leads with signal-with-start on the lead's workflow.
type TemporalEnroller struct {
	Client    client.Client
	TaskQueue string
}

// Enroll signals the lead's workflow with the capture, starting the workflow if none is open.
func (t TemporalEnroller) Enroll(ctx context.Context, leadID string, c workflows.Capture) error {
	tq := t.TaskQueue
	if tq == "" {
		tq = workflows.TaskQueue
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := t.Client.SignalWithStartWorkflow(ctx, workflows.LeadWorkflowID(leadID), workflows.SignalCapture, c,
		client.StartWorkflowOptions{
			ID:                    workflows.LeadWorkflowID(leadID),
			TaskQueue:             tq,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		}, workflows.Lead, workflows.LeadInput{LeadID: leadID})
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return nil
	}
	return err
}
