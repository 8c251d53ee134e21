package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/score"
	"github.com/tendhq/tend/internal/sequence"
)

// RescoreInput asks for a lead's score to be computed again from its events.
type RescoreInput struct {
	LeadID string
	// SinceEventID is the last event the workflow has seen; tags of later human clicks may move
	// the lead to another segment.
	SinceEventID int64
	// SequenceID and Goal are the sequence the lead runs and its goal: an event since
	// SinceEventID, or the stage, reaching the goal records a conversion (HeldOut: the lead is in
	// the sequence's holdout group).
	SequenceID string         `json:",omitempty"`
	Goal       *sequence.Goal `json:",omitempty"`
	HeldOut    bool           `json:",omitempty"`
}

// Handoff says that a lead became hand-off ready: it crossed the MQL threshold or raised its hand.
type Handoff struct {
	Reason string  `json:"reason"`
	Score  float64 `json:"score"`
	// EventID is the hand-raise event, 0 for a threshold crossing.
	EventID int64 `json:"event_id,omitempty"`
	// HandRaise is the hand-raise event type (demo_request …), "" for a threshold crossing.
	HandRaise string `json:"hand_raise,omitempty"`
}

// RescoreResult is what the workflow needs to decide after new engagement.
type RescoreResult struct {
	Score float64
	Band  string
	Stage lifecycle.Stage
	// Handoff is set when this rescore made the lead hand-off ready (moved it to MQL).
	Handoff      *Handoff
	Unsubscribed bool
	// ClickedSends lists the sends the lead clicked (human clicks only).
	ClickedSends []string
	// SwitchSegment names another segment whose interest the lead just clicked content for.
	SwitchSegment string
	LastEventID   int64
	// LastEngagement is the time of the lead's latest engagement (click, site event, reply…),
	// zero if none; it resets the inactivity clock.
	LastEngagement time.Time `json:",omitzero"`
	// GoalReached: the lead reached the goal of RescoreInput.SequenceID (now or in an earlier
	// attempt); the conversion is recorded.
	GoalReached bool `json:",omitempty"`
}

// Rescore computes the lead's score from all its events with the scoring model, stores the score
// and breakdown, and moves a lead that became hand-off ready to MQL with the reason. Running it
// twice gives the same result: it is a pure function of the stored events plus the clock.
func (a *Leads) Rescore(ctx context.Context, in RescoreInput) (RescoreResult, error) {
	lead, err := a.Store.Lead(ctx, in.LeadID)
	if errors.Is(err, db.ErrNotFound) {
		return RescoreResult{}, unknownLead(in.LeadID, err)
	}
	if err != nil {
		return RescoreResult{}, fmt.Errorf("rescore lead %s: %w", in.LeadID, err)
	}
	events, err := a.Store.LeadEvents(ctx, in.LeadID)
	if err != nil {
		return RescoreResult{}, fmt.Errorf("rescore lead %s: %w", in.LeadID, err)
	}
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	se := make([]score.Event, len(events))
	res := RescoreResult{Unsubscribed: lead.UnsubscribedAt != nil}
	for i, e := range events {
		se[i] = score.Event{ID: fmt.Sprint(e.ID), Type: e.Type, Tags: e.Tags, At: e.OccurredAt, Machine: e.Machine, Duplicate: e.Duplicate}
		if e.ID > res.LastEventID {
			res.LastEventID = e.ID
		}
		if e.Type != "click" || e.Machine {
			continue
		}
		if e.SendID != "" && !slices.Contains(res.ClickedSends, e.SendID) {
			res.ClickedSends = append(res.ClickedSends, e.SendID)
		}
		if cat := a.catalog(); e.ID > in.SinceEventID && res.SwitchSegment == "" && cat != nil {
			for _, tag := range e.Tags {
				if seg := cat.SegmentFor([]string{tag}); seg.ID != cat.DefaultSegment && seg.ID != lead.Segment {
					res.SwitchSegment = seg.ID
					break
				}
			}
		}
	}
	// Events older than the retention period survive as daily counts: score them as events on
	// their day, so that a purge never lowers a score.
	aggs, err := a.Store.LeadAggregates(ctx, in.LeadID)
	if err != nil {
		return RescoreResult{}, fmt.Errorf("rescore lead %s: %w", in.LeadID, err)
	}
	for i, ag := range aggs {
		for k := range ag.Count {
			se = append(se, score.Event{ID: fmt.Sprintf("agg-%d-%d", i, k), Type: ag.Type, Tags: ag.Tags, At: ag.Day,
				Machine: ag.Machine, Duplicate: ag.Duplicate})
		}
	}
	r := a.model().Score(score.Lead{Attributes: lead.Attributes}, se, now)
	res.Score, res.Band, res.LastEngagement = r.Total, r.Band, r.LastEngagement
	if res.SwitchSegment == "" {
		res.SwitchSegment = a.segmentByFacts(lead, r)
	}
	u := db.ScoreUpdate{Score: r.Total, Band: r.Band, Breakdown: r.Breakdown, HandoffReady: r.HandoffReady,
		HandoffReason: r.HandoffReason, Segment: res.SwitchSegment,
		CheckStage: func(from, to string) error {
			return lifecycle.CheckTransition(lifecycle.Stage(from), lifecycle.Stage(to))
		}}
	from := lifecycle.Stage(lead.Stage)
	ready, reason, handRaiseID := r.HandoffReady, r.HandoffReason, r.HandRaiseEventID
	if from == lifecycle.Recycled {
		// Sent back by sales: readiness must be earned anew, not carried over.
		if ready, reason, handRaiseID, err = a.readyAgain(ctx, in.LeadID, lead, se, now); err != nil {
			return RescoreResult{}, fmt.Errorf("rescore lead %s: %w", in.LeadID, err)
		}
		u.HandoffReady, u.HandoffReason = ready, reason
	}
	if ready && (from == lifecycle.Subscriber || from == lifecycle.Lead || from == lifecycle.Recycled) {
		u.Stage, u.StageReason = string(lifecycle.MQL), reason
	}
	stage, changed, err := a.Store.ApplyScore(ctx, in.LeadID, u)
	if err != nil {
		return RescoreResult{}, fmt.Errorf("store score of lead %s: %w", in.LeadID, err)
	}
	a.Metrics.ScoreUpdated()
	if changed {
		a.Metrics.StageChanged(string(from), stage)
	}
	res.Stage = lifecycle.Stage(stage)
	if in.Goal != nil {
		if res.GoalReached, err = a.reachGoal(ctx, in, res.Stage, events); err != nil {
			return RescoreResult{}, err
		}
	}
	// Decided from the stored stage, not from whether this call moved it: a retry after the
	// commit (or a run that restarted) still hands the MQL to sales.
	if res.Stage == lifecycle.MQL {
		if reason == "" {
			reason = lead.HandoffReason
		}
		if reason == "" {
			reason = "marketing qualified"
		}
		h := &Handoff{Reason: reason, Score: r.Total}
		if handRaiseID != "" {
			fmt.Sscan(handRaiseID, &h.EventID)
			for _, e := range events {
				if e.ID == h.EventID {
					h.HandRaise = e.Type
				}
			}
		}
		res.Handoff = h
	}
	return res, nil
}

