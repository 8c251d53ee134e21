// Package leader elects one process, among all the tend servers that share a database, to run the
// loops that must run once per cluster (the enrolment reconciler, the unscored-event sweep, the CRM
// deliverer, retention). The leader holds a session-level Postgres advisory lock on a connection of
// its own for as long as it leads; the others try to take it every interval. The lock goes when the
// leader stops (it unlocks), when its process dies, or when its connection is lost (Postgres ends
// the session), and another server takes over at its next try.
//
// Leadership is advisory, not a fence: a leader that loses its connection learns it at its next
// check, up to one interval later, while another may already lead. The loops it gates are safe to
// overlap for that long; the leader only keeps them from running everywhere all the time.
package leader

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Key is the advisory lock key of the background loops ("tendlead"); `tend migrate` uses another.
const Key int64 = 0x74656e646c656164

// ApplicationName is the application_name of the leader's connection, to find it in
// pg_stat_activity.
const ApplicationName = "tend leader election"

// Elector takes part in the election. Run it; Leading says whether this process leads.
type Elector struct {
	// URL is the database's connection URL. The lock lives in the session, so the URL must reach
	// Postgres directly or through a pooler in session mode, never in transaction mode.
	URL string
	// Interval is how often a follower tries to take the lock and the leader checks that it still
	// holds it; it also bounds each of those calls. Default 5 s.
	Interval time.Duration
	// Key is the advisory lock key; default Key.
	Key int64
	Log *slog.Logger

	mu sync.Mutex
	// term is set while this process leads, and cancelled when it stops.
	term    context.Context
	endTerm context.CancelFunc
}

// Leading reports whether this process leads now and, if it does, a context that ends when it
// stops leading. It implements every.Gate.
func (e *Elector) Leading() (context.Context, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.term, e.term != nil
}

// Run takes part in the election until ctx ends, then gives up the lead if it has it. Connection
// failures are logged and retried every interval; Run returns only when ctx ends.
func (e *Elector) Run(ctx context.Context) {
	interval := e.interval()
	var conn *pgx.Conn
	defer func() {
		e.stepDown()
		if conn != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), interval)
			defer cancel()
			// Closing the session alone would free the lock; unlocking first says it plainly.
			_, _ = conn.Exec(cctx, `SELECT pg_advisory_unlock($1)`, e.key())
			_ = conn.Close(cctx)
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var err error
		if conn == nil {
			conn, err = e.connect(ctx)
		}
		if conn != nil {
			err = e.check(ctx, conn)
		}
		if err != nil && conn != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), interval)
			_ = conn.Close(cctx) // Postgres frees the lock, if this session held it, when the session ends
			cancel()
			conn = nil
		}
		if err != nil && ctx.Err() == nil {
			e.log().Warn("leader election: will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check is one round: a follower tries to take the lock; the leader makes sure it still holds
// it. An error means the connection can't be trusted any more, and the process doesn't lead.
func (e *Elector) check(ctx context.Context, conn *pgx.Conn) error {
	cctx, cancel := context.WithTimeout(ctx, e.interval())
	defer cancel()
	if _, leading := e.Leading(); leading {
		var held bool
		err := conn.QueryRow(cctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
			AND pid = pg_backend_pid() AND granted AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1)`,
			int64(uint32(e.key()>>32)), int64(uint32(e.key()))).Scan(&held)
		if err == nil && !held {
			err = fmt.Errorf("the session no longer holds the lock (a pooler in transaction mode?)")
		}
		if err != nil {
			e.stepDown()
			return fmt.Errorf("lost the lead of the background loops: %w", err)
		}
		return nil
	}
	var got bool
	if err := conn.QueryRow(cctx, `SELECT pg_try_advisory_lock($1)`, e.key()).Scan(&got); err != nil {
		return fmt.Errorf("try to take the lead: %w", err)
	}
	if got {
		e.stepUp()
		e.log().Info("leading the background loops")
	}
	return nil
}

func (e *Elector) connect(ctx context.Context) (*pgx.Conn, error) {
	// Parsed as the servers' pool parses it, so that pool settings in the URL (pool_max_conns …)
	// are understood rather than sent to Postgres as session parameters it refuses.
	pc, err := pgxpool.ParseConfig(e.URL)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	cfg := pc.ConnConfig
	cfg.RuntimeParams["application_name"] = ApplicationName
	cctx, cancel := context.WithTimeout(ctx, max(e.interval(), 5*time.Second))
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	// A leader whose machine vanishes without closing its socket must not hold the lock for the
	// hours the operating system's keepalive defaults would take: Postgres probes the session.
	secs := max(int(e.interval().Seconds()), 1)
	if _, err := conn.Exec(cctx, fmt.Sprintf(`SET tcp_keepalives_idle = %d; SET tcp_keepalives_interval = %d;
		SET tcp_keepalives_count = 3`, secs, secs)); err != nil {
		e.log().Warn("leader election: cannot set TCP keepalives; a vanished leader's lock may outlive it", "err", err)
	}
	return conn, nil
}

func (e *Elector) stepUp() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.term == nil {
		e.term, e.endTerm = context.WithCancel(context.Background())
	}
}

func (e *Elector) stepDown() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.term != nil {
		e.endTerm()
		e.term, e.endTerm = nil, nil
	}
}

func (e *Elector) interval() time.Duration {
	if e.Interval <= 0 {
		return 5 * time.Second
	}
	return e.Interval
}

func (e *Elector) key() int64 {
	if e.Key == 0 {
		return Key
	}
	return e.Key
}

func (e *Elector) log() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}
