package pgcluster

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer safe for the server's log copier and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func query(t *testing.T, url, sql string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var out string
	require.NoError(t, conn.QueryRow(ctx, sql).Scan(&out))
	return out
}

func TestStartCreateStopTemporary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var log syncBuffer
	c, err := Start(ctx, Config{Ephemeral: true, Log: &log})
	require.NoError(t, err, log.String())
	dir := c.Dir()
	t.Cleanup(func() { c.Stop() })

	require.Equal(t, "postgres://postgres@127.0.0.1:"+strconv.Itoa(c.Port())+"/app?sslmode=disable", c.URL("app"))
	require.Equal(t, "off", query(t, c.URL("postgres"), "SHOW fsync"))
	require.Equal(t, "UTF8", query(t, c.URL("postgres"), "SHOW server_encoding"))
	require.Equal(t, "127.0.0.1", query(t, c.URL("postgres"), "SHOW listen_addresses"))

	require.NoError(t, c.CreateDatabase(ctx, "app"))
	require.NoError(t, c.CreateDatabase(ctx, "app"), "second create must be a no-op")
	require.Equal(t, "app", query(t, c.URL("app"), "SELECT current_database()"))

	require.NoError(t, c.Stop())
	require.NoError(t, c.Stop(), "Stop is idempotent")
	_, err = os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist, "temporary data dir is removed")
}

func TestSettingsReachTheServer(t *testing.T) {
	t.Parallel()
	var log syncBuffer
	c, err := Start(context.Background(), Config{Ephemeral: true, Log: &log, Settings: []string{"max_connections=321"}})
	require.NoError(t, err, log.String())
	t.Cleanup(func() { c.Stop() })
	require.Equal(t, "321", query(t, c.URL("postgres"), "SHOW max_connections"), "the caller's setting wins over the ephemeral default")

	_, err = Start(context.Background(), Config{Ephemeral: true, Settings: []string{"max_connections"}})
	require.ErrorContains(t, err, `"max_connections": want name=value`)
}

// TestPersistentRestartAfterKill uses a Dir under t.TempDir (0700, owned by
// root when tests run as root), keeps durability, and checks that data
// survives a kill -9 of the postmaster and a restart on the same directory.
func TestPersistentRestartAfterKill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "nested", "pgdata")
	var log syncBuffer

	c, err := Start(ctx, Config{Dir: dir, Log: &log})
	require.NoError(t, err, log.String())
	t.Cleanup(func() { c.Stop() })
	require.Equal(t, "on", query(t, c.URL("postgres"), "SHOW fsync"))
	require.NoError(t, c.CreateDatabase(ctx, "keep"))
	query(t, c.URL("keep"), "SELECT 'x' FROM (SELECT 1) s") // connectable

	conn, err := pgx.Connect(ctx, c.URL("keep"))
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE TABLE t (v text); INSERT INTO t VALUES ('survives')")
	require.NoError(t, err)
	conn.Close(ctx)

	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	// The backends notice the postmaster's death and exit; wait for the
	// log pipe to close, which happens when the last of them is gone.
	select {
	case <-c.logDone:
	case <-time.After(30 * time.Second):
		t.Fatal("server processes did not exit after kill -9")
	}
	_, err = os.Stat(filepath.Join(dir, "postmaster.pid"))
	require.NoError(t, err, "kill -9 leaves postmaster.pid behind")
	c.unlock() // Its owner goes too, as when the whole machine restarts.

	c2, err := Start(ctx, Config{Dir: dir, Log: &log})
	require.NoError(t, err, log.String())
	t.Cleanup(func() { c2.Stop() })
	require.Equal(t, "survives", query(t, c2.URL("keep"), "SELECT v FROM t"))

	_, err = Start(ctx, Config{Dir: dir})
	require.ErrorContains(t, err, "already running")

	require.NoError(t, c2.Stop())
	_, err = os.Stat(filepath.Join(dir, "PG_VERSION"))
	require.NoError(t, err, "a given Dir is kept")
}

func TestStalePIDFromReusedPID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "pgdata")
	c, err := Start(ctx, Config{Dir: dir, Ephemeral: true})
	require.NoError(t, err)
	require.NoError(t, c.Stop())

	// Our own PID is alive and not a postmaster: the situation PostgreSQL
	// mistakes for a running server after a container restart.
	stale := strconv.Itoa(os.Getpid()) + "\n" + dir + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(stale), 0o600))

	c, err = Start(ctx, Config{Dir: dir, Ephemeral: true})
	require.NoError(t, err)
	require.NoError(t, c.Stop())
}

func TestRejectsNonEmptyNonClusterDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600))
	_, err := Start(context.Background(), Config{Dir: dir})
	require.ErrorContains(t, err, "neither empty nor a PostgreSQL cluster")
}

func TestMissingBinaries(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	saved := debianBinGlob
	debianBinGlob = filepath.Join(t.TempDir(), "*")
	t.Cleanup(func() { debianBinGlob = saved })
	_, err := Start(context.Background(), Config{})
	require.ErrorIs(t, err, ErrBinariesNotFound)
	require.ErrorContains(t, err, "apt-get install postgresql")
}

// envCrashDir makes the test binary, run again as a child, act as an owner that starts a cluster
// in that directory and then dies without stopping it (see TestStartAfterOwnerWasKilled).
const envCrashDir, envCrashPort = "PGCLUSTER_TEST_CRASH_DIR", "PGCLUSTER_TEST_CRASH_PORT"

