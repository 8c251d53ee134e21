package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhq/tend/internal/lifecycle"
)

// Event is one engagement or behaviour event of a lead.
type Event struct {
	ID            int64     `json:"id"`
	LeadID        string    `json:"-"`
	Type          string    `json:"type"`
	Tags          []string  `json:"tags"`
	URL           string    `json:"url,omitempty"`
	SendID        string    `json:"send_id,omitempty"`
	LinkIndex     *int      `json:"link_index,omitempty"`
	ClientEventID string    `json:"client_event_id,omitempty"`
	Machine       bool      `json:"machine"`
	MachineReason string    `json:"machine_reason,omitempty"`
	Duplicate     bool      `json:"duplicate"`
	UserAgent     string    `json:"-"`
	OccurredAt    time.Time `json:"occurred_at"`
	ReceivedAt    time.Time `json:"received_at"`
}

// InsertEvents stores events in one transaction. An event whose (lead, client event id) is
// already stored is skipped; its slot in the returned slice is false. Events are the caller's
// to validate.
func (s *Store) InsertEvents(ctx context.Context, events []Event) ([]bool, error) {
	inserted := make([]bool, len(events))
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		for i, e := range events {
			ok, err := insertEvent(ctx, tx, e)
			if err != nil {
				return err
			}
			inserted[i] = ok
		}
		return nil
	})
	return inserted, err
}

