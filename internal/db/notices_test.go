package db_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
)

// A notice attempt that dies after the SMTP server accepted it (its transaction rolled back)
// leaves the notice's row: the retry sends under the same Message-ID, so the recipient's mail
// system can drop the copy.
func TestClaimNoticeKeepsItsMessageIDWhenTheFirstAttemptDies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	c, err := store.RecordCapture(ctx, db.Capture{Email: "ada@example.com", Source: "api", Segment: "general", Stage: "lead"})
	require.NoError(t, err)
	first, err := store.ClaimNotice(ctx, "handoff:1", c.Lead.ID, "handoff", "rep-x", "acme.test")
	require.NoError(t, err)
	first.Abort(ctx) // the worker died: nothing it did in the claim is committed
	again, err := store.ClaimNotice(ctx, "handoff:1", c.Lead.ID, "handoff", "rep-x", "acme.test")
	require.NoError(t, err)
	defer again.Abort(ctx)
	assert.Equal(t, first.MessageID, again.MessageID)
	assert.Equal(t, "pending", again.Status)
}