// TestCrashingOwner is not a test: it is the child process of TestStartAfterOwnerWasKilled.
func TestCrashingOwner(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("only run as the child of TestStartAfterOwnerWasKilled")
	}
	port, _ := strconv.Atoi(os.Getenv(envCrashPort))
	ctx := context.Background()
	c, err := Start(ctx, Config{Dir: dir, Port: port})
	require.NoError(t, err)
	require.NoError(t, c.CreateDatabase(ctx, "keep"))
	conn, err := pgx.Connect(ctx, c.URL("keep"))
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE TABLE t (v text); INSERT INTO t VALUES ('survives the crash')")
	require.NoError(t, err)
	os.Stdout.WriteString("ready\n")
	select {} // until kill -9
}

// A `tend dev` killed with -9 leaves its Postgres running, on its port, with nobody to stop it.
// The next Start on that directory stops that server and starts its own, on the same port, and
// the data is all there.
func TestStartAfterOwnerWasKilled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "pgdata")
	port, err := freePort()
	require.NoError(t, err)

	owner := exec.Command(os.Args[0], "-test.run=^TestCrashingOwner$", "-test.v")
	owner.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashPort+"="+strconv.Itoa(port))
	var ownerOut syncBuffer
	owner.Stdout, owner.Stderr = &ownerOut, &ownerOut
	require.NoError(t, owner.Start())
	t.Cleanup(func() {
		// Whatever happens below, no server outlives the test (SIGQUIT: immediate shutdown).
		if b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0]); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGQUIT)
			}
		}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(ownerOut.String(), "ready\n") {
		require.True(t, time.Now().Before(deadline), "the owner did not start its cluster:\n%s", ownerOut.String())
		time.Sleep(50 * time.Millisecond)
	}
	require.NoError(t, owner.Process.Kill()) // SIGKILL: no Stop, no deferred anything
	_ = owner.Wait()

	orphan := postmasterPID(t, dir)
	require.NoError(t, syscall.Kill(orphan, 0), "the killed owner's postgres (pid %d) is still running", orphan)

	var log syncBuffer
	c, err := Start(ctx, Config{Dir: dir, Port: port, Log: &log})
	require.NoError(t, err, log.String())
	t.Cleanup(func() { c.Stop() })
	require.Equal(t, "survives the crash", query(t, c.URL("keep"), "SELECT v FROM t"))
	require.NotEqual(t, orphan, postmasterPID(t, dir), "a server of our own runs now")
	require.Contains(t, log.String(), "left running")

	// A live owner is another matter: its server is not taken away from it.
	_, err = Start(ctx, Config{Dir: dir})
	require.ErrorContains(t, err, "already running")
	require.Equal(t, "survives the crash", query(t, c.URL("keep"), "SELECT v FROM t"))
	require.NoError(t, c.Stop())
}

// postmaster.pid naming a process that no longer exists, with the rest of what a real server
// wrote there, does not stop the next start.
func TestStalePIDOfDeadProcess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "pgdata")
	c, err := Start(ctx, Config{Dir: dir, Ephemeral: true})
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	require.NoError(t, err)
	require.NoError(t, c.Stop())

	gone := exec.Command("true")
	require.NoError(t, gone.Run())
	_, rest, _ := strings.Cut(string(b), "\n")
	stale := strconv.Itoa(gone.Process.Pid) + "\n" + rest
	require.NoError(t, os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(stale), 0o600))

	c, err = Start(ctx, Config{Dir: dir, Ephemeral: true})
	require.NoError(t, err)
	require.NoError(t, c.Stop())
}

func postmasterPID(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	require.NoError(t, err)
	return pid
}

// A postmaster killed with -9 while a backend is busy leaves that backend running, attached to
// the shared memory; PostgreSQL refuses to start beside it. Start ends it and starts.
func TestStartAfterPostmasterKilledBesideABusyBackend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "pgdata")
	var log syncBuffer
	c, err := Start(ctx, Config{Dir: dir, Log: &log})
	require.NoError(t, err, log.String())
	t.Cleanup(func() { c.Stop() })
	require.NoError(t, c.CreateDatabase(ctx, "keep"))
	query(t, c.URL("keep"), "SELECT 'x' FROM (SELECT 1) s")
	conn, err := pgx.Connect(ctx, c.URL("keep"))
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE TABLE t (v text); INSERT INTO t VALUES ('survives')")
	require.NoError(t, err)
	busy, err := pgx.Connect(ctx, c.URL("keep"))
	require.NoError(t, err)
	var backend int
	require.NoError(t, busy.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend))
	t.Cleanup(func() {
		if cwd, _ := os.Readlink("/proc/" + strconv.Itoa(backend) + "/cwd"); cwd == dir {
			_ = syscall.Kill(backend, syscall.SIGKILL) // Should the test fail, it must not run on.
		}
	})
	go busy.Exec(ctx, "SELECT count(*) FROM generate_series(1, 100000000000)") // minutes of work
	time.Sleep(500 * time.Millisecond)

	require.NoError(t, syscall.Kill(postmasterPID(t, dir), syscall.SIGKILL))
	time.Sleep(time.Second)
	require.NoError(t, syscall.Kill(backend, 0), "the busy backend outlives its postmaster")
	c.unlock() // Its owner goes too.

	c2, err := Start(ctx, Config{Dir: dir, Log: &log})
	require.NoError(t, err, log.String())
	t.Cleanup(func() { c2.Stop() })
	require.Equal(t, "survives", query(t, c2.URL("keep"), "SELECT v FROM t"))
	// Gone, or a zombie waiting for a reaper (the test may run where no init reaps orphans).
	require.Eventually(t, func() bool {
		if syscall.Kill(backend, 0) != nil {
			return true
		}
		st, err := os.ReadFile("/proc/" + strconv.Itoa(backend) + "/stat")
		if err != nil {
			return true
		}
		f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
		return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
	}, 5*time.Second, 50*time.Millisecond, "the orphaned backend is gone")
	require.NoError(t, c2.Stop())
}
