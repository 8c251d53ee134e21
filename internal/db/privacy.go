package db

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// MinPrivacyKeyLen is the shortest key the privacy functions accept. The hashes are only as
// private as the key: with a short or empty one, anybody could hash a list of addresses and match.
const MinPrivacyKeyLen = 16

// SuppressionErased is the suppression reason of an address whose lead was erased.
const SuppressionErased = "erased"

// Deleting events in batches keeps each statement's locks and WAL burst small on a large table.
const purgeBatch = 5000

// Hashing the old clear rows in batches keeps a start-up on a long list from holding one huge
// transaction.
const hashBatch = 500

// HashEmail is the keyed hash (HMAC-SHA256 with key) of a normalised address, used on the
// suppression list. The address is trimmed and lower-cased first, as captures normalise it, so
// every spelling of one address has one hash.
func HashEmail(key []byte, email string) []byte {
	return keyedHash(key, normalizeEmail(email))
}

// LeadRef is the keyed hash of a lead id that an erasure row keeps: whoever holds the id and the
// key can tell the lead was erased, and nobody else can tell who it was.
func LeadRef(key []byte, leadID string) []byte {
	// The prefix keeps a lead ref from ever equalling an address hash.
	return keyedHash(key, "lead:"+strings.ToLower(leadID))
}

func keyedHash(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

func normalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func checkKey(key []byte) error {
	if len(key) < MinPrivacyKeyLen {
		return fmt.Errorf("privacy key is %d bytes; it must be at least %d", len(key), MinPrivacyKeyLen)
	}
	return nil
}

// scrubAddress removes the address from free text such as an SMTP bounce message
// ("550 5.1.1 <ana@example.com>: no such user"), which would otherwise keep it in clear.
func scrubAddress(text, email string) string {
	if email == "" {
		return text
	}
	return regexp.MustCompile(`(?i)`+regexp.QuoteMeta(email)).ReplaceAllLiteralString(text, "[address]")
}

// HashSuppressions fills email_hash for suppression rows that still hold their address in clear,
// blanks the address and scrubs it from the detail, and returns how many rows it changed. Call
// it at start-up: rows written before migration 0004, or by code that still writes addresses,
// are hashed then. When the address is already on the list by hash, the clear row is dropped
// and the first reason kept. Running it again changes nothing.
//
// Whatever checks the list must look the hash up (IsSuppressed), or it will no longer see these
// rows.
func (s *Store) HashSuppressions(ctx context.Context, key []byte) (int, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	total := 0
	for {
		n := 0
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			// SKIP LOCKED: several servers starting at once share the work instead of queueing.
			rows, err := tx.Query(ctx, `SELECT email, detail FROM suppressions WHERE email IS NOT NULL
				ORDER BY email LIMIT $1 FOR UPDATE SKIP LOCKED`, hashBatch)
			if err != nil {
				return err
			}
			type clearRow struct{ email, detail string }
			batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (clearRow, error) {
				var c clearRow
				err := r.Scan(&c.email, &c.detail)
				return c, err
			})
			if err != nil {
				return err
			}
			for _, c := range batch {
				if err := hashClearRow(ctx, tx, key, c.email, c.detail); err != nil {
					return err
				}
			}
			n = len(batch)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("hash suppression list: %w", err)
		}
		total += n
		if n < hashBatch {
			return total, nil
		}
	}
}

