package db_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
)

// Concurrent captures of one new address make one lead that holds every capture's interests, and
// each re-capture sees the lead as the captures before it left it.
func TestConcurrentCapturesOfOneAddress(t *testing.T) {
	t.Parallel()
	store := dbtest.Store(t)
	ctx := context.Background()
	const n = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
		seen    [][]string // the stored interests each re-capture was shown
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := db.Capture{Email: "race@example.com", Source: "api", Segment: "general", Stage: "lead",
				Interests: []string{fmt.Sprintf("topic-%d", i)},
				Resegment: func(stored db.Lead) string {
					mu.Lock()
					seen = append(seen, stored.Interests)
					mu.Unlock()
					return stored.Segment
				}}
			got, err := store.RecordCapture(ctx, c)
			if !assert.NoError(t, err) {
				return
			}
			if got.Created {
				mu.Lock()
				created++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, created, "exactly one capture creates the lead")
	n2, err := store.LeadCount(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n2)
	id, err := store.LeadIDByEmail(ctx, "race@example.com")
	require.NoError(t, err)
	lead, err := store.Lead(ctx, id)
	require.NoError(t, err)
	assert.Len(t, lead.Interests, n, "no capture's interests are lost")
	require.Len(t, seen, n-1)
	slices.SortFunc(seen, func(a, b []string) int { return len(a) - len(b) })
	for i, s := range seen {
		assert.Len(t, s, i+1, "re-captures run one after another, each seeing the ones before")
	}
}
