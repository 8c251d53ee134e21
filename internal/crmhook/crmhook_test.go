package crmhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/every"
	"github.com/tendhq/tend/internal/leader"
	"github.com/tendhq/tend/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Every stage change reaches the CRM once, in order, signed; a failure is retried, not skipped.
func TestStageChangesReachTheCRMInOrderSigned(t *testing.T) {
	ctx := context.Background()
	store := dbtest.Store(t)
	c, err := store.RecordCapture(ctx, db.Capture{Email: "ada@example.com", Source: "api", Segment: "general", Stage: "lead"})
	require.NoError(t, err)
	for _, to := range []string{"mql", "sal", "sql"} {
		require.NoError(t, store.SetStage(ctx, c.Lead.ID, to, "rep-jonas", "because "+to, nil))
	}

	var mu sync.Mutex
	var got []string
	fail := 1 // the CRM is down for the second delivery once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Tend-Signature") != Sign("s3cret", body) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var msg struct {
			StageChange db.StageChangeEvent `json:"stage_change"`
		}
		require.NoError(t, json.Unmarshal(body, &msg))
		mu.Lock()
		defer mu.Unlock()
		if msg.StageChange.To == "sal" && fail > 0 {
			fail--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got = append(got, msg.StageChange.From+"→"+msg.StageChange.To+" by "+msg.StageChange.Actor)
	}))
	defer srv.Close()

	d := &Deliverer{Store: store, URL: srv.URL, Secret: "s3cret"}
	n, err := d.Deliver(ctx)
	assert.Error(t, err, "the failure is reported")
	assert.Equal(t, 1, n)
	n, err = d.Deliver(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	n, err = d.Deliver(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing twice")
	assert.Equal(t, []string{"lead→mql by rep-jonas", "mql→sal by rep-jonas", "sal→sql by rep-jonas"}, got)

	bad := &Deliverer{Store: store, URL: srv.URL, Secret: "wrong"}
	require.NoError(t, store.SetStage(ctx, c.Lead.ID, "opportunity", "rep-jonas", "deal", nil))
	_, err = bad.Deliver(ctx)
	assert.Error(t, err, "a CRM that refuses the signature keeps the change pending")
	n, err = d.Deliver(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

// delivery is one stage change as the receiving CRM saw it.
type delivery struct {
	ID     int64
	LeadID string
	Change string
}

// crm is a receiving CRM: it checks the signature, records what it accepted and refuses what
// fail says to.
type crm struct {
	t      *testing.T
	secret string
	// delay is how long each request takes, so that deliverers overlap.
	delay time.Duration
	mu    sync.Mutex
	// fail, when set, decides the status of a request; 0 accepts it.
	fail     func(delivery) int
	got      []delivery
	attempts map[int64]int
	inFlight map[string]int
	// via is the URL path each change was accepted on.
	via map[int64]string
	// overlap counts requests that arrived while another for the same lead was in flight.
	overlap int
}

func newCRM(t *testing.T, secret string) (*crm, *httptest.Server) {
	c := &crm{t: t, secret: secret, attempts: map[int64]int{}, inFlight: map[string]int{}, via: map[int64]string{}}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, srv
}

func (c *crm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("X-Tend-Signature") != Sign(c.secret, body) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var msg struct {
		Type        string              `json:"type"`
		StageChange db.StageChangeEvent `json:"stage_change"`
	}
	if err := json.Unmarshal(body, &msg); err != nil || msg.Type != "stage_changed" {
		c.t.Errorf("unexpected body %s", body)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	e := msg.StageChange
	if r.Header.Get("X-Tend-Delivery") != strconv.FormatInt(e.ID, 10) {
		c.t.Errorf("X-Tend-Delivery %q for stage change %d", r.Header.Get("X-Tend-Delivery"), e.ID)
	}
	d := delivery{ID: e.ID, LeadID: e.LeadID, Change: e.From + "→" + e.To}
	c.mu.Lock()
	c.attempts[d.ID]++
	if c.inFlight[d.LeadID] > 0 {
		c.overlap++
	}
	c.inFlight[d.LeadID]++
	c.mu.Unlock()
	time.Sleep(c.delay)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inFlight[d.LeadID]--
	if c.fail != nil {
		if code := c.fail(d); code != 0 {
			w.WriteHeader(code)
			return
		}
	}
	c.got = append(c.got, d)
	c.via[d.ID] = r.URL.Path
}

func (c *crm) delivered() []delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]delivery(nil), c.got...)
}

func newLead(t *testing.T, store *db.Store, email string) string {
	t.Helper()
	c, err := store.RecordCapture(context.Background(), db.Capture{Email: email, Source: "api", Segment: "general", Stage: "lead"})
	require.NoError(t, err)
	return c.Lead.ID
}

// A stage change whose transaction commits after a later one's (a lower id committing after a
// higher one was delivered) is delivered all the same.
func TestAChangeThatCommitsLateIsStillDelivered(t *testing.T) {
	ctx := context.Background()
	store := dbtest.Store(t)
	early, late := newLead(t, store, "early@example.com"), newLead(t, store, "late@example.com")
	rec, srv := newCRM(t, "s3cret")
	d := &Deliverer{Store: store, URL: srv.URL, Secret: "s3cret"}

	// Transaction A takes the lower id and stays open while B commits a higher one.
	txA, err := store.Pool().Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = txA.Rollback(ctx) }()
	var idA int64
	require.NoError(t, txA.QueryRow(ctx, `INSERT INTO stage_changes (lead_id, from_stage, to_stage, reason)
		VALUES ($1, 'lead', 'mql', 'score') RETURNING id`, early).Scan(&idA))
	require.NoError(t, store.SetStage(ctx, late, "mql", "tend", "score", nil))

	n, err := d.Deliver(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "B is delivered while A is still open")

	require.NoError(t, txA.Commit(ctx))
	n, err = d.Deliver(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "A is delivered once it commits")

	got := rec.delivered()
	require.Len(t, got, 2)
	assert.Equal(t, late, got[0].LeadID)
	assert.Equal(t, delivery{ID: idA, LeadID: early, Change: "lead→mql"}, got[1])
}

