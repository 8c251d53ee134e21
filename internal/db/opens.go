package db

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// SentMessages returns the sends among ids that were sent, by send id; the others are missing
// from the map. It is SentMessage for a batch of tracking hits, without the link count.
func (s *Store) SentMessages(ctx context.Context, ids []string) (map[string]SentMessage, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, lead_id, sent_at FROM sends WHERE id = ANY($1::uuid[]) AND status = 'sent'`, ids)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := make(map[string]SentMessage, len(ids))
	for rows.Next() {
		var id, lead uuid.UUID
		var sentAt *time.Time
		if err := rows.Scan(&id, &lead, &sentAt); err != nil {
			return nil, translate(err)
		}
		m := SentMessage{SendID: id.String(), LeadID: lead.String()}
		if sentAt != nil {
			m.SentAt = *sentAt
		}
		out[m.SendID] = m
	}
	return out, translate(rows.Err())
}

// HumanEventTimes returns, by send id, when the person-made (not machine) events of the type
// happened for the sends among ids, from since on.
func (s *Store) HumanEventTimes(ctx context.Context, ids []string, typ string, since time.Time) (map[string][]time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT send_id, occurred_at FROM events
		WHERE send_id = ANY($1::uuid[]) AND type = $2 AND NOT machine AND occurred_at >= $3 ORDER BY occurred_at, id`, ids, typ, since)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := map[string][]time.Time{}
	for rows.Next() {
		var id uuid.UUID
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, translate(err)
		}
		out[id.String()] = append(out[id.String()], at)
	}
	return out, translate(rows.Err())
}

// CopyEvents stores tracking events (no client event ids, so nothing to skip) in one COPY:
// all of them or, on error, none.
func (s *Store) CopyEvents(ctx context.Context, events []Event) error {
	rows := make([][]any, len(events))
	for i, e := range events {
		var sendID any
		if e.SendID != "" {
			sendID = e.SendID
		}
		tags := e.Tags
		if tags == nil {
			tags = []string{}
		}
		rows[i] = []any{e.LeadID, e.Type, tags, cleanText(e.URL, 2000), sendID, e.LinkIndex, e.Machine, e.MachineReason,
			e.Duplicate, cleanText(e.UserAgent, 300), e.OccurredAt}
	}
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"events"}, []string{"lead_id", "type", "tags", "url", "send_id", "link_idx",
		"machine", "machine_reason", "duplicate", "user_agent", "occurred_at"}, pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("copy %d events: %w", len(events), translate(err))
	}
	return nil
}

// cleanText makes request text storable: valid UTF-8, no NUL (Postgres text refuses both),
// at most n bytes.
func cleanText(s string, n int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	return strings.ToValidUTF8(truncate(s, n), "")
}
