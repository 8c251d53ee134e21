package db

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// RolloutCandidate is a lead that a new version of the sequences may reach, with the facts its
// segment is chosen by. It carries no personal data.
type RolloutCandidate struct {
	ID         string
	Segment    string
	Stage      string
	Band       string
	Score      float64
	Interests  []string
	Attributes map[string]string
}

// CandidateFilter says which leads a new version of the sequences may reach. Unsubscribed leads
// are never among them (no version mails them); erased leads have no row left.
type CandidateFilter struct {
	// Segments are the stored segments whose leads are candidates.
	Segments []string `json:"segments"`
	// Sequences are sequences whose leads are candidates too when they were sent any step of
	// one: a lead captured into another segment keeps running its series to the end, while its
	// stored segment is already the new one.
	Sequences []string `json:"sequences,omitempty"`
	// All makes every lead a candidate, whatever its segment: the re-engagement series, which
	// any lead may be in, changed.
	All bool `json:"all,omitempty"`
}

func (f CandidateFilter) where() (string, []any) {
	if f.All {
		return `unsubscribed_at IS NULL`, nil
	}
	segs, seqs := f.Segments, f.Sequences
	if segs == nil {
		segs = []string{}
	}
	if seqs == nil {
		seqs = []string{}
	}
	return `unsubscribed_at IS NULL AND (segment = ANY($1)
		OR EXISTS (SELECT 1 FROM sends s WHERE s.lead_id = leads.id AND s.sequence_id = ANY($2)))`, []any{segs, seqs}
}

// RolloutCandidates returns up to limit candidates with an id after after ("" for the first
// page), in id order: pages are read by keyset, so a rollout over a million leads never holds
// their ids at once, and leads created meanwhile are seen or not, never twice.
func (s *Store) RolloutCandidates(ctx context.Context, f CandidateFilter, after string, limit int) ([]RolloutCandidate, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("rollout candidates: limit must be positive, got %d", limit)
	}
	cursor := uuid.Nil
	if after != "" {
		var err error
		if cursor, err = uuid.Parse(after); err != nil {
			return nil, fmt.Errorf("rollout candidates: cursor %q is not a lead id", after)
		}
	}
	where, args := f.where()
	n := len(args)
	q := fmt.Sprintf(`SELECT id, segment, stage, band, score, interests, attributes FROM leads
		WHERE %s AND id > $%d ORDER BY id LIMIT $%d`, where, n+1, n+2)
	rows, err := s.pool.Query(ctx, q, append(args, cursor, limit)...)
	if err != nil {
		return nil, fmt.Errorf("rollout candidates: %w", translate(err))
	}
	defer rows.Close()
	var out []RolloutCandidate
	for rows.Next() {
		var c RolloutCandidate
		var id uuid.UUID
		var attrs []byte
		if err := rows.Scan(&id, &c.Segment, &c.Stage, &c.Band, &c.Score, &c.Interests, &attrs); err != nil {
			return nil, fmt.Errorf("rollout candidates: %w", translate(err))
		}
		c.ID = id.String()
		c.Attributes = map[string]string{}
		if len(attrs) > 0 {
			if err := json.Unmarshal(attrs, &c.Attributes); err != nil {
				return nil, fmt.Errorf("rollout candidates: attributes of lead %s: %w", c.ID, err)
			}
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rollout candidates: %w", translate(err))
	}
	return out, nil
}

// CountRolloutCandidates returns how many leads f selects.
func (s *Store) CountRolloutCandidates(ctx context.Context, f CandidateFilter) (int, error) {
	where, args := f.where()
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM leads WHERE `+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count rollout candidates: %w", translate(err))
	}
	return n, nil
}

// HeldSend is a lead whose send fell due while its sequence or step was paused.
type HeldSend struct {
	LeadID     string    `json:"lead_id" db:"lead_id"`
	SequenceID string    `json:"sequence_id" db:"sequence_id"`
	StepID     string    `json:"step_id" db:"step_id"`
	HeldAt     time.Time `json:"held_at" db:"held_at"`
}

// HeldCursor is where a pass over held sends stands: the last row read, in (held_at, lead_id,
// step_id) order. The zero cursor starts at the first row.
type HeldCursor struct {
	HeldAt time.Time `json:"held_at,omitzero"`
	LeadID string    `json:"lead_id,omitempty"`
	StepID string    `json:"step_id,omitempty"`
}

// CountHeldSends returns the database's clock and how many sends of sequenceID are held at it
// (of stepID only, unless stepID is ""): a resume spreads exactly these over its ramp, in the
// order they fell due, taking the returned time as its start so that its snapshot and its clock
// agree.
func (s *Store) CountHeldSends(ctx context.Context, sequenceID, stepID string) (time.Time, int, error) {
	var at time.Time
	var n int
	err := s.pool.QueryRow(ctx, `SELECT now(), count(*) FROM held_sends
		WHERE sequence_id = $1 AND ($2 = '' OR step_id = $2) AND held_at <= now()`, sequenceID, stepID).Scan(&at, &n)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("count held sends of %s/%s: %w", sequenceID, stepID, translate(err))
	}
	return at, n, nil
}

// HeldSends returns up to limit held sends of sequenceID (of stepID only, unless stepID is "")
// held at or before asOf, after cursor, in the order they fell due.
func (s *Store) HeldSends(ctx context.Context, sequenceID, stepID string, asOf time.Time, after HeldCursor, limit int) ([]HeldSend, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("held sends: limit must be positive, got %d", limit)
	}
	cursor := uuid.Nil
	if after.LeadID != "" {
		var err error
		if cursor, err = uuid.Parse(after.LeadID); err != nil {
			return nil, fmt.Errorf("held sends: cursor lead %q is not a lead id", after.LeadID)
		}
	}
	// -infinity sorts before every held_at, so the zero cursor starts at the first row.
	from := pgtype.Timestamptz{Time: after.HeldAt, Valid: true}
	if after.HeldAt.IsZero() {
		from = pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	}
	rows, err := s.pool.Query(ctx, `SELECT lead_id, sequence_id, step_id, held_at FROM held_sends
		WHERE sequence_id = $1 AND ($2 = '' OR step_id = $2) AND held_at <= $3
		  AND (held_at, lead_id, step_id) > ($4::timestamptz, $5::uuid, $6::text)
		ORDER BY held_at, lead_id, step_id LIMIT $7`,
		sequenceID, stepID, asOf, from, cursor, after.StepID, limit)
	if err != nil {
		return nil, fmt.Errorf("held sends of %s/%s: %w", sequenceID, stepID, translate(err))
	}
	defer rows.Close()
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (HeldSend, error) {
		var h HeldSend
		var id uuid.UUID
		err := row.Scan(&id, &h.SequenceID, &h.StepID, &h.HeldAt)
		h.LeadID = id.String()
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("held sends of %s/%s: %w", sequenceID, stepID, translate(err))
	}
	return out, nil
}

// ReleaseHeldSends deletes the held sends of sequenceID (of stepID only, unless stepID is "")
// held at or before asOf: their resume has told every one of their leads. A lead held again
// later, by a new pause, keeps its newer row.
func (s *Store) ReleaseHeldSends(ctx context.Context, sequenceID, stepID string, asOf time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM held_sends
		WHERE sequence_id = $1 AND ($2 = '' OR step_id = $2) AND held_at <= $3`, sequenceID, stepID, asOf)
	if err != nil {
		return 0, fmt.Errorf("release held sends of %s/%s: %w", sequenceID, stepID, translate(err))
	}
	return tag.RowsAffected(), nil
}
