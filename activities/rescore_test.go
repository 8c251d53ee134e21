package activities

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/lifecycle"
	"github.com/tendhq/tend/internal/pgtest"
	"github.com/tendhq/tend/internal/score"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func rescoreSetup(t *testing.T) (*Leads, *db.Store, string) {
	t.Helper()
	store := dbtest.Store(t)
	model, err := score.Load("../examples/scoring.yaml")
	require.NoError(t, err)
	c, err := store.RecordCapture(context.Background(), db.Capture{Email: "ada@example.com", Source: "api", Segment: "general", Stage: "lead"})
	require.NoError(t, err)
	return &Leads{Store: store, Model: model, SalesEnabled: true}, store, c.Lead.ID
}

func addEvents(t *testing.T, store *db.Store, leadID string, types ...string) {
	t.Helper()
	var evs []db.Event
	for _, typ := range types {
		e := db.Event{LeadID: leadID, Type: typ, OccurredAt: time.Now()}
		if typ == "page_view" {
			e.Tags = []string{"pricing"}
		}
		evs = append(evs, e)
	}
	_, err := store.InsertEvents(context.Background(), evs)
	require.NoError(t, err)
}

// A rescore that runs again after its first attempt committed the move to MQL (a retried local
// activity, a restarted workflow) still reports the handoff: it is decided from the stored stage.
func TestRescoreRetriedAfterCommitStillHandsOff(t *testing.T) {
	ctx := context.Background()
	a, store, id := rescoreSetup(t)
	addEvents(t, store, id, "demo_request")
	first, err := a.Rescore(ctx, RescoreInput{LeadID: id})
	require.NoError(t, err)
	require.Equal(t, lifecycle.MQL, first.Stage)
	require.NotNil(t, first.Handoff)
	again, err := a.Rescore(ctx, RescoreInput{LeadID: id})
	require.NoError(t, err)
	assert.Equal(t, lifecycle.MQL, again.Stage)
	require.NotNil(t, again.Handoff, "the retry reports the handoff its first attempt committed")
	assert.Equal(t, "demo_request", again.Handoff.HandRaise)
}

// A lead a rep sent back as not ready is not handed back by its old hand-raise or its old score on
// its next open: it must raise its hand again, or earn the threshold again after the cool-off.
func TestRecycledLeadMustQualifyAnew(t *testing.T) {
	ctx := context.Background()
	a, store, id := rescoreSetup(t)
	a.RecycleCoolOff = time.Hour
	addEvents(t, store, id, "demo_request", "page_view", "page_view", "page_view", "page_view")
	res, err := a.Rescore(ctx, RescoreInput{LeadID: id})
	require.NoError(t, err)
	require.Equal(t, lifecycle.MQL, res.Stage)
	require.NoError(t, store.SetStage(ctx, id, string(lifecycle.Recycled), "rep-jonas", "rejected: not_ready", nil))

	addEvents(t, store, id, "open")
	res, err = a.Rescore(ctx, RescoreInput{LeadID: id})
	require.NoError(t, err)
	assert.Equal(t, lifecycle.Recycled, res.Stage, "an open after the recycle does not hand it back")
	assert.Nil(t, res.Handoff)
	assert.GreaterOrEqual(t, res.Score, 50.0, "its score still shows what it did before")

	// Enough new behaviour, but inside the cool-off: still recycled.
	addEvents(t, store, id, "page_view", "page_view", "page_view", "page_view")
	res, err = a.Rescore(ctx, RescoreInput{LeadID: id})
	require.NoError(t, err)
	assert.Equal(t, lifecycle.Recycled, res.Stage, "the score alone does not count during the cool-off")

	// After the cool-off, the points earned since the recycle qualify it.
	a.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	res, err = a.Rescore(ctx, RescoreInput{LeadID: id})
	require.NoError(t, err)
	assert.Equal(t, lifecycle.MQL, res.Stage)
	require.NotNil(t, res.Handoff)
	assert.Contains(t, res.Handoff.Reason, "since it was recycled")
}

// A new hand-raise after the recycle hands the lead back at once, cool-off or not.
func TestRecycledLeadThatRaisesItsHandIsHandedBack(t *testing.T) {
	ctx := context.Background()
	a, store, id := rescoreSetup(t)
	a.RecycleCoolOff = 30 * 24 * time.Hour
	addEvents(t, store, id, "demo_request")
	_, err := a.Rescore(ctx, RescoreInput{LeadID: id})
	require.NoError(t, err)
	require.NoError(t, store.SetStage(ctx, id, string(lifecycle.Recycled), "rep-jonas", "rejected: not_ready", nil))
	addEvents(t, store, id, "quote_request")
	res, err := a.Rescore(ctx, RescoreInput{LeadID: id})
	require.NoError(t, err)
	assert.Equal(t, lifecycle.MQL, res.Stage)
	require.NotNil(t, res.Handoff)
	assert.Equal(t, "quote_request", res.Handoff.HandRaise)
}
