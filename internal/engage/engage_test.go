package engage_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/engage"
	"github.com/tendhq/tend/internal/pgtest"
	"github.com/tendhq/tend/internal/track"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// claimed returns a service over a fresh database and a send that is claimed, with one link
// recorded, but not yet committed: the state between the SMTP server's 250 and MarkSent.
func claimed(t *testing.T) (*engage.Service, *db.Claim, string) {
	t.Helper()
	ctx := context.Background()
	store := dbtest.Store(t)
	keys, err := track.ParseKeys(track.GenerateKey("k1"))
	require.NoError(t, err)

	c, err := store.RecordCapture(ctx, db.Capture{Email: "reader@example.com", Source: "test", Segment: "general", Stage: "lead",
		Consent: &db.Consent{Granted: true, WordingID: "v1"}})
	require.NoError(t, err)
	claim, err := store.ClaimSend(ctx, db.SendKey{LeadID: c.Lead.ID, SequenceID: "general", StepID: "one"}, "welcome", "mail.example.com")
	require.NoError(t, err)
	t.Cleanup(func() { claim.Abort(ctx) })
	require.NoError(t, claim.RecordLinks(ctx, []db.Link{{Index: 0, URL: "https://example.com/guide"}}))
	token := keys.Sign(track.Token{Kind: track.KindClick, SendID: uuid.MustParse(claim.Send.ID), Link: 0})
	return &engage.Service{Store: store, Keys: keys, Heuristics: track.DefaultHeuristics()}, claim, token
}

// A link followed in the moment between the SMTP server accepting the message and tend recording
// the send (as link scanners do on delivery) waits for the record and redirects.
func TestClickWaitsForTheSendBeingRecorded(t *testing.T) {
	svc, claim, token := claimed(t)
	ctx := context.Background()
	type result struct {
		url string
		err error
	}
	done := make(chan result, 1)
	go func() {
		url, err := svc.Click(ctx, engage.Hit{Token: token, Method: "GET", UserAgent: "Mozilla/5.0", At: time.Now()})
		done <- result{url, err}
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("the click was answered before the send was recorded: %q, %v", r.url, r.err)
	default:
	}
	require.NoError(t, claim.MarkSent(ctx, "Welcome", 250))
	select {
	case r := <-done:
		require.NoError(t, r.err)
		assert.Equal(t, "https://example.com/guide", r.url)
	case <-time.After(engage.RecordWait):
		t.Fatal("the click did not finish after the send was recorded")
	}
}

// A validly signed token for a send that never left (its claim rolled back) is an unknown link once
// the wait is over, and records nothing.
func TestClickOnASendThatNeverLeftIsUnknown(t *testing.T) {
	svc, claim, token := claimed(t)
	ctx := context.Background()
	claim.Abort(ctx)
	old := engage.RecordWait
	engage.RecordWait = 200 * time.Millisecond
	t.Cleanup(func() { engage.RecordWait = old })
	_, err := svc.Click(ctx, engage.Hit{Token: token, Method: "GET", UserAgent: "Mozilla/5.0", At: time.Now()})
	require.ErrorIs(t, err, engage.ErrInvalidLink)
	var events int
	require.NoError(t, svc.Store.Pool().QueryRow(ctx, `SELECT count(*) FROM events WHERE type = 'click'`).Scan(&events))
	assert.Zero(t, events)
}

// A forged token is refused at once: only tokens tend signed may wait for a send.
func TestForgedClickIsRefusedWithoutWaiting(t *testing.T) {
	svc, _, token := claimed(t)
	forged := token[:len(token)-2] + "AA"
	if forged == token {
		forged = token[:len(token)-2] + "BB"
	}
	start := time.Now()
	_, err := svc.Click(context.Background(), engage.Hit{Token: forged, Method: "GET", At: time.Now()})
	require.ErrorIs(t, err, engage.ErrInvalidLink)
	assert.Less(t, time.Since(start), engage.RecordWait/2)
}
