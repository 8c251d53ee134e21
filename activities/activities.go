// Package activities holds the side effects of tend's workflows: reading a lead's plan from
// Postgres and sending a sequence step's email exactly once. Activities are methods on structs
// that carry their dependencies; the worker registers each struct once.
package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/metrics"
	"github.com/tendhq/tend/internal/score"
	"github.com/tendhq/tend/internal/sequence"
)

// Error types of non-retryable activity failures; the workflow branches on them.
const (
	// ErrTypeHardBounce: the receiving server said the mailbox does not exist; the address is
	// suppressed.
	ErrTypeHardBounce = "HardBounce"
	// ErrTypeRejected: a permanent rejection that is not the mailbox's fault (policy, content).
	ErrTypeRejected = "Rejected"
	// ErrTypeUnknownLead: the lead no longer exists.
	ErrTypeUnknownLead = "UnknownLead"
	// ErrTypeBadTemplate: the step's template is missing or does not render.
	ErrTypeBadTemplate = "BadTemplate"
)

// unknownLead is the non-retryable failure of an activity whose lead no longer exists (erased):
// the workflow ends the lead's marketing instead of retrying.
func unknownLead(leadID string, err error) error {
	return temporal.NewNonRetryableApplicationError("lead "+leadID+" does not exist", ErrTypeUnknownLead, err)
}

// Leads reads what a lead's workflow needs to plan its sequence.
type Leads struct {
	Store   *db.Store
	Catalog *sequence.Catalog
	Model   *score.Model
	Log     *slog.Logger
	// Now is the clock for scoring (decay, inactivity); nil means time.Now.
	Now func() time.Time
	// SalesEnabled says whether a sales team is configured: hand-off ready leads are then handed
	// to reps with an SLA clock; otherwise the handoff event is only recorded.
	SalesEnabled bool
	// RecycleCoolOff is how long after a recycle a lead's score alone cannot hand it to sales
	// again (a hand-raise still does): the team file's recycle.cool_off.
	RecycleCoolOff time.Duration
	// Live, when set, is the published content: its catalog, model and team replace Catalog,
	// Model and RecycleCoolOff, so that a new version is used at once.
	Live *content.Live
	// Metrics, when set, counts score updates and stage changes.
	Metrics *metrics.Set
}

func (a *Leads) catalog() *sequence.Catalog {
	if a.Live != nil {
		return a.Live.Current().Catalog
	}
	return a.Catalog
}

func (a *Leads) model() *score.Model {
	if a.Live != nil {
		return a.Live.Current().Model
	}
	return a.Model
}

func (a *Leads) coolOff() time.Duration {
	if a.Live != nil {
		if t := a.Live.Current().Team; t != nil {
			return t.Recycle.CoolOff
		}
	}
	return a.RecycleCoolOff
}

// PlanInput asks for the sequence a lead should run.
type PlanInput struct {
	LeadID string
	// Segment, when set, overrides the segment stored for the lead.
	Segment string
}

// Plan is the sequence a lead runs and the lead facts the workflow decides on.
type Plan struct {
	Segment  string
	Stage    lifecycle.Stage
	TimeZone string
	Sequence sequence.Sequence
	// Done lists the step ids of this sequence already sent, failed or suppressed for the lead, so
	// that a fresh run (after a restart of the workflow) never repeats them.
	Done []string
	// SalesEnabled: see Leads.SalesEnabled.
	SalesEnabled bool
	// The catalog's policies for every lead: frequency cap, quiet hours, re-engagement.
	FrequencyCap *sequence.FrequencyCap `json:",omitempty"`
	QuietHours   *sequence.QuietHours   `json:",omitempty"`
	Reengagement *sequence.Reengagement `json:",omitempty"`
	// Version is the published version of the sequences the plan was read from (0: from a file).
	Version int `json:",omitempty"`
}

