// Package pgtest gives each test its own empty PostgreSQL database, on one
// temporary cluster per test binary or on the server named by
// TEND_TEST_DATABASE_URL.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tendhq/tend/internal/pgcluster"
)

// EnvURL names the variable that points tests at an existing server, for
// example postgres://postgres@localhost:5432/postgres?sslmode=disable. The
// role must be allowed to create databases; the URL's database is used only
// to issue CREATE and DROP DATABASE.
const EnvURL = "TEND_TEST_DATABASE_URL"

// state is per test binary: Main owns it, NewDB reads it.
var state struct {
	mu       sync.Mutex
	inMain   bool
	started  bool
	cluster  *pgcluster.Cluster
	adminURL string
	err      error
}

// Main runs the tests of a package that uses NewDB and stops the temporary
// cluster afterwards. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// The cluster starts on the first NewDB, so a run that selects no database
// tests costs nothing.
func Main(m *testing.M) {
	state.mu.Lock()
	state.inMain = true
	state.mu.Unlock()

	code := m.Run()

	state.mu.Lock()
	if state.cluster != nil {
		if err := state.cluster.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	state.mu.Unlock()
	os.Exit(code)
}

// NewDB creates a fresh, empty database for t, drops it when t ends, and
// returns its connection URL.
func NewDB(t testing.TB) string {
	t.Helper()
	admin, err := server()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}

	name := dbName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pgcluster.CreateDatabase(ctx, admin, name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := dropDatabase(ctx, admin, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})

	dbURL, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dbURL
}

// server returns the admin URL of the server tests use, starting the
// temporary cluster on first use.
func server() (string, error) {
	state.mu.Lock()
	defer state.mu.Unlock()
	if state.started {
		return state.adminURL, state.err
	}
	state.started = true
	if u := os.Getenv(EnvURL); u != "" {
		state.adminURL = u
		return u, nil
	}
	if !state.inMain {
		// Without Main nobody would stop the cluster, and it would outlive
		// the test binary.
		state.err = fmt.Errorf("no database: add func TestMain(m *testing.M) { pgtest.Main(m) } to the package, or set %s", EnvURL)
		return "", state.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Config{Ephemeral: true})
	if err != nil {
		state.err = fmt.Errorf("start temporary PostgreSQL (or set %s): %w", EnvURL, err)
		return "", state.err
	}
	state.cluster = c
	state.adminURL = c.URL("postgres")
	return state.adminURL, nil
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// dbName makes a unique name that still says which test it belongs to, within
// PostgreSQL's 63-byte identifier limit.
func dbName(testName string) string {
	var b [6]byte
	rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	base := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(testName), "_"), "_")
	const max = 63 - len("t__") - 12
	if len(base) > max {
		base = base[:max]
	}
	return "t_" + base + "_" + suffix
}

func dropDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("drop database %q: connect: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// FORCE ends sessions a test left open, such as an unclosed pool.
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %q: %w", name, err)
	}
	return nil
}

func withDatabase(serverURL, name string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", EnvURL, err)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}
