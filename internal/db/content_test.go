package db_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
)

// Each kind is numbered on its own, the newest version is the published one, a listing leaves the
// files out, and the checksum is the same for the same text wherever it came from.
func TestContentVersionsAreNumberedPerKind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)

	_, err := store.LatestContent(ctx, "sequences")
	require.ErrorIs(t, err, db.ErrNotFound)

	v1, err := store.InsertContentVersion(ctx, db.NewContentVersion{Kind: "sequences", Files: map[string]string{"s.yaml": "one"}, AppliedBy: "ci"})
	require.NoError(t, err)
	require.Equal(t, 1, v1.Version)
	require.Equal(t, db.ContentChecksum(map[string]string{"s.yaml": "one"}), v1.Checksum)
	sc, err := store.InsertContentVersion(ctx, db.NewContentVersion{Kind: "scoring", Files: map[string]string{"m.yaml": "m"}, AppliedBy: "ci"})
	require.NoError(t, err)
	require.Equal(t, 1, sc.Version, "scoring counts on its own")
	v2, err := store.InsertContentVersion(ctx, db.NewContentVersion{Kind: "sequences", Files: map[string]string{"s.yaml": "two"}, AppliedBy: "marketing", Pinned: true})
	require.NoError(t, err)
	require.Equal(t, 2, v2.Version)
	v3, err := store.InsertContentVersion(ctx, db.NewContentVersion{Kind: "sequences", Files: v1.Files, AppliedBy: "ops", RollbackOf: 1})
	require.NoError(t, err)
	require.Equal(t, 3, v3.Version)
	require.Equal(t, v1.Checksum, v3.Checksum, "a rollback republishes the same text")
	require.NotNil(t, v3.RollbackOf)
	require.Equal(t, 1, *v3.RollbackOf)

	latest, err := store.LatestContent(ctx, "sequences")
	require.NoError(t, err)
	require.Equal(t, 3, latest.Version)
	require.Equal(t, map[string]string{"s.yaml": "one"}, latest.Files)
	require.Equal(t, "ops", latest.AppliedBy)

	old, err := store.ContentVersion(ctx, "sequences", 2)
	require.NoError(t, err)
	require.True(t, old.Pinned)
	require.Equal(t, "two", old.Files["s.yaml"])
	_, err = store.ContentVersion(ctx, "sequences", 9)
	require.ErrorIs(t, err, db.ErrNotFound)

	list, err := store.ContentVersions(ctx, "sequences")
	require.NoError(t, err)
	require.Len(t, list, 3)
	require.Equal(t, []int{3, 2, 1}, []int{list[0].Version, list[1].Version, list[2].Version}, "newest first")
	require.Nil(t, list[0].Files, "a listing carries no files")
	all, err := store.ContentVersions(ctx, "")
	require.NoError(t, err)
	require.Len(t, all, 4)

	latestAll, err := store.LatestContentVersions(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"sequences": 3, "scoring": 1}, latestAll)
}

// Publishes racing each other each get a number of their own, and two processes seeding the same
// kind at once insert one version 1 between them.
func TestConcurrentPublishesAndSeedsNeverCollide(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)

	var wg sync.WaitGroup
	seeded := make(chan bool, 8)
	for range 8 {
		wg.Go(func() {
			ok, err := store.SeedContentVersion(ctx, db.NewContentVersion{Kind: "sales", Files: map[string]string{"t.yaml": "team"}, AppliedBy: "seed"})
			require.NoError(t, err)
			seeded <- ok
		})
	}
	wg.Wait()
	close(seeded)
	n := 0
	for ok := range seeded {
		if ok {
			n++
		}
	}
	require.Equal(t, 1, n, "exactly one seed inserts")
	list, err := store.ContentVersions(ctx, "sales")
	require.NoError(t, err)
	require.Len(t, list, 1)

	for range 10 {
		wg.Go(func() {
			_, err := store.InsertContentVersions(ctx, []db.NewContentVersion{
				{Kind: "templates", Files: map[string]string{}, AppliedBy: "a"},
				{Kind: "sales", Files: map[string]string{"t.yaml": "x"}, AppliedBy: "a"},
			}, nil)
			require.NoError(t, err)
		})
	}
	wg.Wait()
	latest, err := store.LatestContentVersions(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"sales": 11, "templates": 10}, latest)

	// A publish checked against versions another one has moved past publishes nothing.
	_, err = store.InsertContentVersions(ctx, []db.NewContentVersion{{Kind: "templates", Files: map[string]string{}, AppliedBy: "late"}},
		map[string]int{"sales": 10, "templates": 10})
	require.ErrorIs(t, err, db.ErrContentChanged)
	_, err = store.InsertContentVersions(ctx, []db.NewContentVersion{{Kind: "templates", Files: map[string]string{}, AppliedBy: "on-time"}},
		map[string]int{"sales": 11, "templates": 10, "scoring": 0})
	require.NoError(t, err)
	latest, err = store.LatestContentVersions(ctx)
	require.NoError(t, err)
	require.Equal(t, 11, latest["templates"])
}