// Plan returns the lead's segment sequence. A segment that no longer exists in the catalog falls
// back to the default segment.
func (a *Leads) Plan(ctx context.Context, in PlanInput) (Plan, error) {
	lead, err := a.Store.Lead(ctx, in.LeadID)
	if errors.Is(err, db.ErrNotFound) {
		return Plan{}, unknownLead(in.LeadID, err)
	}
	if err != nil {
		return Plan{}, fmt.Errorf("plan lead %s: %w", in.LeadID, err)
	}
	segID := lead.Segment
	if in.Segment != "" {
		segID = in.Segment
	}
	sends, err := a.Store.Sends(ctx, in.LeadID)
	if err != nil {
		return Plan{}, fmt.Errorf("plan lead %s: list sends: %w", in.LeadID, err)
	}
	cat, version := a.catalog(), 0
	if a.Live != nil {
		version = a.Live.Current().Version(content.Sequences)
	}
	if _, ok := cat.Segment(segID); !ok {
		// The segment was removed: the lead follows the segment its interests and facts map to now.
		segID = cat.SegmentForLead(lead.Interests, leadFacts(lead)).ID
	}
	p := PlanFor(cat, segID, lifecycle.Stage(lead.Stage), lead.TimeZone)
	p.Version = version
	p.SalesEnabled = a.SalesEnabled
	for _, s := range sends {
		if s.SequenceID == p.Sequence.ID && s.Status != db.SendPending {
			p.Done = append(p.Done, s.StepID)
		}
	}
	converted, err := a.Store.Converted(ctx, in.LeadID, p.Sequence.ID)
	if err != nil {
		return Plan{}, fmt.Errorf("plan lead %s: %w", in.LeadID, err)
	}
	if converted {
		// The lead reached this sequence's goal: the series did its job and is not run again.
		p.Done = p.Done[:0]
		for _, st := range p.Sequence.Steps {
			p.Done = append(p.Done, st.ID)
		}
	}
	return p, nil
}

// PlanFor is the plan of a lead in segment segID (the default segment when the catalog has no such
// segment) with nothing sent yet: the segment's sequence and the catalog's policies.
func PlanFor(cat *sequence.Catalog, segID string, stage lifecycle.Stage, timeZone string) Plan {
	seg, ok := cat.Segment(segID)
	if !ok {
		seg, _ = cat.Segment(cat.DefaultSegment)
	}
	p := Plan{Segment: seg.ID, Stage: stage, TimeZone: timeZone, Sequence: seg.Sequence, Done: []string{},
		FrequencyCap: cat.FrequencyCap, QuietHours: cat.QuietHours}
	if re := cat.Reengagement; re != nil {
		r := *re
		if seg.InactiveAfter > 0 {
			r.After = seg.InactiveAfter // this segment's own quiet period
		}
		p.Reengagement = &r
	}
	return p
}

func leadFacts(l db.Lead) sequence.Facts {
	return sequence.Facts{Stage: lifecycle.Stage(l.Stage), Band: l.Band, Score: l.Score, Attributes: l.Attributes}
}

// FollowInput asks for a sequence as it is in a published version of the sequences.
type FollowInput struct {
	LeadID     string
	SequenceID string
	// Version is the version the lead was told of; an older live copy is an error to retry (it
	// is in use within seconds).
	Version int
}

// FollowResult is the sequence as published, or, when the version no longer has it (its segment
// was removed), the segment the lead follows once it finishes where it is.
type FollowResult struct {
	Version int
	Found   bool
	// Sequence is the new version of the sequence, when Found.
	Sequence sequence.Sequence `json:",omitzero"`
	// Segment is the lead's segment in the new version: its current one if that still exists.
	Segment string
	// The catalog's policies in the new version, for the lead's segment.
	FrequencyCap *sequence.FrequencyCap `json:",omitempty"`
	QuietHours   *sequence.QuietHours   `json:",omitempty"`
	Reengagement *sequence.Reengagement `json:",omitempty"`
}

// Follow reads the lead's sequence from the published content, for a lead told of a new version.
func (a *Leads) Follow(ctx context.Context, in FollowInput) (FollowResult, error) {
	cat, version := a.catalog(), in.Version
	if a.Live != nil {
		cur := a.Live.Current()
		if version = cur.Version(content.Sequences); version < in.Version {
			return FollowResult{}, fmt.Errorf("follow lead %s: sequences version %d is not loaded here yet (have %d)", in.LeadID, in.Version, version)
		}
	}
	lead, err := a.Store.Lead(ctx, in.LeadID)
	if errors.Is(err, db.ErrNotFound) {
		return FollowResult{}, unknownLead(in.LeadID, err)
	}
	if err != nil {
		return FollowResult{}, fmt.Errorf("follow lead %s: %w", in.LeadID, err)
	}
	res := FollowResult{Version: version}
	res.Sequence, res.Found = cat.Sequence(in.SequenceID)
	seg := lead.Segment
	if s, ok := cat.SegmentOf(in.SequenceID); ok {
		seg = s.ID
	}
	if _, ok := cat.Segment(seg); !ok {
		seg = cat.SegmentForLead(lead.Interests, leadFacts(lead)).ID
	}
	p := PlanFor(cat, seg, lifecycle.Stage(lead.Stage), lead.TimeZone)
	res.Segment, res.FrequencyCap, res.QuietHours, res.Reengagement = p.Segment, p.FrequencyCap, p.QuietHours, p.Reengagement
	return res, nil
}