// Two servers delivering at once deliver every stage change exactly once, and a lead's changes
// in the order they happened.
func TestTwoDeliverersDeliverEachChangeOnceInLeadOrder(t *testing.T) {
	ctx := context.Background()
	store := dbtest.Store(t)
	var leads []string
	for i := range 12 {
		leads = append(leads, newLead(t, store, "lead"+strconv.Itoa(i)+"@example.com"))
	}
	// The leads' changes interleave, so ids alone do not group a lead's changes together.
	for _, to := range []string{"mql", "sal", "sql"} {
		for _, id := range leads {
			require.NoError(t, store.SetStage(ctx, id, to, "rep-ana", "because "+to, nil))
		}
	}
	want := 3 * len(leads)

	rec, srv := newCRM(t, "s3cret")
	rec.delay = 3 * time.Millisecond
	var wg sync.WaitGroup
	deadline := time.Now().Add(30 * time.Second)
	for range 2 {
		d := &Deliverer{Store: store, URL: srv.URL, Secret: "s3cret"}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for len(rec.delivered()) < want && time.Now().Before(deadline) {
				if _, err := d.Deliver(ctx); err != nil {
					t.Errorf("deliver: %v", err)
					return
				}
			}
			// One more pass each, after everything arrived: nothing is sent again.
			if _, err := d.Deliver(ctx); err != nil {
				t.Errorf("deliver: %v", err)
			}
		}()
	}
	wg.Wait()

	got := rec.delivered()
	seen := map[int64]int{}
	byLead := map[string][]string{}
	var lastID = map[string]int64{}
	for _, g := range got {
		seen[g.ID]++
		assert.Greater(t, g.ID, lastID[g.LeadID], "lead %s: change %d arrived after a later one", g.LeadID, g.ID)
		lastID[g.LeadID] = g.ID
		byLead[g.LeadID] = append(byLead[g.LeadID], g.Change)
	}
	assert.Len(t, seen, want, "every change arrives")
	for id, n := range seen {
		assert.Equal(t, 1, n, "change %d arrived %d times", id, n)
	}
	for _, id := range leads {
		assert.Equal(t, []string{"lead→mql", "mql→sal", "sal→sql"}, byLead[id], "lead %s", id)
	}
	rec.mu.Lock()
	assert.Zero(t, rec.overlap, "two deliveries of one lead were in flight at once")
	rec.mu.Unlock()
}

