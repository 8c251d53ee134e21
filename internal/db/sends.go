package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Send statuses.
const (
	SendPending    = "pending"
	SendSent       = "sent"
	SendFailed     = "failed"
	SendSuppressed = "suppressed"
)

// SendKey identifies a send: exactly one email per (lead, sequence, step).
type SendKey struct {
	LeadID     string
	SequenceID string
	StepID     string
}

// Send is one row of the sends table.
type Send struct {
	ID         string     `json:"id"`
	SequenceID string     `json:"sequence_id"`
	StepID     string     `json:"step_id"`
	Template   string     `json:"template"`
	MessageID  string     `json:"message_id"`
	Status     string     `json:"status"`
	Subject    string     `json:"subject"`
	Attempts   int        `json:"attempts"`
	SMTPCode   int        `json:"smtp_code,omitempty"`
	Error      string     `json:"error,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	SentAt     *time.Time `json:"sent_at,omitempty"`
	// Variant is the A/B variant of the step the send carried ("" for a step without variants).
	Variant string `json:"variant,omitempty"`
}

// Claim is an exclusive hold on one send row for the duration of one SMTP attempt. It holds a
// transaction with the row locked; exactly one of its Mark methods must be called, or Abort.
type Claim struct {
	tx pgx.Tx
	// Send is the row as it was when claimed.
	Send Send
	// Lead is the recipient.
	Lead Lead
	// SuppressedReason is non-empty when the lead's address is on the suppression list.
	SuppressedReason string
	// ConsentRefused is true when the lead's latest consent record refuses marketing email;
	// ConsentGranted when it grants it (both false: no consent recorded).
	ConsentRefused bool
	ConsentGranted bool
	key            []byte
}

const sendColumns = `id, sequence_id, step_id, template, message_id, status, subject, attempts, smtp_code, error, created_at, sent_at, variant`

func scanSend(row pgx.Row) (Send, error) {
	var s Send
	var id uuid.UUID
	err := row.Scan(&id, &s.SequenceID, &s.StepID, &s.Template, &s.MessageID, &s.Status, &s.Subject, &s.Attempts,
		&s.SMTPCode, &s.Error, &s.CreatedAt, &s.SentAt, &s.Variant)
	s.ID = id.String()
	return s, err
}

// ClaimSend creates the send row for key if it does not exist yet and locks it. The Message-ID is
// fixed when the row is created (<send-id@domain>, committed before any attempt) and never
// changes, so every attempt of the same send carries the same Message-ID, even one after an
// attempt that died mid-send. If another attempt holds the row, ClaimSend fails with ErrBusy
// at once rather than waiting. A lead that does not exist gives ErrNotFound.
func (s *Store) ClaimSend(ctx context.Context, key SendKey, template, messageIDDomain string) (*Claim, error) {
	if _, err := uuid.Parse(key.LeadID); err != nil {
		return nil, ErrNotFound
	}
	// The row, and with it the send id and Message-ID, is committed on its own before the claim's
	// transaction begins. Were it created inside that transaction, an attempt that dies after the
	// SMTP server's 250 and before its commit (a killed worker, a dropped connection) would take
	// the row with it: the retry would mail the message again under a new Message-ID, which no
	// receiver can recognise as a repeat, and the links of the copy delivered would name a send
	// that never existed.
	id := uuid.New()
	if _, err := s.pool.Exec(ctx, `INSERT INTO sends (id, lead_id, sequence_id, step_id, template, message_id)
		SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM leads WHERE id = $2)
		ON CONFLICT (lead_id, sequence_id, step_id) DO NOTHING`,
		id, key.LeadID, key.SequenceID, key.StepID, template, "<"+id.String()+"@"+messageIDDomain+">"); err != nil {
		return nil, fmt.Errorf("create send: %w", translate(err))
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, translate(err)
	}
	c := &Claim{tx: tx}
	fail := func(what string, err error) (*Claim, error) {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("%s: %w", what, translate(err))
	}
	// FOR SHARE: an unsubscribe (an UPDATE of this row) waits until this send has finished, and a
	// send that starts after an unsubscribe committed sees it.
	c.Lead, err = scanLead(tx.QueryRow(ctx, `SELECT `+leadColumns+` FROM leads WHERE id = $1 FOR SHARE`, key.LeadID))
	if err != nil {
		return fail("load lead", err)
	}
	c.Send, err = scanSend(tx.QueryRow(ctx, `SELECT `+sendColumns+` FROM sends
		WHERE lead_id = $1 AND sequence_id = $2 AND step_id = $3 FOR UPDATE NOWAIT`, key.LeadID, key.SequenceID, key.StepID))
	if err != nil {
		return fail("lock send", err)
	}
	if len(s.suppressionKey) == 0 {
		return fail("check suppression list", errors.New("no suppression key set"))
	}
	c.key = s.suppressionKey
	if c.SuppressedReason, _, err = suppressionReason(ctx, tx, s.suppressionKey, c.Lead.Email); err != nil {
		return fail("check suppression list", err)
	}
	var granted bool
	err = tx.QueryRow(ctx, `SELECT granted FROM consents WHERE lead_id = $1 AND purpose = 'marketing'
		ORDER BY recorded_at DESC, id DESC LIMIT 1`, key.LeadID).Scan(&granted)
	if err != nil && err != pgx.ErrNoRows {
		return fail("check consent", err)
	}
	c.ConsentRefused = err == nil && !granted
	c.ConsentGranted = err == nil && granted
	return c, nil
}

// MarkSent records that the SMTP server accepted the message and commits.
func (c *Claim) MarkSent(ctx context.Context, subject string, smtpCode int) error {
	_, err := c.tx.Exec(ctx, `UPDATE sends SET status = 'sent', subject = $2, smtp_code = $3, attempts = attempts + 1,
		error = '', sent_at = now() WHERE id = $1`, c.Send.ID, subject, smtpCode)
	return c.finish(ctx, "mark sent", err)
}

// MarkRetry records a temporary failure; the send stays pending for the next attempt.
func (c *Claim) MarkRetry(ctx context.Context, smtpCode int, reason string) error {
	_, err := c.tx.Exec(ctx, `UPDATE sends SET attempts = attempts + 1, smtp_code = $2, error = $3 WHERE id = $1`,
		c.Send.ID, smtpCode, truncate(reason, 1000))
	return c.finish(ctx, "mark retry", err)
}

// MarkFailed records a permanent failure. When suppress is set the address joins the suppression
// list with the given reason, in the same transaction.
func (c *Claim) MarkFailed(ctx context.Context, smtpCode int, smtpStatus, reason string, suppress bool) error {
	_, err := c.tx.Exec(ctx, `UPDATE sends SET status = 'failed', attempts = attempts + 1, smtp_code = $2,
		smtp_status = $3, error = $4 WHERE id = $1`, c.Send.ID, smtpCode, smtpStatus, truncate(reason, 1000))
	if err == nil && suppress {
		_, err = c.tx.Exec(ctx, `INSERT INTO suppressions (email_hash, reason, detail) VALUES ($1, 'hard_bounce', $2)
			ON CONFLICT (email_hash) DO NOTHING`, HashEmail(c.key, c.Lead.Email), truncate(scrubAddress(reason, c.Lead.Email), 500))
	}
	return c.finish(ctx, "mark failed", err)
}

// MarkSuppressed records that the send was not attempted because the lead may not be mailed.
func (c *Claim) MarkSuppressed(ctx context.Context, reason string) error {
	_, err := c.tx.Exec(ctx, `UPDATE sends SET status = 'suppressed', error = $2 WHERE id = $1`, c.Send.ID, reason)
	return c.finish(ctx, "mark suppressed", err)
}

// Abort releases the claim without changing the row.
func (c *Claim) Abort(ctx context.Context) {
	_ = c.tx.Rollback(context.WithoutCancel(ctx))
}

func (c *Claim) finish(ctx context.Context, what string, err error) error {
	if err != nil {
		c.Abort(ctx)
		return fmt.Errorf("%s: %w", what, translate(err))
	}
	if err := c.tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s: commit: %w", what, translate(err))
	}
	return nil
}

// Sends returns the lead's sends, oldest first.
func (s *Store) Sends(ctx context.Context, leadID string) ([]Send, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+sendColumns+` FROM sends WHERE lead_id = $1 ORDER BY created_at, step_id`, leadID)
	if err != nil {
		return nil, translate(err)
	}
	out := []Send{}
	for rows.Next() {
		sd, err := scanSend(rows)
		if err != nil {
			return nil, translate(err)
		}
		out = append(out, sd)
	}
	return out, translate(rows.Err())
}

// Suppress adds an address to the suppression list, by its keyed hash; a second call for the same
// address keeps the first reason.
func (s *Store) Suppress(ctx context.Context, email, reason, detail string) error {
	return s.SuppressHashed(ctx, s.suppressionKey, email, reason, detail)
}

// Suppressed tells whether the address is on the suppression list, and why.
func (s *Store) Suppressed(ctx context.Context, email string) (string, bool, error) {
	return s.IsSuppressed(ctx, s.suppressionKey, email)
}
