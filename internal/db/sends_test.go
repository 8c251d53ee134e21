package db_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
)

// A send whose first attempt dies after the SMTP server accepted the message, before its claim
// commits (the worker is killed, or Postgres drops the connection), is retried with the same send
// id and Message-ID: receivers can tell the second copy is the same message, and the links and
// pixel of the copy already delivered name a send that exists. The chaos run (e2e/chaos) found
// retries carrying a new Message-ID, so that leads saw the email twice and the first copy's links
// answered "Link not found".
func TestClaimSendKeepsItsMessageIDWhenTheFirstAttemptDies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	captured, err := store.RecordCapture(ctx, db.Capture{Email: "ada@example.com", Source: "api", Segment: "b2b", Stage: "lead"})
	require.NoError(t, err)
	key := db.SendKey{LeadID: captured.Lead.ID, SequenceID: "welcome", StepID: "d0"}

	first, err := store.ClaimSend(ctx, key, "welcome", "mail.example.com")
	require.NoError(t, err)
	// The SMTP server has accepted the message with first.Send.MessageID; then the attempt dies
	// before MarkSent: its transaction never commits (a dead client's transaction is rolled back).
	first.Abort(ctx)

	retry, err := store.ClaimSend(ctx, key, "welcome", "mail.example.com")
	require.NoError(t, err)
	defer retry.Abort(ctx) // an open claim would keep the store from closing when an assertion fails
	require.Equal(t, first.Send.ID, retry.Send.ID, "the retry is the same send")
	require.Equal(t, first.Send.MessageID, retry.Send.MessageID, "the retry carries the Message-ID already delivered")
	require.Equal(t, "pending", retry.Send.Status)
	require.NoError(t, retry.MarkSent(ctx, "Welcome", 250))

	again, err := store.ClaimSend(ctx, key, "welcome", "mail.example.com")
	require.NoError(t, err)
	defer again.Abort(ctx)
	require.Equal(t, "sent", again.Send.Status, "a later attempt finds it sent and mails nothing")
	require.Equal(t, first.Send.MessageID, again.Send.MessageID)

	// A lead that does not exist still gets ErrNotFound, and no row.
	_, err = store.ClaimSend(ctx, db.SendKey{LeadID: "00000000-0000-4000-8000-000000000000", SequenceID: "welcome", StepID: "d0"}, "welcome", "mail.example.com")
	require.ErrorIs(t, err, db.ErrNotFound)
}
