package leader

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const interval = 200 * time.Millisecond

// candidate is one tend server taking part in the election.
type candidate struct {
	*Elector
	stop func()
}

func start(t *testing.T, url string) *candidate {
	t.Helper()
	e := &Elector{URL: url, Interval: interval}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); e.Run(ctx) }()
	c := &candidate{Elector: e, stop: func() { cancel(); wg.Wait() }}
	t.Cleanup(c.stop)
	return c
}

func (c *candidate) leads() bool {
	_, ok := c.Leading()
	return ok
}

// leaders returns the candidates that lead now.
func leaders(cs ...*candidate) []*candidate {
	var out []*candidate
	for _, c := range cs {
		if c.leads() {
			out = append(out, c)
		}
	}
	return out
}

// soleLeader waits up to within for exactly one of cs to lead, and returns it.
func soleLeader(t *testing.T, within time.Duration, cs ...*candidate) *candidate {
	t.Helper()
	var l []*candidate
	require.Eventually(t, func() bool { l = leaders(cs...); return len(l) == 1 }, within, interval/10,
		"exactly one leader within %s", within)
	return l[0]
}

// stable checks that, over a few intervals, the same one candidate leads throughout.
func stable(t *testing.T, want *candidate, cs ...*candidate) {
	t.Helper()
	for end := time.Now().Add(3 * interval); time.Now().Before(end); time.Sleep(interval / 10) {
		l := leaders(cs...)
		require.Len(t, l, 1, "one leader at a time")
		require.Same(t, want, l[0], "the lead stays where it is")
	}
}

// Two servers on one database: one leads; when it stops, the other takes over within a couple
// of intervals; a server that joins later follows.
func TestOneLeaderAndATakeoverWhenItStops(t *testing.T) {
	url := pgtest.NewDB(t)
	a, b := start(t, url), start(t, url)
	first := soleLeader(t, 2*interval+time.Second, a, b)
	stable(t, first, a, b)
	other := a
	if first == a {
		other = b
	}

	term, ok := first.Leading()
	require.True(t, ok)
	first.stop()
	assert.Error(t, term.Err(), "the stopped leader's term has ended")
	assert.False(t, first.leads())
	stopped := time.Now()
	assert.Same(t, other, soleLeader(t, 2*interval+time.Second, other), "the other takes over")
	t.Logf("took over in %s", time.Since(stopped).Round(time.Millisecond))

	late := start(t, url)
	time.Sleep(2 * interval)
	stable(t, other, other, late)
}

// A leader whose connection is cut stops leading; the lead is taken again within a couple of
// intervals, and stays with one server.
func TestTheLeadSurvivesALostConnection(t *testing.T) {
	url := pgtest.NewDB(t)
	a, b := start(t, url), start(t, url)
	first := soleLeader(t, 2*interval+time.Second, a, b)
	term, _ := first.Leading()

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var killed bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT pg_terminate_backend(l.pid) FROM pg_locks l
		JOIN pg_stat_activity s ON s.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND s.application_name = $1 AND s.datname = current_database()`,
		ApplicationName).Scan(&killed))
	require.True(t, killed, "the leader's session was found by its lock")
	cut := time.Now()

	select {
	case <-term.Done():
		t.Logf("the old leader stepped down after %s", time.Since(cut).Round(time.Millisecond))
	case <-time.After(2*interval + time.Second):
		t.Fatal("the leader whose connection was cut still believes it leads")
	}
	next := soleLeader(t, 3*interval+time.Second, a, b)
	t.Logf("led again after %s", time.Since(cut).Round(time.Millisecond))
	stable(t, next, a, b)
}

// A server that cannot reach the database does not lead (and keeps trying, without failing).
func TestNoDatabaseNoLead(t *testing.T) {
	e := start(t, "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	time.Sleep(3 * interval)
	assert.False(t, e.leads())
}

// A database URL that sizes the pool (pool_max_conns, read by the servers' pgxpool) still elects:
// the elector's own connection must not pass pool settings to Postgres as session parameters.
func TestPoolSettingsInTheURLStillElect(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	c := start(t, url+sep+"pool_max_conns=16")
	soleLeader(t, 5*time.Second, c)
}
