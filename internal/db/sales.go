package db

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Handoff is one assignment of a lead to a rep, with its SLA clock.
type Handoff struct {
	ID              int64      `json:"id"`
	LeadID          string     `json:"lead_id"`
	Seq             int        `json:"seq"`
	Assignment      int        `json:"assignment"`
	RepID           string     `json:"rep_id"`
	ManagerID       string     `json:"manager_id"`
	Policy          string     `json:"policy"`
	Reason          string     `json:"reason"`
	HandedOffAt     time.Time  `json:"handed_off_at"`
	DueAt           time.Time  `json:"due_at"`
	AcceptedAt      *time.Time `json:"accepted_at,omitempty"`
	RespondedAt     *time.Time `json:"responded_at,omitempty"`
	ResponseSeconds *float64   `json:"response_seconds,omitempty"`
	Outcome         string     `json:"outcome"`
	Lapses          int        `json:"lapses"`
	RejectReason    string     `json:"reject_reason,omitempty"`
	RejectNote      string     `json:"reject_note,omitempty"`
}

const handoffColumns = `id, lead_id, seq, assignment, rep_id, manager_id, policy, reason, handed_off_at, due_at, accepted_at,
	responded_at, response_seconds, outcome, lapses, reject_reason, reject_note`

// scanHandoff scans handoffColumns, then any further columns into extra.
func scanHandoff(row pgx.Row, extra ...any) (Handoff, error) {
	var h Handoff
	var lead uuid.UUID
	err := row.Scan(append([]any{&h.ID, &lead, &h.Seq, &h.Assignment, &h.RepID, &h.ManagerID, &h.Policy, &h.Reason, &h.HandedOffAt,
		&h.DueAt, &h.AcceptedAt, &h.RespondedAt, &h.ResponseSeconds, &h.Outcome, &h.Lapses, &h.RejectReason, &h.RejectNote}, extra...)...)
	h.LeadID = lead.String()
	return h, err
}

// FindHandoff returns the handoff row of a lead's nth handoff and assignment.
func (s *Store) FindHandoff(ctx context.Context, leadID string, seq, assignment int) (Handoff, error) {
	h, err := scanHandoff(s.pool.QueryRow(ctx, `SELECT `+handoffColumns+` FROM handoffs WHERE lead_id = $1 AND seq = $2 AND assignment = $3`,
		leadID, seq, assignment))
	return h, translate(err)
}

// HandoffByID returns a handoff row.
func (s *Store) HandoffByID(ctx context.Context, id int64) (Handoff, error) {
	h, err := scanHandoff(s.pool.QueryRow(ctx, `SELECT `+handoffColumns+` FROM handoffs WHERE id = $1`, id))
	return h, translate(err)
}

// Handoffs returns every handoff of a lead, oldest first.
func (s *Store) Handoffs(ctx context.Context, leadID string) ([]Handoff, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+handoffColumns+` FROM handoffs WHERE lead_id = $1 ORDER BY seq, assignment`, leadID)
	if err != nil {
		return nil, translate(err)
	}
	out := []Handoff{}
	for rows.Next() {
		h, err := scanHandoff(rows)
		if err != nil {
			return nil, translate(err)
		}
		out = append(out, h)
	}
	return out, translate(rows.Err())
}

// NextCounter advances the round-robin counter of a territory and returns its previous value.
func (s *Store) NextCounter(ctx context.Context, territory string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `INSERT INTO assignment_counters (territory, counter) VALUES ($1, 1)
		ON CONFLICT (territory) DO UPDATE SET counter = assignment_counters.counter + 1 RETURNING counter - 1`, territory).Scan(&n)
	return n, translate(err)
}

