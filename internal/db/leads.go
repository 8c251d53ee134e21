package db

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
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
	Email       string
	Name        string
	Company     string
	Interests   []string
	Attributes  map[string]string
	TimeZone    string
	Source      string
	Segment     string
	Stage       string // the stage this capture implies; an existing lead never moves backwards
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

// upsertLead inserts or updates by email; a second capture never demotes a lead (lead stays lead).
const upsertLead = `
INSERT INTO leads (id, email, name, company, interests, attributes, time_zone, source, segment, stage)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (email) DO UPDATE SET
    name       = CASE WHEN EXCLUDED.name <> '' THEN EXCLUDED.name ELSE leads.name END,
    company    = CASE WHEN EXCLUDED.company <> '' THEN EXCLUDED.company ELSE leads.company END,
    interests  = ARRAY(SELECT DISTINCT unnest(leads.interests || EXCLUDED.interests) ORDER BY 1),
    attributes = leads.attributes || EXCLUDED.attributes,
    time_zone  = CASE WHEN EXCLUDED.time_zone <> '' THEN EXCLUDED.time_zone ELSE leads.time_zone END,
    segment    = EXCLUDED.segment,
    stage      = CASE WHEN leads.stage = 'subscriber' AND EXCLUDED.stage = 'lead' THEN 'lead' ELSE leads.stage END,
    updated_at = now()
RETURNING ` + leadColumns + `, (xmax = 0) AS created`

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
		lead, err := scanLead(tx.QueryRow(ctx, upsertLead, uuid.New(), c.Email, c.Name, c.Company, interests, attrJSON,
			c.TimeZone, c.Source, c.Segment, c.Stage), &out.Created)
		if err != nil {
			return fmt.Errorf("upsert lead: %w", err)
		}
		out.Lead = lead
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