// hashClearRow turns the clear suppression row of email into a hashed one, or drops it when the
// hash is on the list already.
func hashClearRow(ctx context.Context, tx pgx.Tx, key []byte, email, detail string) error {
	h := HashEmail(key, email)
	tag, err := tx.Exec(ctx, `DELETE FROM suppressions WHERE email = $1
		AND EXISTS (SELECT 1 FROM suppressions o WHERE o.email_hash = $2 AND o.email IS DISTINCT FROM $1)`, email, h)
	if err != nil {
		return fmt.Errorf("drop duplicate clear suppression: %w", err)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE suppressions SET email_hash = $2, email = NULL, detail = $3 WHERE email = $1`,
		email, h, scrubAddress(detail, normalizeEmail(email))); err != nil {
		return fmt.Errorf("hash suppression: %w", err)
	}
	return nil
}

// SuppressHashed adds an address to the suppression list by its keyed hash only; the address is
// not stored, and is scrubbed from detail. A second call for the same address keeps the first
// reason, and so does a call for an address already on the list in clear (that row is hashed).
func (s *Store) SuppressHashed(ctx context.Context, key []byte, email, reason, detail string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	email = normalizeEmail(email)
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var old string
		err := tx.QueryRow(ctx, `SELECT detail FROM suppressions WHERE email = $1 FOR UPDATE`, email).Scan(&old)
		switch {
		case err == nil:
			if err := hashClearRow(ctx, tx, key, email, old); err != nil {
				return err
			}
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("look up clear suppression: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO suppressions (email_hash, reason, detail) VALUES ($1, $2, $3)
			ON CONFLICT (email_hash) DO NOTHING`, HashEmail(key, email), reason, truncate(scrubAddress(detail, email), 500)); err != nil {
			return fmt.Errorf("suppress address: %w", err)
		}
		return nil
	})
}

// IsSuppressed tells whether the address is on the suppression list, by hash or still in clear,
// and why.
func (s *Store) IsSuppressed(ctx context.Context, key []byte, email string) (reason string, ok bool, err error) {
	if err := checkKey(key); err != nil {
		return "", false, err
	}
	return suppressionReason(ctx, s.pool, key, email)
}

// querier is what both a pool and a transaction can run a one-row query on.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// suppressionReason looks the address up by hash and, for rows not hashed yet, in clear; a hashed
// row wins.
func suppressionReason(ctx context.Context, q querier, key []byte, email string) (string, bool, error) {
	email = normalizeEmail(email)
	var reason string
	err := q.QueryRow(ctx, `SELECT reason FROM suppressions WHERE email_hash = $1 OR email = $2
		ORDER BY email_hash IS NULL LIMIT 1`, HashEmail(key, email), email).Scan(&reason)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("check suppression list: %w", translate(err))
	}
	return reason, true, nil
}

// Export is everything tend holds about one lead (a GDPR access request). Rows other than the
// lead's are each table's own columns as JSON, so a column added later is exported without a
// change here; numbers keep their exact digits (json.Number).
type Export struct {
	Lead           Lead             `json:"lead"`
	Captures       []map[string]any `json:"captures"`
	Consents       []map[string]any `json:"consents"`
	Events         []map[string]any `json:"events"`
	Sends          []map[string]any `json:"sends"`
	SendLinks      []map[string]any `json:"send_links"`
	StageChanges   []map[string]any `json:"stage_changes"`
	Handoffs       []map[string]any `json:"handoffs"`
	Escalations    []map[string]any `json:"escalations"`
	Qualifications []map[string]any `json:"qualifications"`
	Opportunities  []map[string]any `json:"opportunities"`
	Notices        []map[string]any `json:"notices"`
	Enrollments    []map[string]any `json:"enrollments"`
	// AnswerNotes are reps' notes on answers not yet stored with them.
	AnswerNotes []map[string]any `json:"answer_notes"`
	// HeldSends are the lead's sends waiting for a paused sequence or step to resume.
	HeldSends []map[string]any `json:"held_sends"`
	// Conversions are the sequence goals the lead reached.
	Conversions []map[string]any `json:"conversions"`
	// EventAggregates are daily counts of events older than the retention period.
	EventAggregates []map[string]any `json:"event_aggregates"`
	// Suppressed is the reason the address is on the suppression list, nil when it is not.
	Suppressed *string   `json:"suppressed"`
	ExportedAt time.Time `json:"exported_at"`
}