// OpenHandoff inserts the handoff row (once: a retry returns the existing row) and closes the
// previous assignment of the same handoff as reassigned.
func (s *Store) OpenHandoff(ctx context.Context, h Handoff) (Handoff, error) {
	var out Handoff
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO handoffs (lead_id, seq, assignment, rep_id, manager_id, policy, reason, handed_off_at, due_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (lead_id, seq, assignment) DO NOTHING`,
			h.LeadID, h.Seq, h.Assignment, h.RepID, h.ManagerID, h.Policy, h.Reason, h.HandedOffAt, h.DueAt); err != nil {
			return err
		}
		if h.Assignment > 1 {
			if _, err := tx.Exec(ctx, `UPDATE handoffs SET outcome = 'reassigned' WHERE lead_id = $1 AND seq = $2 AND assignment < $3
				AND outcome = 'open'`, h.LeadID, h.Seq, h.Assignment); err != nil {
				return err
			}
		}
		var err error
		out, err = scanHandoff(tx.QueryRow(ctx, `SELECT `+handoffColumns+` FROM handoffs WHERE lead_id = $1 AND seq = $2 AND assignment = $3`,
			h.LeadID, h.Seq, h.Assignment))
		return err
	})
	return out, err
}

// RecordLapse records a lapse of a handoff's SLA (once per lapse number) and moves its clock.
func (s *Store) RecordLapse(ctx context.Context, handoffID int64, lapse int, managerID string, overdue time.Duration, nextDue time.Time) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO escalations (handoff_id, lapse, manager_id, overdue_seconds) VALUES ($1, $2, $3, $4)
			ON CONFLICT (handoff_id, lapse) DO NOTHING`, handoffID, lapse, managerID, overdue.Seconds()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE handoffs SET lapses = greatest(lapses, $2), due_at = CASE WHEN lapses < $2 THEN $3 ELSE due_at END
			WHERE id = $1`, handoffID, lapse, nextDue)
		return err
	})
}

// Escalations counts the escalations recorded for a handoff.
func (s *Store) Escalations(ctx context.Context, handoffID int64) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM escalations WHERE handoff_id = $1`, handoffID).Scan(&n)
	return n, translate(err)
}

// Respond records a rep's answer to a handoff and the stage it moves the lead to, with who and
// why, in one transaction. A second call for the same handoff changes nothing.
func (s *Store) Respond(ctx context.Context, handoffID int64, outcome, reason, note, stage, actor, stageReason string, at time.Time,
	check func(from, to string) error) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		h, err := scanHandoff(tx.QueryRow(ctx, `SELECT `+handoffColumns+` FROM handoffs WHERE id = $1 FOR UPDATE`, handoffID))
		if err != nil {
			return err
		}
		if h.RespondedAt != nil {
			return nil
		}
		secs := at.Sub(h.HandedOffAt).Seconds()
		accepted := any(nil)
		if outcome == "accepted" {
			accepted = at
		}
		if _, err := tx.Exec(ctx, `UPDATE handoffs SET outcome = $2, responded_at = $3, response_seconds = $4, accepted_at = $5,
			reject_reason = $6, reject_note = $7 WHERE id = $1`, handoffID, outcome, at, secs, accepted, reason, truncate(note, 1000)); err != nil {
			return err
		}
		return setStage(ctx, tx, h.LeadID, stage, actor, stageReason, check)
	})
}

// SetStage moves a lead to a stage with who and why, if the transition is allowed.
func (s *Store) SetStage(ctx context.Context, leadID, stage, actor, reason string, check func(from, to string) error) error {
	return s.inTx(ctx, func(tx pgx.Tx) error { return setStage(ctx, tx, leadID, stage, actor, reason, check) })
}

// ErrTransition wraps a refused stage change.
var ErrTransition = fmt.Errorf("stage change not allowed")

func setStage(ctx context.Context, tx pgx.Tx, leadID, stage, actor, reason string, check func(from, to string) error) error {
	var from string
	if err := tx.QueryRow(ctx, `SELECT stage FROM leads WHERE id = $1 FOR UPDATE`, leadID).Scan(&from); err != nil {
		return err
	}
	if from == stage {
		return nil
	}
	if check != nil {
		if err := check(from, stage); err != nil {
			return fmt.Errorf("%w: %v", ErrTransition, err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE leads SET stage = $2, updated_at = now() WHERE id = $1`, leadID, stage); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO stage_changes (lead_id, from_stage, to_stage, reason, actor) VALUES ($1, $2, $3, $4, $5)`,
		leadID, from, stage, reason, actor)
	return err
}

// Qualify stores BANT answers and moves the lead to SQL.
func (s *Store) Qualify(ctx context.Context, leadID, rep string, bant [4]string, check func(from, to string) error) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := setStage(ctx, tx, leadID, "sql", rep, "qualified: budget, authority, need, timeframe", check); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO qualifications (lead_id, rep_id, budget, authority, need, timeframe) VALUES ($1, $2, $3, $4, $5, $6)`,
			leadID, rep, bant[0], bant[1], bant[2], bant[3])
		return err
	})
}

// OpenOpportunity opens an opportunity and moves the lead to opportunity.
func (s *Store) OpenOpportunity(ctx context.Context, leadID, rep string, check func(from, to string) error) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := setStage(ctx, tx, leadID, "opportunity", rep, "opportunity opened", check); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO opportunities (lead_id, rep_id) VALUES ($1, $2)`, leadID, rep)
		return err
	})
}

