package db_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
)

// A rollout reads the leads of the changed segments page by page: every such lead exactly once,
// in id order, none of another segment, and no unsubscribed lead (no version mails them). With
// All (the re-engagement series changed) every subscribed lead is read.
func TestRolloutCandidatesPageThroughTheChangedSegments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	var analytics, all []string
	for i := range 7 {
		seg := "analytics"
		if i%3 == 2 {
			seg = "automation"
		}
		c, err := store.RecordCapture(ctx, db.Capture{Email: fmt.Sprintf("lead%d@example.com", i), Source: "api",
			Segment: seg, Stage: "lead", Interests: []string{seg}, Attributes: map[string]string{"industry": "retail"}})
		require.NoError(t, err)
		if seg == "analytics" {
			analytics = append(analytics, c.Lead.ID)
		}
		all = append(all, c.Lead.ID)
	}
	gone, err := store.RecordCapture(ctx, db.Capture{Email: "gone@example.com", Source: "api", Segment: "analytics", Stage: "lead"})
	require.NoError(t, err)
	_, err = store.Unsubscribe(ctx, gone.Lead.ID, "", "link")
	require.NoError(t, err)
	slices.Sort(analytics)
	slices.Sort(all)

	read := func(f db.CandidateFilter) []string {
		var ids []string
		after := ""
		for range 10 {
			page, err := store.RolloutCandidates(ctx, f, after, 2)
			require.NoError(t, err)
			require.LessOrEqual(t, len(page), 2)
			for _, c := range page {
				ids = append(ids, c.ID)
			}
			if len(page) < 2 {
				return ids
			}
			after = page[len(page)-1].ID
		}
		t.Fatal("paging did not end")
		return nil
	}
	assert.Equal(t, analytics, read(db.CandidateFilter{Segments: []string{"analytics"}}))
	assert.Equal(t, all, read(db.CandidateFilter{All: true}))
	assert.Empty(t, read(db.CandidateFilter{Segments: []string{"nobody"}}))
	// A lead moved to automation that is still running the analytics series (it was sent a step
	// of it) is told of an analytics change too.
	moved := all[slices.IndexFunc(all, func(id string) bool { return !slices.Contains(analytics, id) })]
	_, err = store.Pool().Exec(ctx, `INSERT INTO sends (id, lead_id, sequence_id, step_id, template, message_id, status)
		VALUES (gen_random_uuid(), $1, 'analytics-series', 'intro', 'analytics-1', 'm-moved', 'sent')`, moved)
	require.NoError(t, err)
	withMoved := slices.Sorted(slices.Values(append(slices.Clone(analytics), moved)))
	assert.Equal(t, withMoved, read(db.CandidateFilter{Segments: []string{"analytics"}, Sequences: []string{"analytics-series"}}))
	assert.Equal(t, analytics, read(db.CandidateFilter{Segments: []string{"analytics"}, Sequences: []string{"other-series"}}))

	n, err := store.CountRolloutCandidates(ctx, db.CandidateFilter{Segments: []string{"analytics", "automation"}})
	require.NoError(t, err)
	assert.Equal(t, len(all), n)

	page, err := store.RolloutCandidates(ctx, db.CandidateFilter{Segments: []string{"analytics"}}, "", 1)
	require.NoError(t, err)
	require.Len(t, page, 1)
	assert.Equal(t, db.RolloutCandidate{ID: analytics[0], Segment: "analytics", Stage: "lead", Band: "cold",
		Interests: []string{"analytics"}, Attributes: map[string]string{"industry": "retail"}}, page[0])

	_, err = store.RolloutCandidates(ctx, db.CandidateFilter{All: true}, "lead@example.com", 10)
	assert.ErrorContains(t, err, "not a lead id")
}

// A resume reads the held sends of its sequence (or step) in the order they fell due, pages by
// a cursor, sees only sends held up to its start, and releases exactly those.
func TestHeldSendsInTheOrderTheyFellDue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	base := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var leads []string
	for i := range 4 {
		c, err := store.RecordCapture(ctx, db.Capture{Email: fmt.Sprintf("held%d@example.com", i), Source: "api", Segment: "analytics", Stage: "lead"})
		require.NoError(t, err)
		leads = append(leads, c.Lead.ID)
	}
	hold := func(lead, seq, step string, at time.Time) {
		_, err := store.Pool().Exec(ctx, `INSERT INTO held_sends (lead_id, sequence_id, step_id, held_at) VALUES ($1, $2, $3, $4)`,
			lead, seq, step, at)
		require.NoError(t, err)
	}
	// Held in the order 2, 0, 3 at deep-dive, 1 at case-study; one of another sequence; one held
	// in the future (after the resume's start).
	hold(leads[2], "analytics-series", "deep-dive", base)
	hold(leads[0], "analytics-series", "deep-dive", base.Add(time.Minute))
	hold(leads[3], "analytics-series", "deep-dive", base.Add(2*time.Minute))
	hold(leads[1], "analytics-series", "case-study", base.Add(90*time.Second))
	hold(leads[1], "automation-series", "deep-dive", base)
	hold(leads[1], "analytics-series", "wrap-up", time.Now().Add(time.Hour))

	at, n, err := store.CountHeldSends(ctx, "analytics-series", "deep-dive")
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.WithinDuration(t, time.Now(), at, time.Minute, "the count is taken at the database's clock")
	_, n, err = store.CountHeldSends(ctx, "analytics-series", "")
	require.NoError(t, err)
	assert.Equal(t, 4, n, "every step of the sequence, none held after now")

	var got []string
	var cur db.HeldCursor
	for range 10 {
		page, err := store.HeldSends(ctx, "analytics-series", "", at, cur, 2)
		require.NoError(t, err)
		for _, h := range page {
			got = append(got, h.LeadID+"/"+h.StepID)
		}
		if len(page) < 2 {
			break
		}
		last := page[len(page)-1]
		cur = db.HeldCursor{HeldAt: last.HeldAt, LeadID: last.LeadID, StepID: last.StepID}
	}
	assert.Equal(t, []string{leads[2] + "/deep-dive", leads[0] + "/deep-dive", leads[1] + "/case-study", leads[3] + "/deep-dive"}, got)

	released, err := store.ReleaseHeldSends(ctx, "analytics-series", "deep-dive", at)
	require.NoError(t, err)
	assert.EqualValues(t, 3, released)
	var left int
	require.NoError(t, store.Pool().QueryRow(ctx, `SELECT count(*) FROM held_sends`).Scan(&left))
	assert.Equal(t, 3, left, "the other step, the other sequence and the later hold stay held")
}