// A CRM that answers 500 gets the change again, later each time, until it takes it; the change
// is never skipped, and the lead's next change waits for it.
func TestAFailingCRMIsRetriedWithBackoff(t *testing.T) {
	ctx := context.Background()
	store := dbtest.Store(t)
	lead := newLead(t, store, "ada@example.com")
	require.NoError(t, store.SetStage(ctx, lead, "mql", "tend", "score", nil))
	require.NoError(t, store.SetStage(ctx, lead, "sal", "rep-ana", "accepted", nil))

	const failures = 4
	rec, srv := newCRM(t, "s3cret")
	var tries []time.Time
	rec.fail = func(d delivery) int {
		if d.Change != "lead→mql" {
			return 0
		}
		tries = append(tries, time.Now())
		if len(tries) <= failures {
			return http.StatusInternalServerError
		}
		return 0
	}
	const backoff = 150 * time.Millisecond
	d := &Deliverer{Store: store, URL: srv.URL, Secret: "s3cret", Backoff: backoff, MaxBackoff: 2 * backoff}

	state := func(change string) (st string, attempts int, lastErr string) {
		t.Helper()
		require.NoError(t, store.Pool().QueryRow(ctx, `SELECT d.state, d.attempts, d.last_error
			FROM crm_deliveries d JOIN stage_changes c ON c.id = d.stage_change_id
			WHERE c.lead_id = $1 AND c.from_stage || '→' || c.to_stage = $2`, lead, change).Scan(&st, &attempts, &lastErr))
		return st, attempts, lastErr
	}

	n, err := d.Deliver(ctx)
	require.Error(t, err, "the failure is reported")
	assert.Contains(t, err.Error(), "500")
	assert.Zero(t, n)
	st, attempts, lastErr := state("lead→mql")
	assert.Equal(t, "failed", st, "the change is kept, to be tried again")
	assert.Equal(t, 1, attempts)
	assert.Equal(t, "post stage change "+strconv.FormatInt(mustID(t, store, lead, "mql"), 10)+": the CRM answered 500 Internal Server Error", lastErr)
	st, attempts, _ = state("mql→sal")
	assert.Equal(t, "pending", st, "the lead's next change waits for the one before it")
	assert.Zero(t, attempts)

	// Passes run far more often than the backoff; the CRM hears from tend only as the backoff allows.
	deadline := time.Now().Add(20 * time.Second)
	for len(rec.delivered()) < 2 && time.Now().Before(deadline) {
		_, _ = d.Deliver(ctx)
		time.Sleep(10 * time.Millisecond)
	}
	require.Len(t, tries, failures+1)
	gaps := []time.Duration{0, backoff, 2 * backoff, 2 * backoff} // the first retry comes with the next pass; the cap is 2×
	for i, min := range gaps {
		assert.GreaterOrEqual(t, tries[i+1].Sub(tries[i]), min, "wait before retry %d", i+1)
	}
	got := rec.delivered()
	require.Len(t, got, 2)
	assert.Equal(t, []string{"lead→mql", "mql→sal"}, []string{got[0].Change, got[1].Change})
	st, attempts, lastErr = state("lead→mql")
	assert.Equal(t, "delivered", st)
	assert.Equal(t, failures+1, attempts)
	assert.Empty(t, lastErr)
}

func mustID(t *testing.T, store *db.Store, lead, to string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, store.Pool().QueryRow(context.Background(),
		`SELECT id FROM stage_changes WHERE lead_id = $1 AND to_stage = $2`, lead, to).Scan(&id))
	return id
}

// Two servers, each running the deliverer under the leader's gate: only the leader posts, and
// when it stops the other takes over.
func TestOnlyTheLeaderDelivers(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDB(t)
	store, err := db.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(store.Close)
	_, err = store.Migrate(ctx)
	require.NoError(t, err)
	lead := newLead(t, store, "ada@example.com")
	rec, srv := newCRM(t, "s3cret")

	type server struct {
		name string
		el   *leader.Elector
		stop func()
	}
	run := func(name string) *server {
		el := &leader.Elector{URL: url, Interval: 100 * time.Millisecond}
		sctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); el.Run(sctx) }()
		d := &Deliverer{Store: store, URL: srv.URL + "/" + name, Secret: "s3cret"}
		go func() { defer wg.Done(); d.Run(every.WithGate(sctx, el), 20*time.Millisecond) }()
		s := &server{name: name, el: el, stop: func() { cancel(); wg.Wait() }}
		t.Cleanup(s.stop)
		return s
	}
	a, b := run("a"), run("b")
	var first, second *server
	require.Eventually(t, func() bool {
		_, aLeads := a.el.Leading()
		_, bLeads := b.el.Leading()
		first, second = a, b
		if bLeads {
			first, second = b, a
		}
		return aLeads != bLeads
	}, 5*time.Second, 10*time.Millisecond, "one of the two leads")

	waitFor := func(n int) {
		t.Helper()
		require.Eventually(t, func() bool { return len(rec.delivered()) >= n }, 10*time.Second, 10*time.Millisecond)
	}
	for _, to := range []string{"mql", "sal"} {
		require.NoError(t, store.SetStage(ctx, lead, to, "tend", "because", nil))
	}
	waitFor(2)
	first.stop()
	for _, to := range []string{"sql", "opportunity"} {
		require.NoError(t, store.SetStage(ctx, lead, to, "rep-ana", "because", nil))
	}
	waitFor(4)
	time.Sleep(100 * time.Millisecond) // nothing more comes

	got := rec.delivered()
	require.Len(t, got, 4)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, g := range got {
		want := first.name
		if i >= 2 {
			want = second.name
		}
		assert.Equal(t, "/"+want, rec.via[g.ID], "change %s delivered by the leader", g.Change)
	}
}
