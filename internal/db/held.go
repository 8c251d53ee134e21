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
