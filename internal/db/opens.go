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

// ClickTarget is what a click token leads to: the send, if it was sent, and the link, if the
// send has it.
type ClickTarget struct {
	SentMessage
	Link      Link
	LinkFound bool
}

// ClickTargets returns, for clicks of the sends' links (sends[i], links[i]), the sent messages and
// their links, keyed by send id and link index; a send that is not (yet) recorded as sent is
// missing. It is SentMessage and SendLink for a batch of clicks, in one query.
func (s *Store) ClickTargets(ctx context.Context, sends []string, links []int) (map[SendLinkKey]ClickTarget, error) {
	idx := make([]int32, len(links))
	for i, l := range links {
		idx[i] = int32(l)
	}
	rows, err := s.pool.Query(ctx, `SELECT k.send_id, k.idx, s.lead_id, s.sent_at,
		(SELECT count(*) FROM send_links c WHERE c.send_id = s.id), l.url, l.tag
		FROM unnest($1::uuid[], $2::int[]) AS k(send_id, idx)
		JOIN sends s ON s.id = k.send_id AND s.status = 'sent'
		LEFT JOIN send_links l ON l.send_id = k.send_id AND l.idx = k.idx`, sends, idx)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := make(map[SendLinkKey]ClickTarget, len(sends))
	for rows.Next() {
		var send, lead uuid.UUID
		var link int32
		var sentAt *time.Time
		var url, tag *string
		var t ClickTarget
		if err := rows.Scan(&send, &link, &lead, &sentAt, &t.Links, &url, &tag); err != nil {
			return nil, translate(err)
		}
		t.SendID, t.LeadID = send.String(), lead.String()
		if sentAt != nil {
			t.SentAt = *sentAt
		}
		t.Link.Index = int(link)
		if url != nil {
			t.LinkFound, t.Link.URL, t.Link.Tag = true, *url, *tag
		}
		out[SendLinkKey{SendID: t.SendID, Link: int(link)}] = t
	}
	return out, translate(rows.Err())
}

// SendLinkKey names one link of one send.
type SendLinkKey struct {
	SendID string
	Link   int
}

// EventProbe asks when a person (not a machine) last hit a send's link (Link -1: the send's open
// pixel) with an event of the type, strictly between After and Before.
type EventProbe struct {
	SendID        string
	Type          string
	Link          int
	After, Before time.Time
}

// LatestHumanEvents answers each probe with the time of the latest matching event, or the zero
// time when there is none: one index probe each (events_send_human_idx), however often the send
// was hit before, where reading the send's history grew with every hit.
func (s *Store) LatestHumanEvents(ctx context.Context, probes []EventProbe) ([]time.Time, error) {
	out := make([]time.Time, len(probes))
	if len(probes) == 0 {
		return out, nil
	}
	sends, types, links := make([]string, len(probes)), make([]string, len(probes)), make([]int32, len(probes))
	after, before := make([]time.Time, len(probes)), make([]time.Time, len(probes))
	for i, p := range probes {
		sends[i], types[i], links[i], after[i], before[i] = p.SendID, p.Type, int32(p.Link), p.After, p.Before
	}
	rows, err := s.pool.Query(ctx, `SELECT k.i, (SELECT max(e.occurred_at) FROM events e
		WHERE e.send_id = k.send_id AND e.type = k.type AND coalesce(e.link_idx, -1) = k.link AND NOT e.machine
		AND e.occurred_at > k.after AND e.occurred_at < k.before)
		FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::timestamptz[]) WITH ORDINALITY
		AS k(send_id, type, link, after, before, i)`, sends, types, links, after, before)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var i int64
		var at *time.Time
		if err := rows.Scan(&i, &at); err != nil {
			return nil, translate(err)
		}
		if at != nil {
			out[i-1] = *at
		}
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
