package db

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ExportLead is Export with the store's suppression key.
func (s *Store) ExportLead(ctx context.Context, leadID string) (Export, error) {
	return s.Export(ctx, s.suppressionKey, leadID)
}

// EraseLead is Erase with the store's suppression key.
func (s *Store) EraseLead(ctx context.Context, leadID, reason string) error {
	return s.Erase(ctx, s.suppressionKey, leadID, reason)
}

// SentTo names the send and lead an email went to.
type SentTo struct {
	SendID string
	LeadID string
	Email  string
}

// FindSend finds the send a bounce or complaint is about: by send id (from a VERP address), else
// by Message-ID, else the latest send to the address.
func (s *Store) FindSend(ctx context.Context, sendID, messageID, email string) (SentTo, error) {
	var out SentTo
	var sid, lid uuid.UUID
	q := `SELECT s.id, s.lead_id, l.email FROM sends s JOIN leads l ON l.id = s.lead_id WHERE `
	var row pgx.Row
	switch {
	case sendID != "":
		if _, err := uuid.Parse(sendID); err != nil {
			return out, ErrNotFound
		}
		row = s.pool.QueryRow(ctx, q+`s.id = $1`, sendID)
	case messageID != "":
		row = s.pool.QueryRow(ctx, q+`s.message_id = $1`, messageID)
	default:
		row = s.pool.QueryRow(ctx, q+`l.email = $1 ORDER BY s.created_at DESC LIMIT 1`, email)
	}
	if err := row.Scan(&sid, &lid, &out.Email); err != nil {
		return out, translate(err)
	}
	out.SendID, out.LeadID = sid.String(), lid.String()
	return out, nil
}

// CountEvents counts a lead's events of a type with a tag since a time.
func (s *Store) CountEvents(ctx context.Context, leadID, typ, tag string, since time.Time) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE lead_id = $1 AND type = $2 AND $3 = ANY(tags) AND occurred_at >= $4`,
		leadID, typ, tag, since).Scan(&n)
	return n, translate(err)
}
