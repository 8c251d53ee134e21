package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
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

// StageChangeClaim is a stage change held for delivery to the CRM: while it is held no other
// deliverer can claim it, nor any later change of the same lead. End it with Delivered, Failed
// or Release.
type StageChangeClaim struct {
	Event StageChangeEvent
	// Attempts is how many earlier attempts failed.
	Attempts int
	tx       pgx.Tx
}

// ClaimStageChange claims the oldest stage change that is due for delivery to the CRM and whose
// lead has no earlier change undelivered, so a lead's changes go out in the order they happened.
// Rows another deliverer holds are skipped, and so are the ids in skip (those that failed earlier
// in the same pass). It returns ErrNotFound when nothing is due.
//
// The claim is a row lock in an open transaction: a deliverer that dies mid-post loses it with
// its connection, and the change is delivered again.
func (s *Store) ClaimStageChange(ctx context.Context, skip []int64) (*StageChangeClaim, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("claim a stage change: %w", translate(err))
	}
	if skip == nil {
		skip = []int64{}
	}
	rows, err := tx.Query(ctx, `SELECT c.id, c.lead_id, l.email, c.from_stage, c.to_stage, c.reason, c.actor, c.changed_at, d.attempts
		FROM crm_deliveries d
		JOIN stage_changes c ON c.id = d.stage_change_id
		JOIN leads l ON l.id = c.lead_id
		WHERE d.state <> 'delivered' AND d.next_attempt_at <= now() AND NOT d.stage_change_id = ANY($1)
		  AND NOT EXISTS (SELECT 1 FROM stage_changes pc JOIN crm_deliveries pd ON pd.stage_change_id = pc.id
		                  WHERE pc.lead_id = c.lead_id AND pc.id < c.id AND pd.state <> 'delivered')
		ORDER BY d.stage_change_id
		LIMIT 1
		FOR UPDATE OF d SKIP LOCKED`, skip)
	var r claimedRow
	if err == nil {
		r, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[claimedRow])
	}
	if err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		if err = translate(err); errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("claim a stage change: %w", err)
	}
	return &StageChangeClaim{tx: tx, Attempts: r.Attempts, Event: StageChangeEvent{ID: r.ID, LeadID: r.LeadID.String(),
		Email: r.Email, From: r.FromStage, To: r.ToStage, Reason: r.Reason, Actor: r.Actor, ChangedAt: r.ChangedAt}}, nil
}

// claimedRow is the row ClaimStageChange reads.
type claimedRow struct {
	ID        int64     `db:"id"`
	LeadID    uuid.UUID `db:"lead_id"`
	Email     string    `db:"email"`
	FromStage string    `db:"from_stage"`
	ToStage   string    `db:"to_stage"`
	Reason    string    `db:"reason"`
	Actor     string    `db:"actor"`
	ChangedAt time.Time `db:"changed_at"`
	Attempts  int       `db:"attempts"`
}

// Delivered records that the CRM took the change, and ends the claim.
func (c *StageChangeClaim) Delivered(ctx context.Context) error {
	if _, err := c.tx.Exec(ctx, `UPDATE crm_deliveries SET state = 'delivered', attempts = attempts + 1,
		delivered_at = clock_timestamp(), last_error = '' WHERE stage_change_id = $1`, c.Event.ID); err != nil {
		c.Release(ctx)
		return fmt.Errorf("record delivery of stage change %d: %w", c.Event.ID, translate(err))
	}
	if err := c.tx.Commit(ctx); err != nil {
		return fmt.Errorf("record delivery of stage change %d: %w", c.Event.ID, translate(err))
	}
	return nil
}

// Failed records a failed attempt and why, to be tried again retryIn from now (the clock, not the
// claim's transaction start: a post can take seconds), and ends the claim. The lead's later
// changes wait for it.
func (c *StageChangeClaim) Failed(ctx context.Context, retryIn time.Duration, reason string) error {
	if _, err := c.tx.Exec(ctx, `UPDATE crm_deliveries SET state = 'failed', attempts = attempts + 1,
		next_attempt_at = clock_timestamp() + $2 * interval '1 microsecond', last_error = $3 WHERE stage_change_id = $1`,
		c.Event.ID, retryIn.Microseconds(), reason); err != nil {
		c.Release(ctx)
		return fmt.Errorf("record failed delivery of stage change %d: %w", c.Event.ID, translate(err))
	}
	if err := c.tx.Commit(ctx); err != nil {
		return fmt.Errorf("record failed delivery of stage change %d: %w", c.Event.ID, translate(err))
	}
	return nil
}

// Release ends the claim and records nothing: the change is due again at once. It is a no-op
// after Delivered or Failed.
func (c *StageChangeClaim) Release(ctx context.Context) {
	_ = c.tx.Rollback(context.WithoutCancel(ctx))
}