// readyAgain says whether a recycled lead is hand-off ready again: it raised its hand after the
// recycle, or, once the cool-off has passed, what it did since the recycle (with its fit) reaches
// the threshold on its own. Points earned before a rep sent it back never count twice.
func (a *Leads) readyAgain(ctx context.Context, leadID string, lead db.Lead, events []score.Event, now time.Time) (bool, string, string, error) {
	changes, err := a.Store.StageChanges(ctx, leadID)
	if err != nil {
		return false, "", "", err
	}
	var at time.Time
	for _, c := range changes {
		if c.To == string(lifecycle.Recycled) {
			at = c.ChangedAt
		}
	}
	var since []score.Event
	for _, e := range events {
		if e.At.After(at) {
			since = append(since, e)
		}
	}
	r := a.model().Score(score.Lead{Attributes: lead.Attributes}, since, now)
	if r.HandRaiseEventID != "" {
		return true, r.HandoffReason, r.HandRaiseEventID, nil
	}
	if r.HandoffReady && !now.Before(at.Add(a.coolOff())) {
		return true, r.HandoffReason + " since it was recycled", "", nil
	}
	return false, "", "", nil
}

// segmentByFacts returns the segment the lead belongs in now that its score and band are known,
// when that is decided by a segment's When (cold, warm and hot leads in different series), or
// "" when its segment stays. Catalogs without When keep their segment by interests alone.
func (a *Leads) segmentByFacts(lead db.Lead, r score.Result) string {
	cat := a.catalog()
	if cat == nil || !slices.ContainsFunc(cat.Segments, func(s sequence.Segment) bool { return s.When != nil }) {
		return ""
	}
	f := sequence.Facts{Stage: lifecycle.Stage(lead.Stage), Band: r.Band, Score: r.Total, Attributes: lead.Attributes}
	to := cat.SegmentForLead(lead.Interests, f)
	cur, ok := cat.Segment(lead.Segment)
	if to.ID == lead.Segment || (ok && to.When == nil && (cur.When == nil || cur.When.Matches(f))) {
		return ""
	}
	return to.ID
}

// reachGoal reports whether the lead reached the goal of its sequence — a human event since the
// last rescore, or its stored stage — and records the conversion once.
func (a *Leads) reachGoal(ctx context.Context, in RescoreInput, stage lifecycle.Stage, events []db.Event) (bool, error) {
	g := in.Goal
	var eventID int64
	reached := g.ReachedByStage(stage)
	for _, e := range events {
		if !reached && e.ID > in.SinceEventID && !e.Machine && g.ReachedByEvent(e.Type, e.Tags) {
			reached, eventID = true, e.ID
		}
	}
	if !reached {
		return false, nil
	}
	what := "stage " + string(g.Stage)
	if g.Event != "" {
		what = "event " + g.Event
		if g.Tag != "" {
			what += " #" + g.Tag
		}
	}
	if _, err := a.Store.RecordConversion(ctx, in.LeadID, in.SequenceID, what, eventID, in.HeldOut); err != nil {
		return false, fmt.Errorf("rescore lead %s: %w", in.LeadID, err)
	}
	return true, nil
}
