package engage_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/api"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/engage"
	"github.com/tendhq/tend/internal/track"
)

const browserUA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"

// notified records the leads the service tells about.
type notified struct {
	mu    sync.Mutex
	leads []string
}

func (n *notified) Notify(leadID string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.leads = append(n.leads, leadID)
}

func (n *notified) Leads() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.leads...)
}

// opens is an open recorder under test over a fresh database with sent messages.
type opens struct {
	svc      *engage.Service
	store    *db.Store
	keys     *track.Keys
	notified *notified
	leads    []string // lead of each send, by position
	tokens   []string // open pixel token of each send
}

// setupOpens returns a service whose database holds n sends, each to its own lead, all sent.
func setupOpens(t testing.TB, n int) *opens {
	t.Helper()
	ctx := context.Background()
	store := dbtest.Store(t)
	keys, err := track.ParseKeys(track.GenerateKey("k1"))
	require.NoError(t, err)
	o := &opens{store: store, keys: keys, notified: &notified{}}
	for i := range n {
		c, err := store.RecordCapture(ctx, db.Capture{Email: fmt.Sprintf("reader%d@example.com", i), Source: "test", Segment: "general", Stage: "lead"})
		require.NoError(t, err)
		claim, err := store.ClaimSend(ctx, db.SendKey{LeadID: c.Lead.ID, SequenceID: "general", StepID: "one"}, "welcome", "mail.example.com")
		require.NoError(t, err)
		require.NoError(t, claim.MarkSent(ctx, "Welcome", 250))
		o.leads = append(o.leads, c.Lead.ID)
		o.tokens = append(o.tokens, keys.Sign(track.Token{Kind: track.KindOpen, SendID: uuid.MustParse(claim.Send.ID)}))
	}
	o.svc = &engage.Service{Store: store, Keys: keys, Heuristics: track.DefaultHeuristics(), Notifier: o.notified}
	return o
}

// run starts the recorder; the returned stop ends it and waits until it has drained.
func (o *opens) run() (stop func()) {
	o.svc.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		o.svc.RunOpenRecorder(ctx)
		close(done)
	}()
	return func() {
		cancel()
		<-done
	}
}