func insertEvent(ctx context.Context, tx pgx.Tx, e Event) (bool, error) {
	var clientID, sendID any
	if e.ClientEventID != "" {
		clientID = e.ClientEventID
	}
	if e.SendID != "" {
		sendID = e.SendID
	}
	tags := e.Tags
	if tags == nil {
		tags = []string{}
	}
	tag, err := tx.Exec(ctx, `INSERT INTO events (lead_id, type, tags, url, send_id, link_idx, client_event_id, machine,
		machine_reason, duplicate, user_agent, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (lead_id, client_event_id) DO NOTHING`,
		e.LeadID, e.Type, tags, truncate(e.URL, 2000), sendID, e.LinkIndex, clientID, e.Machine, e.MachineReason,
		e.Duplicate, truncate(e.UserAgent, 300), e.OccurredAt)
	if err != nil {
		return false, fmt.Errorf("insert %s event: %w", e.Type, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	if PromotesSubscriber(e.Type) {
		if err := promote(ctx, tx, e.LeadID, e.Type+" event"); err != nil {
			return false, fmt.Errorf("promote subscriber on %s event: %w", e.Type, err)
		}
	}
	return true, nil
}

// promotingEvents are the behaviour events that show a person used premium content: an e-book or
// video, a webinar, a demo, a quote or callback request, a form. A subscriber (newsletter and blog
// only) who does one of them becomes a lead. Page views, replies and newsletter signups do not.
var promotingEvents = []string{
	"content_download", "webinar_registration", "webinar_attended", "demo_request", "quote_request",
	"callback_request", "form_submit",
}

// PromotesSubscriber reports whether storing an event of this type promotes a subscriber to lead.
func PromotesSubscriber(eventType string) bool {
	return slices.Contains(promotingEvents, eventType)
}

// actorTend is the actor of the stage changes tend makes by itself.
const actorTend = "tend"

// promote moves the lead to lead if it is a subscriber, through setStage, which records the change
// and its reason; a lead at any other stage stays where it is. Only subscribers are locked.
func promote(ctx context.Context, tx pgx.Tx, leadID, reason string) error {
	var stage string
	if err := tx.QueryRow(ctx, `SELECT stage FROM leads WHERE id = $1`, leadID).Scan(&stage); err != nil {
		return err
	}
	if stage != string(lifecycle.Subscriber) {
		return nil
	}
	err := setStage(ctx, tx, leadID, string(lifecycle.Lead), actorTend, reason, func(from, _ string) error {
		if from != string(lifecycle.Subscriber) {
			return fmt.Errorf("lead is %s now", from)
		}
		return nil
	})
	if errors.Is(err, ErrTransition) {
		return nil // a concurrent change moved it first
	}
	return err
}

const eventColumns = `id, lead_id, type, tags, url, send_id, link_idx, coalesce(client_event_id, ''), machine, machine_reason,
	duplicate, user_agent, occurred_at, received_at`

func scanEvents(rows pgx.Rows) ([]Event, error) {
	out := []Event{}
	for rows.Next() {
		var e Event
		var lead uuid.UUID
		var send *uuid.UUID
		if err := rows.Scan(&e.ID, &lead, &e.Type, &e.Tags, &e.URL, &send, &e.LinkIndex, &e.ClientEventID, &e.Machine,
			&e.MachineReason, &e.Duplicate, &e.UserAgent, &e.OccurredAt, &e.ReceivedAt); err != nil {
			return nil, translate(err)
		}
		e.LeadID = lead.String()
		if send != nil {
			e.SendID = send.String()
		}
		if e.Tags == nil {
			e.Tags = []string{}
		}
		out = append(out, e)
	}
	return out, translate(rows.Err())
}

// LeadEvents returns every event of the lead, oldest first.
func (s *Store) LeadEvents(ctx context.Context, leadID string) ([]Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE lead_id = $1 ORDER BY occurred_at, id`, leadID)
	if err != nil {
		return nil, translate(err)
	}
	return scanEvents(rows)
}

// Link is a link of a sent email.
type Link struct {
	Index int
	URL   string
	Tag   string
}

// RecordLinks stores the links of the send being claimed, in the claim's transaction, so they are
// there before the message leaves and gone if it does not.
func (c *Claim) RecordLinks(ctx context.Context, links []Link) error {
	if _, err := c.tx.Exec(ctx, `DELETE FROM send_links WHERE send_id = $1`, c.Send.ID); err != nil {
		return translate(err)
	}
	for _, l := range links {
		if _, err := c.tx.Exec(ctx, `INSERT INTO send_links (send_id, idx, url, tag) VALUES ($1, $2, $3, $4)`,
			c.Send.ID, l.Index, l.URL, l.Tag); err != nil {
			return fmt.Errorf("record link %d: %w", l.Index, translate(err))
		}
	}
	return nil
}

// SentMessage is what a tracking token leads to.
type SentMessage struct {
	SendID string
	LeadID string
	SentAt time.Time
	Links  int
}

// SentMessage returns the send with the id if it was sent.
func (s *Store) SentMessage(ctx context.Context, sendID string) (SentMessage, error) {
	var m SentMessage
	var lead uuid.UUID
	var sentAt *time.Time
	err := s.pool.QueryRow(ctx, `SELECT s.lead_id, s.sent_at, (SELECT count(*) FROM send_links l WHERE l.send_id = s.id)
		FROM sends s WHERE s.id = $1 AND s.status = 'sent'`, sendID).Scan(&lead, &sentAt, &m.Links)
	if err != nil {
		return m, translate(err)
	}
	m.SendID, m.LeadID = sendID, lead.String()
	if sentAt != nil {
		m.SentAt = *sentAt
	}
	return m, nil
}

// Unsubscribe records that the lead unsubscribed (once; repeats change nothing) and returns
// whether this call did it. It waits for a send in flight to the lead to finish: the send's claim
// holds the lead's row.
func (s *Store) Unsubscribe(ctx context.Context, leadID, sendID, how string) (bool, error) {
	var changed bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE leads SET unsubscribed_at = now(), updated_at = now()
			WHERE id = $1 AND unsubscribed_at IS NULL`, leadID)
		if err != nil {
			return err
		}
		changed = tag.RowsAffected() == 1
		if !changed {
			return nil
		}
		_, err = insertEvent(ctx, tx, Event{LeadID: leadID, Type: "unsubscribe", Tags: []string{how}, SendID: sendID,
			ClientEventID: "unsubscribe", OccurredAt: time.Now()})
		return err
	})
	return changed, err
}

// SetOptedOutInterests records the interests the person no longer wants mail about and the
// segment that follows from the rest.
func (s *Store) SetOptedOutInterests(ctx context.Context, leadID string, optedOut []string, segment string) error {
	if optedOut == nil {
		optedOut = []string{}
	}
	_, err := s.pool.Exec(ctx, `UPDATE leads SET opted_out_interests = $2, segment = $3, updated_at = now() WHERE id = $1`,
		leadID, optedOut, segment)
	return translate(err)
}

// StageChange is one lifecycle transition.
type StageChange struct {
	From      string    `json:"from"`
	To        string    `json:"to"`
	Reason    string    `json:"reason"`
	Actor     string    `json:"actor"`
	ChangedAt time.Time `json:"changed_at"`
}