// A paused sequence holds every step; a paused step only itself. Resuming the sequence leaves a
// paused step paused; held sends come back in the order they fell due.
func TestPausesAndHeldSends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)

	paused, err := store.Paused(ctx, "welcome", "d1")
	require.NoError(t, err)
	require.False(t, paused)

	first, err := store.PauseSequence(ctx, "welcome", "", "marketing")
	require.NoError(t, err)
	require.True(t, first)
	again, err := store.PauseSequence(ctx, "welcome", "", "someone-else")
	require.NoError(t, err)
	require.False(t, again, "already paused")
	_, err = store.PauseSequence(ctx, "welcome", "d3", "marketing")
	require.NoError(t, err)
	for _, step := range []string{"d1", "d3"} {
		paused, err = store.Paused(ctx, "welcome", step)
		require.NoError(t, err)
		require.True(t, paused, step)
	}
	paused, err = store.Paused(ctx, "other", "d1")
	require.NoError(t, err)
	require.False(t, paused, "another sequence is not paused")
	pauses, err := store.Pauses(ctx)
	require.NoError(t, err)
	require.Len(t, pauses, 2)
	require.Equal(t, "marketing", pauses[0].PausedBy, "the first pause keeps its author")

	was, err := store.ResumeSequence(ctx, "welcome", "")
	require.NoError(t, err)
	require.True(t, was)
	was, err = store.ResumeSequence(ctx, "welcome", "")
	require.NoError(t, err)
	require.False(t, was, "not paused any more")
	paused, err = store.Paused(ctx, "welcome", "d1")
	require.NoError(t, err)
	require.False(t, paused)
	paused, err = store.Paused(ctx, "welcome", "d3")
	require.NoError(t, err)
	require.True(t, paused, "the step's own pause stays")

	var leads []string
	for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		c, err := store.RecordCapture(ctx, db.Capture{Email: email, Source: "api", Segment: "b2b", Stage: "lead"})
		require.NoError(t, err)
		leads = append(leads, c.Lead.ID)
	}
	require.NoError(t, store.HoldSend(ctx, leads[2], "welcome", "d3"))
	require.NoError(t, store.HoldSend(ctx, leads[0], "welcome", "d3"))
	require.NoError(t, store.HoldSend(ctx, leads[1], "welcome", "d1"))
	require.NoError(t, store.HoldSend(ctx, leads[2], "welcome", "d3"), "holding again is harmless")
	require.ErrorIs(t, store.HoldSend(ctx, "00000000-0000-4000-8000-000000000000", "welcome", "d3"), db.ErrNotFound)

	d3, err := store.ListHeldSends(ctx, "welcome", "d3")
	require.NoError(t, err)
	require.Equal(t, []string{leads[2], leads[0]}, []string{d3[0].LeadID, d3[1].LeadID}, "in the order they fell due")
	all, err := store.ListHeldSends(ctx, "welcome", "")
	require.NoError(t, err)
	require.Len(t, all, 3)

	released, err := store.ReleaseHeld(ctx, leads[2], "welcome", "d3")
	require.NoError(t, err)
	require.True(t, released)
	released, err = store.ReleaseHeld(ctx, leads[2], "welcome", "d3")
	require.NoError(t, err)
	require.False(t, released)
	d3, err = store.ListHeldSends(ctx, "welcome", "d3")
	require.NoError(t, err)
	require.Len(t, d3, 1)
	require.Equal(t, leads[0], d3[0].LeadID)
}

// A conversion counts once per lead and sequence, whatever retries record it again.
func TestConversionCountsOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	c, err := store.RecordCapture(ctx, db.Capture{Email: "a@example.com", Source: "api", Segment: "b2b", Stage: "lead"})
	require.NoError(t, err)

	isNew, err := store.RecordConversion(ctx, c.Lead.ID, "welcome", "demo_request", 0, false)
	require.NoError(t, err)
	require.True(t, isNew)
	isNew, err = store.RecordConversion(ctx, c.Lead.ID, "welcome", "demo_request", 0, false)
	require.NoError(t, err)
	require.False(t, isNew, "a retry does not count twice")
	isNew, err = store.RecordConversion(ctx, c.Lead.ID, "other", "stage:mql", 0, true)
	require.NoError(t, err)
	require.True(t, isNew, "another sequence counts on its own")
	_, err = store.RecordConversion(ctx, "00000000-0000-4000-8000-000000000000", "welcome", "x", 0, false)
	require.ErrorIs(t, err, db.ErrNotFound)

	var heldOut bool
	require.NoError(t, store.Pool().QueryRow(ctx, `SELECT held_out FROM conversions WHERE lead_id = $1 AND sequence_id = 'other'`, c.Lead.ID).Scan(&heldOut))
	require.True(t, heldOut)
}
