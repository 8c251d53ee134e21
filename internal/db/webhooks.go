package db

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// StageChangeEvent is a stage change as a CRM webhook carries it.
type StageChangeEvent struct {
	ID        int64     `json:"id"`
	LeadID    string    `json:"lead_id"`
	Email     string    `json:"email"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Reason    string    `json:"reason"`
	Actor     string    `json:"actor"`
	ChangedAt time.Time `json:"changed_at"`
}

// StageChangesAfter returns up to limit stage changes after the stream's cursor, oldest first,
// and the cursor they start after.
func (s *Store) StageChangesAfter(ctx context.Context, stream string, limit int) ([]StageChangeEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.id, c.lead_id, l.email, c.from_stage, c.to_stage, c.reason, c.actor, c.changed_at
		FROM stage_changes c JOIN leads l ON l.id = c.lead_id
		WHERE c.id > coalesce((SELECT last_id FROM webhook_cursors WHERE name = $1), 0)
		ORDER BY c.id LIMIT $2`, stream, limit)
	if err != nil {
		return nil, translate(err)
	}
	var out []StageChangeEvent
	for rows.Next() {
		var e StageChangeEvent
		var lead uuid.UUID
		if err := rows.Scan(&e.ID, &lead, &e.Email, &e.From, &e.To, &e.Reason, &e.Actor, &e.ChangedAt); err != nil {
			return nil, translate(err)
		}
		e.LeadID = lead.String()
		out = append(out, e)
	}
	return out, translate(rows.Err())
}

// AdvanceCursor records that the stream delivered everything up to id.
func (s *Store) AdvanceCursor(ctx context.Context, stream string, id int64) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO webhook_cursors (name, last_id) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET last_id = greatest(webhook_cursors.last_id, EXCLUDED.last_id)`, stream, id)
	return translate(err)
}
