package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tendhq/tend/internal/lifecycle"
)

// Lead is a person tend nurtures.
type Lead struct {
	ID             string            `json:"id"`
	Email          string            `json:"email"`
	Name           string            `json:"name"`
	Company        string            `json:"company"`
	Interests      []string          `json:"interests"`
	Attributes     map[string]string `json:"attributes"`
	TimeZone       string            `json:"time_zone"`
	Source         string            `json:"source"`
	Segment        string            `json:"segment"`
	Stage          string            `json:"stage"`
	UnsubscribedAt *time.Time        `json:"unsubscribed_at,omitempty"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
	Score          float64           `json:"score"`
	Band           string            `json:"band"`
	// Breakdown is the score by rule, as the scoring model computed it last (JSON array).
	Breakdown         json.RawMessage `json:"breakdown"`
	ScoredAt          *time.Time      `json:"scored_at,omitempty"`
	HandoffReadyAt    *time.Time      `json:"handoff_ready_at,omitempty"`
	HandoffReason     string          `json:"handoff_reason,omitempty"`
	OptedOutInterests []string        `json:"opted_out_interests"`
}

// Consent is what the person agreed to at capture.
type Consent struct {
	Granted   bool
	WordingID string
	IP        string
}

// Capture is one capture of a lead, already validated and normalised by the caller.
type Capture struct {
	Email      string
	Name       string
	Company    string
	Interests  []string
	Attributes map[string]string
	TimeZone   string
	Source     string
	// Segment is the segment of a lead this capture creates.
	Segment string
	// Resegment, when the lead exists already, returns its segment after this capture from the
	// lead as stored before it. It runs inside the capture's transaction with the lead's row
	// locked, so concurrent captures of one address see each other's interests. Nil keeps the
	// stored segment.
	Resegment func(stored Lead) string
	// Stage is the stage this capture implies. An existing lead never moves backwards; a
	// subscriber captured as a lead is promoted, with the capture's source as the reason.
	Stage       string
	Consent     *Consent
	ImportBatch string
	// EventType, when set, records the capture as a behaviour event too (an e-book download, a
	// demo registration) so that it counts in the score.
	EventType string
}

// Captured is the result of recording a capture.
type Captured struct {
	Lead         Lead
	Created      bool
	EnrollmentID int64
}

// insertLead creates the lead unless its address is already known; it then returns no row.
const insertLead = `
INSERT INTO leads (id, email, name, company, interests, attributes, time_zone, source, segment, stage)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (email) DO NOTHING
RETURNING ` + leadColumns

// updateLead merges a later capture into a lead: name, company and time zone when given,
// interests and attributes added to the stored ones. The segment is decided by the caller; the
// stage moves only through setStage.
const updateLead = `
UPDATE leads SET
    name       = CASE WHEN $2::text <> '' THEN $2 ELSE name END,
    company    = CASE WHEN $3::text <> '' THEN $3 ELSE company END,
    interests  = ARRAY(SELECT DISTINCT unnest(interests || $4::text[]) ORDER BY 1),
    attributes = attributes || $5::jsonb,
    time_zone  = CASE WHEN $6::text <> '' THEN $6 ELSE time_zone END,
    segment    = $7,
    updated_at = now()
WHERE id = $1
RETURNING ` + leadColumns

const leadColumns = `id, email, name, company, interests, attributes, time_zone, source, segment, stage, unsubscribed_at,
	created_at, updated_at, score, band, score_breakdown, scored_at, handoff_ready_at, handoff_reason, opted_out_interests`

func scanLead(row pgx.Row, extra ...any) (Lead, error) {
	var l Lead
	var id uuid.UUID
	var attrs []byte
	var breakdown []byte
	dest := append([]any{&id, &l.Email, &l.Name, &l.Company, &l.Interests, &attrs, &l.TimeZone, &l.Source,
		&l.Segment, &l.Stage, &l.UnsubscribedAt, &l.CreatedAt, &l.UpdatedAt, &l.Score, &l.Band, &breakdown,
		&l.ScoredAt, &l.HandoffReadyAt, &l.HandoffReason, &l.OptedOutInterests}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Lead{}, err
	}
	l.ID = id.String()
	l.Attributes = map[string]string{}
	if len(attrs) > 0 {
		if err := json.Unmarshal(attrs, &l.Attributes); err != nil {
			return Lead{}, fmt.Errorf("decode attributes: %w", err)
		}
	}
	if l.Interests == nil {
		l.Interests = []string{}
	}
	if l.OptedOutInterests == nil {
		l.OptedOutInterests = []string{}
	}
	l.Breakdown = json.RawMessage(breakdown)
	if len(l.Breakdown) == 0 {
		l.Breakdown = json.RawMessage("[]")
	}
	return l, nil
}

// RecordCapture upserts the lead by email, records the capture and consent, and writes the
// enrolment outbox row, all in one transaction: either everything is stored or nothing is.
func (s *Store) RecordCapture(ctx context.Context, c Capture) (Captured, error) {
	var out Captured
	attrs := c.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrJSON, err := json.Marshal(attrs)
	if err != nil {
		return out, fmt.Errorf("encode attributes: %w", err)
	}
	interests := c.Interests
	if interests == nil {
		interests = []string{}
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		lead, created, err := upsertCapture(ctx, tx, c, interests, attrJSON)
		if err != nil {
			return err
		}
		out.Lead, out.Created = lead, created
		var captureID int64
		if err := tx.QueryRow(ctx, `INSERT INTO captures (lead_id, source, interests) VALUES ($1, $2, $3) RETURNING id`,
			lead.ID, c.Source, interests).Scan(&captureID); err != nil {
			return fmt.Errorf("record capture: %w", err)
		}
		if c.EventType != "" {
			if _, err := insertEvent(ctx, tx, Event{LeadID: lead.ID, Type: c.EventType, Tags: []string{c.Source},
				ClientEventID: fmt.Sprintf("capture:%d", captureID), OccurredAt: time.Now()}); err != nil {
				return err
			}
		}
		if c.Consent != nil {
			if _, err := tx.Exec(ctx, `INSERT INTO consents (lead_id, granted, wording_id, source, ip, import_batch)
				VALUES ($1, $2, $3, $4, $5, $6)`, lead.ID, c.Consent.Granted, c.Consent.WordingID, c.Source,
				c.Consent.IP, c.ImportBatch); err != nil {
				return fmt.Errorf("record consent: %w", err)
			}
		}
		if err := tx.QueryRow(ctx, `INSERT INTO enrollments (lead_id, segment, stage, time_zone) VALUES ($1, $2, $3, $4) RETURNING id`,
			lead.ID, lead.Segment, lead.Stage, lead.TimeZone).Scan(&out.EnrollmentID); err != nil {
			return fmt.Errorf("write enrolment outbox: %w", err)
		}
		return nil
	})
	return out, err
}

// upsertCapture creates the lead, or merges the capture into the lead stored under its address
// (locked until the transaction ends) and promotes a subscriber the capture makes a lead.
func upsertCapture(ctx context.Context, tx pgx.Tx, c Capture, interests []string, attrJSON []byte) (Lead, bool, error) {
	// Two tries: a concurrent first capture of the address can insert it between our look-up and
	// our insert, and is then found by the second look-up.
	for range 2 {
		stored, err := scanLead(tx.QueryRow(ctx, `SELECT `+leadColumns+` FROM leads WHERE email = $1 FOR UPDATE`, c.Email))
		if errors.Is(err, pgx.ErrNoRows) {
			lead, err := scanLead(tx.QueryRow(ctx, insertLead, uuid.New(), c.Email, c.Name, c.Company, interests, attrJSON,
				c.TimeZone, c.Source, c.Segment, c.Stage))
			if errors.Is(err, pgx.ErrNoRows) {
				continue
			}
			if err != nil {
				return Lead{}, false, fmt.Errorf("insert lead: %w", err)
			}
			return lead, true, nil
		}
		if err != nil {
			return Lead{}, false, fmt.Errorf("look up lead: %w", err)
		}
		segment := stored.Segment
		if c.Resegment != nil {
			segment = c.Resegment(stored)
		}
		lead, err := scanLead(tx.QueryRow(ctx, updateLead, stored.ID, c.Name, c.Company, interests, attrJSON, c.TimeZone, segment))
		if err != nil {
			return Lead{}, false, fmt.Errorf("update lead: %w", err)
		}
		if lead.Stage == string(lifecycle.Subscriber) && c.Stage == string(lifecycle.Lead) {
			if err := setStage(ctx, tx, lead.ID, c.Stage, actorTend, "captured: "+c.Source, nil); err != nil {
				return Lead{}, false, fmt.Errorf("promote subscriber: %w", err)
			}
			lead.Stage = c.Stage
		}
		return lead, false, nil
	}
	return Lead{}, false, fmt.Errorf("upsert lead: the address was inserted and removed concurrently")
}

// Lead returns the lead with the given id.
func (s *Store) Lead(ctx context.Context, id string) (Lead, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Lead{}, ErrNotFound
	}
	l, err := scanLead(s.pool.QueryRow(ctx, `SELECT `+leadColumns+` FROM leads WHERE id = $1`, id))
	return l, translate(err)
}

// LeadIDByEmail returns the id of the lead with the given normalised address.
func (s *Store) LeadIDByEmail(ctx context.Context, email string) (string, error) {
	var id uuid.UUID
	err := s.pool.QueryRow(ctx, `SELECT id FROM leads WHERE email = $1`, email).Scan(&id)
	if err != nil {
		return "", translate(err)
	}
	return id.String(), nil
}

// Enrollment is an outbox row: a capture that must reach the lead's workflow.
type Enrollment struct {
	ID       int64
	LeadID   string
	Segment  string
	Stage    string
	TimeZone string
	Attempts int
}

// PendingEnrollments returns up to limit undelivered outbox rows created before olderThan, oldest
// first.
func (s *Store) PendingEnrollments(ctx context.Context, olderThan time.Time, limit int) ([]Enrollment, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, lead_id, segment, stage, time_zone, attempts FROM enrollments
		WHERE delivered_at IS NULL AND created_at < $1 ORDER BY created_at LIMIT $2`, olderThan, limit)
	if err != nil {
		return nil, translate(err)
	}
	var out []Enrollment
	for rows.Next() {
		var e Enrollment
		var id uuid.UUID
		if err := rows.Scan(&e.ID, &id, &e.Segment, &e.Stage, &e.TimeZone, &e.Attempts); err != nil {
			return nil, translate(err)
		}
		e.LeadID = id.String()
		out = append(out, e)
	}
	return out, translate(rows.Err())
}

// MarkEnrollmentDelivered records that the outbox row reached Temporal.
func (s *Store) MarkEnrollmentDelivered(ctx context.Context, id int64) error {
	_, err := s.pool.Exec(ctx, `UPDATE enrollments SET delivered_at = now(), attempts = attempts + 1 WHERE id = $1`, id)
	return translate(err)
}

// MarkEnrollmentFailed records a failed delivery attempt; the reconciler tries again later.
func (s *Store) MarkEnrollmentFailed(ctx context.Context, id int64, reason string) error {
	_, err := s.pool.Exec(ctx, `UPDATE enrollments SET attempts = attempts + 1, last_error = $2 WHERE id = $1`, id, truncate(reason, 500))
	return translate(err)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// LeadCount returns how many leads exist.
func (s *Store) LeadCount(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM leads`).Scan(&n)
	return n, translate(err)
}