// Export returns everything tend holds about the lead, read in one snapshot. The key is needed to
// find the address on the suppression list, which holds hashes. An unknown lead gives
// ErrNotFound.
func (s *Store) Export(ctx context.Context, key []byte, leadID string) (Export, error) {
	var out Export
	if err := checkKey(key); err != nil {
		return out, err
	}
	if _, err := uuid.Parse(leadID); err != nil {
		return out, ErrNotFound
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return out, fmt.Errorf("export lead %s: %w", leadID, translate(err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	out.Lead, err = scanLead(tx.QueryRow(ctx, `SELECT `+leadColumns+` FROM leads WHERE id = $1`, leadID))
	if err != nil {
		return out, fmt.Errorf("export lead %s: %w", leadID, translate(err))
	}
	sections := []struct {
		name string
		dest *[]map[string]any
		sql  string
	}{
		{"captures", &out.Captures, byLead("captures", "t.captured_at, t.id")},
		{"consents", &out.Consents, byLead("consents", "t.recorded_at, t.id")},
		{"events", &out.Events, byLead("events", "t.occurred_at, t.id")},
		{"sends", &out.Sends, byLead("sends", "t.created_at, t.step_id")},
		{"send_links", &out.SendLinks, `SELECT coalesce(json_agg(t ORDER BY p.created_at, t.send_id, t.idx), '[]')
			FROM send_links t JOIN sends p ON p.id = t.send_id WHERE p.lead_id = $1`},
		{"stage_changes", &out.StageChanges, byLead("stage_changes", "t.changed_at, t.id")},
		{"handoffs", &out.Handoffs, byLead("handoffs", "t.seq, t.assignment")},
		{"escalations", &out.Escalations, `SELECT coalesce(json_agg(t ORDER BY t.handoff_id, t.lapse), '[]')
			FROM escalations t JOIN handoffs p ON p.id = t.handoff_id WHERE p.lead_id = $1`},
		{"qualifications", &out.Qualifications, byLead("qualifications", "t.created_at, t.id")},
		{"opportunities", &out.Opportunities, byLead("opportunities", "t.opened_at, t.id")},
		{"notices", &out.Notices, byLead("notices", "t.created_at, t.key")},
		{"event_aggregates", &out.EventAggregates, byLead("event_aggregates", "t.day, t.type")},
		{"enrollments", &out.Enrollments, byLead("enrollments", "t.created_at, t.id")},
		{"answer_notes", &out.AnswerNotes, byLead("answer_notes", "t.created_at, t.id")},
		{"held_sends", &out.HeldSends, byLead("held_sends", "t.held_at, t.sequence_id, t.step_id")},
		{"conversions", &out.Conversions, byLead("conversions", "t.at, t.sequence_id")},
	}
	for _, sec := range sections {
		var raw []byte
		if err := tx.QueryRow(ctx, sec.sql, leadID).Scan(&raw); err != nil {
			return out, fmt.Errorf("export %s of lead %s: %w", sec.name, leadID, translate(err))
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(sec.dest); err != nil {
			return out, fmt.Errorf("export %s of lead %s: decode: %w", sec.name, leadID, err)
		}
	}
	reason, ok, err := suppressionReason(ctx, tx, key, out.Lead.Email)
	if err != nil {
		return out, fmt.Errorf("export lead %s: %w", leadID, err)
	}
	if ok {
		out.Suppressed = &reason
	}
	if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&out.ExportedAt); err != nil {
		return out, fmt.Errorf("export lead %s: %w", leadID, translate(err))
	}
	return out, nil
}

// byLead is the query for every row of table that belongs to a lead, as one JSON array.
func byLead(table, order string) string {
	return `SELECT coalesce(json_agg(t ORDER BY ` + order + `), '[]') FROM ` + table + ` t WHERE t.lead_id = $1`
}

// Erase forgets a lead (a GDPR erasure request), in one transaction: it deletes the lead and
// everything that references it, puts the keyed hash of its address on the suppression list
// (reason "erased") so that a later re-import is never mailed, and records an erasure row that
// holds only LeadRef(key, leadID) and reason, which must not name the person. An unknown lead
// gives ErrNotFound.
//
// Every table with a lead_id references leads ON DELETE CASCADE, and send_links and escalations
// cascade through sends and handoffs; the one thing keyed by address instead, a clear
// suppression row, is deleted here. Copies outside Postgres (workflow histories, mail logs) are
// not this function's to reach.
func (s *Store) Erase(ctx context.Context, key []byte, leadID, reason string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if _, err := uuid.Parse(leadID); err != nil {
		return ErrNotFound
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var email string
		// FOR UPDATE waits for a send in progress (it holds the lead FOR SHARE) to finish.
		if err := tx.QueryRow(ctx, `SELECT email FROM leads WHERE id = $1 FOR UPDATE`, leadID).Scan(&email); err != nil {
			return fmt.Errorf("erase lead %s: %w", leadID, translate(err))
		}
		if _, err := tx.Exec(ctx, `DELETE FROM suppressions WHERE email = $1`, email); err != nil {
			return fmt.Errorf("erase lead %s: drop clear suppression: %w", leadID, err)
		}
		// An earlier reason gives way: its detail may describe the person, and "erased" is now
		// the reason that matters.
		if _, err := tx.Exec(ctx, `INSERT INTO suppressions (email_hash, reason, detail) VALUES ($1, $2, '')
			ON CONFLICT (email_hash) DO UPDATE SET reason = EXCLUDED.reason, detail = '', email = NULL, created_at = now()`,
			HashEmail(key, email), SuppressionErased); err != nil {
			return fmt.Errorf("erase lead %s: suppress address: %w", leadID, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM leads WHERE id = $1`, leadID); err != nil {
			return fmt.Errorf("erase lead %s: delete: %w", leadID, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO erasures (lead_ref, reason) VALUES ($1, $2)`,
			LeadRef(key, leadID), truncate(reason, 200)); err != nil {
			return fmt.Errorf("erase lead %s: record erasure: %w", leadID, err)
		}
		return nil
	})
}

// PurgeEvents folds the raw events received before the cutoff into daily aggregates per lead,
// type and tags (event_aggregates) and deletes them, batch by batch, each batch in one statement:
// nothing is lost between the two. Scores computed later count the aggregates as events on their
// day (LeadAggregates), so a purge does not lower a lead's score; only the time of day of old
// events is forgotten. It returns how many raw events were folded.
func (s *Store) PurgeEvents(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.pool.QueryRow(ctx, `WITH gone AS (
			DELETE FROM events WHERE id IN (SELECT id FROM events WHERE received_at < $1 ORDER BY id LIMIT $2)
			RETURNING lead_id, occurred_at, type, tags, machine, duplicate),
		folded AS (
			INSERT INTO event_aggregates (lead_id, day, type, tags, machine, duplicate, count)
			SELECT lead_id, (occurred_at AT TIME ZONE 'UTC')::date, type, tags, machine, duplicate, count(*) FROM gone
			GROUP BY 1, 2, 3, 4, 5, 6
			ON CONFLICT (lead_id, day, type, tags, machine, duplicate)
			DO UPDATE SET count = event_aggregates.count + EXCLUDED.count
			RETURNING 1)
		SELECT count(*) FROM gone`, before, purgeBatch).Scan(&n)
		if err != nil {
			return total, fmt.Errorf("purge events before %s: %w", before.Format(time.RFC3339), translate(err))
		}
		total += n
		if n < purgeBatch {
			return total, nil
		}
	}
}

// Aggregate is a day's count of one kind of a lead's events, kept after the raw events were
// purged.
type Aggregate struct {
	Day       time.Time
	Type      string
	Tags      []string
	Machine   bool
	Duplicate bool
	Count     int
}

// LeadAggregates returns the lead's aggregated old events, oldest first.
func (s *Store) LeadAggregates(ctx context.Context, leadID string) ([]Aggregate, error) {
	rows, err := s.pool.Query(ctx, `SELECT day, type, tags, machine, duplicate, count FROM event_aggregates
		WHERE lead_id = $1 ORDER BY day, type, tags`, leadID)
	if err != nil {
		return nil, translate(err)
	}
	var out []Aggregate
	for rows.Next() {
		var a Aggregate
		if err := rows.Scan(&a.Day, &a.Type, &a.Tags, &a.Machine, &a.Duplicate, &a.Count); err != nil {
			return nil, translate(err)
		}
		out = append(out, a)
	}
	return out, translate(rows.Err())
}
