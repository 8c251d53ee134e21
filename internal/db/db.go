// Package db owns tend's Postgres schema and every query against it: leads, captures, consents,
// the enrolment outbox, sends and suppressions. Postgres is tend's system of record.
package db

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned when the row asked for does not exist.
var ErrNotFound = errors.New("not found")

// ErrUnavailable wraps errors that mean the database could not be reached: the caller may retry
// later, and nothing was written.
var ErrUnavailable = errors.New("database unavailable")

// ErrBusy is returned when another attempt holds the row being claimed.
var ErrBusy = errors.New("row is being processed by another attempt")

// Store runs tend's queries on a connection pool.
type Store struct {
	pool *pgxpool.Pool
	// suppressionKey keys the hashes on the suppression list (SetSuppressionKey).
	suppressionKey []byte
}

// SetSuppressionKey sets the key of the keyed hashes the suppression list holds instead of
// addresses. It must be set before any send is claimed and never change (a new key would forget
// every suppression).
func (s *Store) SetSuppressionKey(key []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	s.suppressionKey = key
	return nil
}

// DefaultMaxConns is the connection pool's size unless the database URL sets pool_max_conns.
const DefaultMaxConns = 20

// Open connects to the database at url and checks that it answers.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		// pgx's default is max(4, cores): a worker whose sends each hold a row lock across SMTP
		// (and whose local activities wait for a connection inside their workflow task) needs more.
		cfg.MaxConns = DefaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", translate(err))
	}
	return &Store{pool: pool}, nil
}

// Close releases every connection.
func (s *Store) Close() { s.pool.Close() }

// Pool exposes the underlying pool for tests that inspect tables directly.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// translate maps driver errors onto the package's errors, once, at the edge.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if pgErr.Code == "55P03" { // lock_not_available
			return fmt.Errorf("%w: %s", ErrBusy, pgErr.Message)
		}
		// 08xxx connection exceptions, 57P0x shutdown/cannot connect now, 53300 too many connections.
		if pgErr.Code[:2] == "08" || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" || pgErr.Code == "53300" {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return err
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

// inTx runs fn in a transaction, committing when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return translate(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after commit
	if err := fn(tx); err != nil {
		return translate(err)
	}
	return translate(tx.Commit(ctx))
}