// StageChanges returns the lead's stage history, oldest first.
func (s *Store) StageChanges(ctx context.Context, leadID string) ([]StageChange, error) {
	rows, err := s.pool.Query(ctx, `SELECT from_stage, to_stage, reason, actor, changed_at FROM stage_changes
		WHERE lead_id = $1 ORDER BY changed_at, id`, leadID)
	if err != nil {
		return nil, translate(err)
	}
	out := []StageChange{}
	for rows.Next() {
		var c StageChange
		if err := rows.Scan(&c.From, &c.To, &c.Reason, &c.Actor, &c.ChangedAt); err != nil {
			return nil, translate(err)
		}
		out = append(out, c)
	}
	return out, translate(rows.Err())
}

// ScoreUpdate is a newly computed score and, optionally, the stage it moves the lead to.
type ScoreUpdate struct {
	Score         float64
	Band          string
	Breakdown     any
	HandoffReady  bool
	HandoffReason string
	// Stage, when set, is the new stage; CheckStage must accept the move from the current one.
	Stage       string
	StageReason string
	Segment     string
	CheckStage  func(from, to string) error
}

// ApplyScore stores a score and a stage change together. It returns the stage the lead is in
// afterwards and whether it changed.
func (s *Store) ApplyScore(ctx context.Context, leadID string, u ScoreUpdate) (stage string, changed bool, err error) {
	breakdown, err := json.Marshal(u.Breakdown)
	if err != nil {
		return "", false, err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT stage FROM leads WHERE id = $1 FOR UPDATE`, leadID).Scan(&stage); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE leads SET score = $2, band = $3, score_breakdown = $4, scored_at = now(),
			handoff_ready_at = CASE WHEN $5 THEN coalesce(handoff_ready_at, now()) ELSE handoff_ready_at END,
			handoff_reason = CASE WHEN $5 AND handoff_ready_at IS NULL THEN $6 ELSE handoff_reason END,
			segment = CASE WHEN $7 <> '' THEN $7 ELSE segment END
			WHERE id = $1`, leadID, u.Score, u.Band, breakdown, u.HandoffReady, u.HandoffReason, u.Segment); err != nil {
			return err
		}
		if u.Stage == "" || u.Stage == stage || (u.CheckStage != nil && u.CheckStage(stage, u.Stage) != nil) {
			return nil
		}
		if err := setStage(ctx, tx, leadID, u.Stage, actorTend, u.StageReason, nil); err != nil {
			return err
		}
		stage, changed = u.Stage, true
		return nil
	})
	return stage, changed, err
}

// LeadFilter selects leads for the list API.
type LeadFilter struct {
	Stage    string
	Band     string
	Segment  string
	MinScore *float64
	MaxScore *float64
	// After is the id of the last lead of the previous page (leads are ordered by creation).
	AfterCreated time.Time
	AfterID      string
	Limit        int
}

// ListLeads returns one page of leads, oldest first.
func (s *Store) ListLeads(ctx context.Context, f LeadFilter) ([]Lead, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Stage != "" {
		add("stage = $%d", f.Stage)
	}
	if f.Band != "" {
		add("band = $%d", f.Band)
	}
	if f.Segment != "" {
		add("segment = $%d", f.Segment)
	}
	if f.MinScore != nil {
		add("score >= $%d", *f.MinScore)
	}
	if f.MaxScore != nil {
		add("score <= $%d", *f.MaxScore)
	}
	if f.AfterID != "" {
		args = append(args, f.AfterCreated, f.AfterID)
		where = append(where, fmt.Sprintf("(created_at, id) > ($%d, $%d)", len(args)-1, len(args)))
	}
	q := `SELECT ` + leadColumns + ` FROM leads`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit)
	q += fmt.Sprintf(" ORDER BY created_at, id LIMIT $%d", len(args))
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []Lead{}
	for rows.Next() {
		l, err := scanLead(rows)
		if err != nil {
			return nil, translate(err)
		}
		out = append(out, l)
	}
	return out, translate(rows.Err())
}

// LeadsWithUnscoredEvents returns leads that have events received after their last scoring and
// longer ago than settle: their workflow was not told (a notification lost to a restart).
func (s *Store) LeadsWithUnscoredEvents(ctx context.Context, settle time.Duration, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT l.id FROM leads l WHERE EXISTS (
		SELECT 1 FROM events e WHERE e.lead_id = l.id AND NOT e.machine AND NOT e.duplicate
		AND e.received_at > coalesce(l.scored_at, '-infinity') AND e.received_at < now() - $1::interval)
		LIMIT $2`, settle.String(), limit)
	if err != nil {
		return nil, translate(err)
	}
	var out []string
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, translate(err)
		}
		out = append(out, id.String())
	}
	return out, translate(rows.Err())
}
