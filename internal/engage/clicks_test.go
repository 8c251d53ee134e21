package engage_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/engage"
	"github.com/tendhq/tend/internal/track"
)

// clickRow is a stored click as the scoring and the dashboard see it.
type clickRow struct {
	Link      int
	Machine   bool
	Reason    string
	Duplicate bool
}

// storedClicks returns the send's clicks in the order they happened.
func (c *clicks) storedClicks(t *testing.T, send int) []clickRow {
	t.Helper()
	rows, err := c.store.Pool().Query(context.Background(), `SELECT link_idx, machine, machine_reason, duplicate FROM events
		WHERE type = 'click' AND lead_id = $1 ORDER BY occurred_at, id`, c.leads[send])
	require.NoError(t, err)
	defer rows.Close()
	var out []clickRow
	for rows.Next() {
		var r clickRow
		require.NoError(t, rows.Scan(&r.Link, &r.Machine, &r.Reason, &r.Duplicate))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

// token returns the click token of a send's link.
func (c *clicks) token(send, link, links int) string { return c.tokens[send*links+link] }

// A person clicking the same link again within the hour is counted once (the repeat is stored as
// a duplicate and not told to the lead's workflow); another link, or the same one hours later,
// counts again. Every click redirects to the URL stored for its link.
func TestRepeatedClicksWithinTheWindowCountOnce(t *testing.T) {
	t.Parallel()
	c := setupClicks(t, 1, 3, 0)
	stop := c.run()
	defer stop()
	ctx := context.Background()
	start := time.Now()
	for _, k := range []struct {
		link int
		at   time.Duration
	}{{0, 0}, {0, time.Minute}, {1, 2 * time.Minute}, {0, 59 * time.Minute}, {0, 2 * time.Hour}} {
		url, err := c.svc.Click(ctx, engage.Hit{Token: c.token(0, k.link, 3), Method: "GET", UserAgent: browserUA, At: start.Add(k.at)})
		require.NoError(t, err)
		assert.Equal(t, []string{"https://example.com/guide/0", "https://example.com/guide/1", "https://example.com/guide/2"}[k.link], url)
	}
	assert.Equal(t, []clickRow{{Link: 0}, {Link: 0, Duplicate: true}, {Link: 1}, {Link: 0, Duplicate: true}, {Link: 0}}, c.storedClicks(t, 0))
	assert.Len(t, c.notified.Leads(), 3, "the lead's workflow hears of the three clicks that count, not of the repeats")
}

// A gateway that follows every link of a message within a second is a machine: the click that
// completes the set is marked so and not told; a person who clicks two of three links is not.
func TestEveryLinkClickedAtOnceIsAScanner(t *testing.T) {
	t.Parallel()
	c := setupClicks(t, 2, 3, 0)
	stop := c.run()
	defer stop()
	ctx := context.Background()
	start := time.Now()
	for send, links := range [][]int{{0, 1, 2}, {0, 2}} {
		for i, l := range links {
			_, err := c.svc.Click(ctx, engage.Hit{Token: c.token(send, l, 3), Method: "GET", UserAgent: browserUA,
				At: start.Add(time.Duration(i) * 200 * time.Millisecond)})
			require.NoError(t, err)
		}
	}
	assert.Equal(t, []clickRow{{Link: 0}, {Link: 1}, {Link: 2, Machine: true, Reason: track.ReasonAllLinks}}, c.storedClicks(t, 0))
	assert.Equal(t, []clickRow{{Link: 0}, {Link: 2}}, c.storedClicks(t, 1))
}

// A scanner's click (a HEAD request, a security gateway's agent) is stored as machine, never a
// duplicate and never told; it does not make a person's later click a duplicate.
func TestMachineClicksAreStoredNotCounted(t *testing.T) {
	t.Parallel()
	c := setupClicks(t, 1, 1, 0)
	stop := c.run()
	defer stop()
	ctx := context.Background()
	now := time.Now()
	for i, h := range []engage.Hit{
		{Method: "HEAD", UserAgent: browserUA},
		{Method: "GET", UserAgent: "Mozilla/5.0 (compatible; Barracuda)"},
		{Method: "GET", UserAgent: browserUA},
	} {
		h.Token, h.At = c.token(0, 0, 1), now.Add(time.Duration(i)*time.Second)
		url, err := c.svc.Click(ctx, h)
		require.NoError(t, err)
		assert.Equal(t, "https://example.com/guide/0", url)
	}
	assert.Equal(t, []clickRow{{Machine: true, Reason: track.ReasonHEAD}, {Machine: true, Reason: track.ReasonScanner}, {}}, c.storedClicks(t, 0))
	assert.Equal(t, c.leads, c.notified.Leads())
}

// A double click (a person's two clicks arriving at the same moment, on two connections) counts
// once: of many clicks of one link at once exactly one is not a duplicate, and each is stored
// before its redirect is answered.
func TestClicksOfOneLinkAtOnceCountOnce(t *testing.T) {
	t.Parallel()
	c := setupClicks(t, 1, 2, 0)
	stop := c.run()
	defer stop()
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := c.svc.Click(context.Background(), engage.Hit{Token: c.token(0, 1, 2), Method: "GET", UserAgent: browserUA, At: time.Now()})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got := c.storedClicks(t, 0)
	require.Len(t, got, n, "every answered click is stored by the time it is answered")
	counted := 0
	for _, r := range got {
		if !r.Duplicate && !r.Machine {
			counted++
		}
	}
	assert.Equal(t, 1, counted)
	assert.Len(t, c.notified.Leads(), 1)
}

// A validly signed token whose link index the send never had is an invalid link: nothing is stored.
func TestClickOfALinkTheSendNeverHadIsInvalid(t *testing.T) {
	t.Parallel()
	c := setupClicks(t, 1, 2, 0)
	stop := c.run()
	defer stop()
	// The token of send 0's link 1, re-signed for link 5.
	tok, err := c.svc.Keys.Verify(c.token(0, 1, 2))
	require.NoError(t, err)
	tok.Link = 5
	_, err = c.svc.Click(context.Background(), engage.Hit{Token: c.svc.Keys.Sign(tok), Method: "GET", UserAgent: browserUA, At: time.Now()})
	require.ErrorIs(t, err, engage.ErrInvalidLink)
	assert.Empty(t, c.storedClicks(t, 0))
}

// A click whose recording fails in an unforeseen way (here: no database at all, a panic) is
// answered with an error, and the clicks after it are still answered: no shard is left waiting.
func TestAClickThatCannotBeRecordedDoesNotBlockTheNext(t *testing.T) {
	t.Parallel()
	keys, err := track.ParseKeys(track.GenerateKey("k1"))
	require.NoError(t, err)
	svc := &engage.Service{Keys: keys, Heuristics: track.DefaultHeuristics(), ClickWriters: 1}
	token := keys.Sign(track.Token{Kind: track.KindClick, SendID: [16]byte{1}, Link: 0})
	for range 3 {
		done := make(chan error, 1)
		go func() {
			_, err := svc.Click(context.Background(), engage.Hit{Token: token, Method: "GET", UserAgent: browserUA, At: time.Now()})
			done <- err
		}()
		select {
		case err := <-done:
			require.Error(t, err)
			assert.NotErrorIs(t, err, engage.ErrInvalidLink)
		case <-time.After(5 * time.Second):
			t.Fatal("the click was never answered")
		}
	}
}
