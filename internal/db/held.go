package db

import (
	"context"
	"fmt"
)

// SendHeldOut is the status of a holdout lead's step: recorded, never mailed.
const SendHeldOut = "held_out"

// SetVariant records, under the claim, which variant of the step the send carries and the
// sequences version it is sent under.
func (c *Claim) SetVariant(ctx context.Context, variant string, contentVersion int) error {
	if _, err := c.tx.Exec(ctx, `UPDATE sends SET variant = $2, content_version = $3 WHERE id = $1`,
		c.Send.ID, variant, contentVersion); err != nil {
		c.Abort(ctx)
		return fmt.Errorf("record variant: %w", translate(err))
	}
	return nil
}

// MarkHeldOut records that the lead is in the sequence's holdout group: the step counts as done
// and nothing is mailed.
func (c *Claim) MarkHeldOut(ctx context.Context) error {
	_, err := c.tx.Exec(ctx, `UPDATE sends SET status = 'held_out' WHERE id = $1`, c.Send.ID)
	return c.finish(ctx, "mark held out", err)
}

// SendPaused reports whether the sequence, or its step, is paused.
func (s *Store) SendPaused(ctx context.Context, sequenceID, stepID string) (bool, error) {
	var paused bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sequence_pauses
		WHERE sequence_id = $1 AND step_id IN ('', $2))`, sequenceID, stepID).Scan(&paused)
	if err != nil {
		return false, fmt.Errorf("check pause of %s/%s: %w", sequenceID, stepID, translate(err))
	}
	return paused, nil
}

// HoldSend records that the lead's send of the step waits for a resume; holding twice keeps the
// first time, so a resume ramps leads in the order their sends fell due.
func (s *Store) HoldSend(ctx context.Context, leadID, sequenceID, stepID string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO held_sends (lead_id, sequence_id, step_id) SELECT $1, $2, $3
		WHERE EXISTS (SELECT 1 FROM leads WHERE id = $1) ON CONFLICT DO NOTHING`, leadID, sequenceID, stepID)
	if err != nil {
		return fmt.Errorf("hold send %s/%s of lead %s: %w", sequenceID, stepID, leadID, translate(err))
	}
	return nil
}

// ReleaseHeld forgets the lead's held send of the step: it was resumed.
func (s *Store) ReleaseHeld(ctx context.Context, leadID, sequenceID, stepID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM held_sends WHERE lead_id = $1 AND sequence_id = $2 AND step_id = $3`,
		leadID, sequenceID, stepID)
	if err != nil {
		return fmt.Errorf("release held send %s/%s of lead %s: %w", sequenceID, stepID, leadID, translate(err))
	}
	return nil
}

// RecordConversion records that the lead reached the sequence's goal; only the first time per
// sequence counts (new is false for a repeat).
func (s *Store) RecordConversion(ctx context.Context, leadID, sequenceID, goal string, eventID int64, heldOut bool) (bool, error) {
	var ev *int64
	if eventID != 0 {
		ev = &eventID
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO conversions (lead_id, sequence_id, goal, event_id, held_out) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (lead_id, sequence_id) DO NOTHING`, leadID, sequenceID, goal, ev, heldOut)
	if err != nil {
		return false, fmt.Errorf("record conversion of lead %s in %s: %w", leadID, sequenceID, translate(err))
	}
	return tag.RowsAffected() == 1, nil
}