// serve answers the tracking routes through the real HTTP handler.
func (o *opens) serve(t testing.TB) string {
	t.Helper()
	hs := httptest.NewServer((&api.Server{Store: o.store, Engage: o.svc}).Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

func (o *opens) storedOpens(t testing.TB) int {
	t.Helper()
	var n int
	require.NoError(t, o.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events WHERE type = 'open'`).Scan(&n))
	return n
}

// fire requests the pixels from workers clients at once and returns how many were answered 200
// and the slowest answer.
func fire(t *testing.T, url string, tokens []string, total, workers int) (answered int64, slowest time.Duration) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 10 * time.Second}
	var ok atomic.Int64
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(total) {
					return
				}
				req, _ := http.NewRequest(http.MethodGet, url+"/t/o/"+tokens[int(i)%len(tokens)], nil)
				req.Header.Set("User-Agent", browserUA)
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("open %d: %v", i, err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				took := time.Since(start)
				mu.Lock()
				slowest = max(slowest, took)
				mu.Unlock()
				if resp.StatusCode == http.StatusOK {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return ok.Load(), slowest
}

// Thousands of opens fired at once at the pixel are every one stored once the server stops
// gracefully, and each lead hears of its first (person-made) open.
func TestEveryAnsweredOpenIsStored(t *testing.T) {
	t.Parallel()
	o := setupOpens(t, 100)
	stop := o.run()
	url := o.serve(t)

	const total = 6000
	answered, _ := fire(t, url, o.tokens, total, 32)
	require.EqualValues(t, total, answered)
	stop()

	assert.Equal(t, total, o.storedOpens(t), "every answered open is stored")
	st := o.svc.OpenStats()
	assert.EqualValues(t, total, st.Stored)
	assert.Zero(t, st.Lost())
	assert.ElementsMatch(t, o.leads, o.notified.Leads(), "each lead is told of its first open, and only that: the rest are duplicates")
	var dup int
	require.NoError(t, o.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events WHERE duplicate`).Scan(&dup))
	assert.Equal(t, total-len(o.leads), dup)
}

// When the database stalls and the queue is full the pixel is still answered at once; the opens
// that could not be stored are counted and logged, exactly as many as are missing.
func TestLostOpensAreCountedAndLogged(t *testing.T) {
	t.Parallel()
	o := setupOpens(t, 20)
	var logs bytes.Buffer
	var logMu sync.Mutex
	o.svc.Log = slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
	o.svc.OpenRecorders, o.svc.OpenQueue, o.svc.OpenBatch, o.svc.LossLogEvery = 1, 8, 4, 50*time.Millisecond

	ctx := context.Background()
	lock, err := o.store.Pool().Begin(ctx)
	require.NoError(t, err)
	_, err = lock.Exec(ctx, `LOCK TABLE events IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)

	stop := o.run()
	url := o.serve(t)
	const total = 200
	answered, slowest := fire(t, url, o.tokens, total, 8)
	require.EqualValues(t, total, answered, "the pixel is answered while the database is stuck")
	assert.Less(t, slowest, time.Second, "the pixel never waits on the database")
	require.Eventually(t, func() bool {
		logMu.Lock()
		defer logMu.Unlock()
		return strings.Contains(logs.String(), "opens lost")
	}, 5*time.Second, 20*time.Millisecond, "the loss is logged while it happens")

	require.NoError(t, lock.Rollback(ctx))
	stop()

	st := o.svc.OpenStats()
	stored := o.storedOpens(t)
	assert.Positive(t, st.Lost(), "a queue of 8 cannot hold 200 opens")
	assert.EqualValues(t, stored, st.Stored)
	assert.EqualValues(t, total-stored, st.Lost(), "the loss counter is exactly the opens answered and not stored")
	assert.Contains(t, logs.String(), fmt.Sprintf(`"lost_total":%d`, st.Lost()), "the last log line has the whole count")
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Batching keeps what an open means: machine opens are marked and not told, a repeat within the
// dedupe window is a duplicate whether its predecessor is in the same batch or already stored,
// and the lead hears only of the person-made first open.
func TestBatchedOpensKeepTheirMeaning(t *testing.T) {
	t.Parallel()
	o := setupOpens(t, 2)
	now := time.Now()
	hits := []engage.Hit{
		{Token: o.tokens[0], Method: "GET", UserAgent: browserUA, At: now},
		{Token: o.tokens[0], Method: "GET", UserAgent: browserUA, At: now.Add(time.Second)},
		{Token: o.tokens[0], Method: "HEAD", UserAgent: browserUA, At: now.Add(2 * time.Second)},
		{Token: o.tokens[0], Method: "GET", UserAgent: "Mozilla/5.0", At: now.Add(3 * time.Second)},
		{Token: o.tokens[1], Method: "GET", UserAgent: "python-requests/2.31", At: now},
		{Token: o.tokens[1], Method: "GET", UserAgent: browserUA, At: now.Add(time.Second)},
	}
	for _, h := range hits {
		require.True(t, o.svc.QueueOpen(h))
	}
	assert.False(t, o.svc.QueueOpen(engage.Hit{Token: "k1.forged.token", Method: "GET", At: now}), "an invalid token is not queued")
	stop := o.run() // everything queued before the recorder runs: one batch
	stop()

	stop = o.run()
	require.True(t, o.svc.QueueOpen(engage.Hit{Token: o.tokens[1], Method: "GET", UserAgent: browserUA, At: now.Add(time.Minute)}))
	stop()

	type row struct {
		Send      int
		Machine   bool
		Reason    string
		Duplicate bool
	}
	rows, err := o.store.Pool().Query(context.Background(), `SELECT e.lead_id::text, machine, machine_reason, duplicate FROM events e
		WHERE type = 'open' ORDER BY occurred_at, (lead_id::text = $1) DESC`, o.leads[0])
	require.NoError(t, err)
	defer rows.Close()
	var got []row
	for rows.Next() {
		var lead string
		var r row
		require.NoError(t, rows.Scan(&lead, &r.Machine, &r.Reason, &r.Duplicate))
		if lead == o.leads[1] {
			r.Send = 1
		}
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []row{
		{Send: 0},
		{Send: 1, Machine: true, Reason: track.ReasonScanner},
		{Send: 0, Duplicate: true},
		{Send: 1},
		{Send: 0, Machine: true, Reason: track.ReasonHEAD},
		{Send: 0, Machine: true, Reason: track.ReasonPrivacyProxy},
		{Send: 1, Duplicate: true},
	}, got)
	assert.ElementsMatch(t, o.leads, o.notified.Leads(), "one notification per lead: its first person-made open")
	assert.EqualValues(t, 7, o.svc.OpenStats().Stored)
}

// An open that arrives just before its send is recorded (a prefetch on delivery) is stored once
// the send is; one for a send that never left is an unknown link, not a loss.
func TestOpenWaitsForItsSendToBeRecorded(t *testing.T) {
	t.Parallel()
	svc, claim, _ := claimed(t)
	ctx := context.Background()
	token := svc.Keys.Sign(track.Token{Kind: track.KindOpen, SendID: uuid.MustParse(claim.Send.ID)})
	o := &opens{svc: svc, store: svc.Store}
	stop := o.run()
	require.True(t, svc.QueueOpen(engage.Hit{Token: token, Method: "GET", UserAgent: browserUA, At: time.Now()}))
	time.Sleep(300 * time.Millisecond)
	assert.Zero(t, o.storedOpens(t))
	require.NoError(t, claim.MarkSent(ctx, "Welcome", 250))
	require.Eventually(t, func() bool { return o.storedOpens(t) == 1 }, engage.RecordWait, 20*time.Millisecond)
	stop()
	assert.Equal(t, engage.OpenStats{Queued: 1, Stored: 1}, svc.OpenStats())
}

func TestOpenOfASendThatNeverLeftIsUnknownNotLost(t *testing.T) {
	svc, claim, _ := claimed(t)
	claim.Abort(context.Background())
	old := engage.RecordWait
	engage.RecordWait = 200 * time.Millisecond
	t.Cleanup(func() { engage.RecordWait = old })
	token := svc.Keys.Sign(track.Token{Kind: track.KindOpen, SendID: uuid.MustParse(claim.Send.ID)})
	o := &opens{svc: svc, store: svc.Store}
	stop := o.run()
	require.True(t, svc.QueueOpen(engage.Hit{Token: token, Method: "GET", UserAgent: browserUA, At: time.Now()}))
	stop()
	assert.Zero(t, o.storedOpens(t))
	assert.Equal(t, engage.OpenStats{Queued: 1, Unknown: 1}, svc.OpenStats())
}

// A stopped recorder takes no more opens, and says so in the count.
func TestOpenAfterStopIsCountedAsDropped(t *testing.T) {
	t.Parallel()
	o := setupOpens(t, 1)
	stop := o.run()
	stop()
	assert.False(t, o.svc.QueueOpen(engage.Hit{Token: o.tokens[0], Method: "GET", UserAgent: browserUA, At: time.Now()}))
	assert.EqualValues(t, 1, o.svc.OpenStats().Dropped)
}