// CloseOpportunity marks the lead's open opportunity won (the lead becomes a customer) or lost
// (the lead is recycled to nurture).
func (s *Store) CloseOpportunity(ctx context.Context, leadID, rep string, won bool, value float64, currency, lostReason string,
	check func(from, to string) error) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		outcome, stage, reason := "lost", "recycled", "opportunity lost: "+lostReason
		if won {
			outcome, stage, reason = "won", "customer", fmt.Sprintf("opportunity won: %.2f %s", value, currency)
		}
		tag, err := tx.Exec(ctx, `UPDATE opportunities SET outcome = $2, closed_at = now(), value = $3, currency = $4, lost_reason = $5
			WHERE lead_id = $1 AND outcome = 'open'`, leadID, outcome, value, currency, lostReason)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: the lead has no open opportunity", ErrTransition)
		}
		return setStage(ctx, tx, leadID, stage, rep, reason, check)
	})
}

// NoticeClaim holds one notice (an email to a person of the sales team) for one SMTP attempt.
type NoticeClaim struct {
	tx        pgx.Tx
	MessageID string
	Status    string
}

// ClaimNotice creates (once) and locks the notice with the key; see ClaimSend.
func (s *Store) ClaimNotice(ctx context.Context, key, leadID, kind, recipient, domain string) (*NoticeClaim, error) {
	// The row (and its Message-ID) is committed before the claim, so an attempt that dies after
	// the SMTP server's 250 leaves it behind and the retry sends under the same Message-ID.
	id := uuid.New()
	if _, err := s.pool.Exec(ctx, `INSERT INTO notices (key, lead_id, kind, recipient, message_id) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (key) DO NOTHING`, key, leadID, kind, recipient, "<"+id.String()+"@"+domain+">"); err != nil {
		return nil, translate(err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, translate(err)
	}
	c := &NoticeClaim{tx: tx}
	if err := tx.QueryRow(ctx, `SELECT message_id, status FROM notices WHERE key = $1 FOR UPDATE NOWAIT`, key).Scan(&c.MessageID, &c.Status); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, translate(err)
	}
	return c, nil
}

// Finish records the attempt's outcome (sent, failed, or pending with an error) and commits.
func (c *NoticeClaim) Finish(ctx context.Context, status, errText string) error {
	_, err := c.tx.Exec(ctx, `UPDATE notices SET status = $2, error = $3, attempts = attempts + 1,
		sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END WHERE message_id = $1`, c.MessageID, status, truncate(errText, 500))
	if err != nil {
		_ = c.tx.Rollback(context.WithoutCancel(ctx))
		return translate(err)
	}
	return translate(c.tx.Commit(ctx))
}

// Abort releases the claim unchanged.
func (c *NoticeClaim) Abort(ctx context.Context) { _ = c.tx.Rollback(context.WithoutCancel(ctx)) }

// NoticesSent counts sent notices of a kind for a lead.
func (s *Store) NoticesSent(ctx context.Context, leadID, kind string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM notices WHERE lead_id = $1 AND kind = $2 AND status = 'sent'`, leadID, kind).Scan(&n)
	return n, translate(err)
}

// DeskItem is one handoff on a person's desk, with what they need to know about its lead.
type DeskItem struct {
	Handoff
	Name, Email, Company, Stage, Band string
	Score                             float64
}

// deskColumns are handoffColumns of the table aliased h.
var deskColumns = func() string {
	cols := strings.Split(handoffColumns, ",")
	for i, c := range cols {
		cols[i] = "h." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}()

// Desk returns the handoffs of the given reps that are open, first (soonest due first), then the
// others handed off since since, newest first; at most limit in all.
func (s *Store) Desk(ctx context.Context, reps []string, since time.Time, limit int) ([]DeskItem, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deskColumns+`, l.name, l.email, l.company, l.stage, l.band, l.score
		FROM handoffs h JOIN leads l ON l.id = h.lead_id
		WHERE h.rep_id = ANY($1) AND (h.outcome = 'open' OR h.handed_off_at >= $2)
		ORDER BY h.outcome <> 'open', CASE WHEN h.outcome = 'open' THEN h.due_at END, h.handed_off_at DESC, h.id DESC
		LIMIT $3`, reps, since, limit)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []DeskItem{}
	for rows.Next() {
		var d DeskItem
		h, err := scanHandoff(rows, &d.Name, &d.Email, &d.Company, &d.Stage, &d.Band, &d.Score)
		if err != nil {
			return nil, translate(err)
		}
		d.Handoff = h
		out = append(out, d)
	}
	return out, translate(rows.Err())
}
