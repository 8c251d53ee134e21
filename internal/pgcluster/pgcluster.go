// Package pgcluster owns a private PostgreSQL cluster run from the server
// binaries on PATH: `tend dev` keeps one under its data directory, and tests
// start a throwaway one.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Superuser is the role initdb creates and URL connects as.
const Superuser = "postgres"

// installHint tells a person how to get the binaries when they are missing.
const installHint = "install PostgreSQL (Debian/Ubuntu: apt-get install postgresql, or postgresql-15) and put its bin directory on PATH"

// ErrBinariesNotFound reports that initdb, pg_ctl or postgres is not on PATH.
var ErrBinariesNotFound = errors.New("PostgreSQL server binaries not found")

// Config says where the cluster lives and how it runs.
type Config struct {
	// Dir is the data directory. It is initialised with initdb when it does
	// not exist or is empty. When Dir is "", a temporary directory is used and
	// removed by Stop.
	Dir string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// Log receives the server's log and the output of initdb and pg_ctl; nil
	// discards it (the tail is still quoted in start errors).
	Log io.Writer
	// Ephemeral trades durability for speed (fsync and synchronous_commit
	// off). Only for data that may be lost, such as a test run's.
	Ephemeral bool
	// Settings are more server settings as name=value (max_connections=300),
	// given after tend's own, so they win.
	Settings []string
}

// Cluster is a running PostgreSQL server started by Start.
type Cluster struct {
	dir       string
	port      int
	removeDir bool
	log       io.Writer
	cred      *syscall.Credential
	bins      binaries
	logDone   chan struct{}
	// lock is the owner lock of a given data directory (see lockOwner); nil for a temporary one.
	lock *os.File
	// settings are Config.Settings.
	settings []string

	stopOnce sync.Once
	stopErr  error
}

type binaries struct{ initdb, pgCtl, postgres string }

// Start initialises the data directory if needed and starts the server,
// waiting until it accepts connections. It listens on 127.0.0.1 only.
//
// A given data directory has one owner at a time: while a Cluster runs on it,
// Start on the same directory fails, in this process or another. When the
// owner died without Stop (kill -9, a crash), its server may still be running;
// Start then stops that server (fast shutdown, so nothing committed is lost)
// and starts its own. The owner lock is the file Dir+".lock" beside the data
// directory.
//
// PostgreSQL refuses to run as root, so when the current process is root the
// server runs as the "postgres" system user, which then owns the data
// directory.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	bins, err := findBinaries()
	if err != nil {
		return nil, err
	}
	for _, kv := range cfg.Settings {
		if name, _, ok := strings.Cut(kv, "="); !ok || name == "" {
			return nil, fmt.Errorf("PostgreSQL setting %q: want name=value", kv)
		}
	}
	c := &Cluster{port: cfg.Port, log: cfg.Log, bins: bins, settings: cfg.Settings}
	if c.log == nil {
		c.log = io.Discard
	}
	if os.Geteuid() == 0 {
		if c.cred, err = postgresCredential(); err != nil {
			return nil, err
		}
	}

	if cfg.Dir == "" {
		// /tmp is world-searchable, so the postgres user can reach a
		// directory made here even when the tests' own temp dirs are 0700.
		dir, err := os.MkdirTemp("", "tend-pg-")
		if err != nil {
			return nil, fmt.Errorf("create temporary data directory: %w", err)
		}
		c.dir, c.removeDir = dir, true
	} else if c.dir, err = filepath.Abs(cfg.Dir); err != nil {
		return nil, fmt.Errorf("resolve data directory %q: %w", cfg.Dir, err)
	}

	if err := c.start(ctx, cfg.Ephemeral); err != nil {
		if c.removeDir {
			os.RemoveAll(c.dir)
		}
		c.unlock()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context, ephemeral bool) error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("create data directory %s: %w", c.dir, err)
	}
	if !c.removeDir {
		if err := c.lockOwner(); err != nil {
			return err
		}
	}
	initialised, err := hasCluster(c.dir)
	if err != nil {
		return err
	}
	if err := c.prepareDir(); err != nil {
		return err
	}
	if !initialised {
		if err := c.initdb(ctx, ephemeral); err != nil {
			return err
		}
	}
	if err := c.clearPrevious(ctx); err != nil {
		return err
	}
	if c.port == 0 {
		if c.port, err = freePort(); err != nil {
			return err
		}
	}
	return c.pgCtlStart(ctx, ephemeral)
}

// prepareDir gives the data directory the mode PostgreSQL insists on and,
// when running as root, hands it to the postgres user.
func (c *Cluster) prepareDir() error {
	if err := os.Chmod(c.dir, 0o700); err != nil {
		return fmt.Errorf("chmod data directory %s: %w", c.dir, err)
	}
	if c.cred == nil {
		return nil
	}
	if err := c.ensureTraversable(filepath.Dir(c.dir)); err != nil {
		return err
	}
	uid, gid := int(c.cred.Uid), int(c.cred.Gid)
	if fi, err := os.Stat(c.dir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid {
			return nil // Handed over on an earlier start.
		}
	}
	err := filepath.WalkDir(c.dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("chown data directory %s to postgres: %w", c.dir, err)
	}
	return nil
}

// ensureTraversable lets the postgres user search every directory from dir up
// to the root. Only the search bit is added, never read, so nothing becomes
// listable; a 0700 test temp dir becomes 0701.
func (c *Cluster) ensureTraversable(dir string) error {
	for {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("stat %s: %w", dir, err)
		}
		if !c.canSearch(fi) {
			mode := fi.Mode().Perm() | 0o001
			if err := os.Chmod(dir, mode); err != nil {
				return fmt.Errorf("let the postgres user reach the data directory: chmod o+x %s: %w", dir, err)
			}
			fmt.Fprintf(c.log, "pgcluster: added o+x to %s so the postgres user can reach the data directory\n", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}

func (c *Cluster) canSearch(fi os.FileInfo) bool {
	perm := fi.Mode().Perm()
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return perm&0o001 != 0
	}
	switch {
	case st.Uid == c.cred.Uid:
		return perm&0o100 != 0
	case st.Gid == c.cred.Gid || contains(c.cred.Groups, st.Gid):
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

func contains(list []uint32, v uint32) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func hasCluster(dir string) (bool, error) {
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return true, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("read data directory %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return false, fmt.Errorf("data directory %s is neither empty nor a PostgreSQL cluster (no PG_VERSION)", dir)
	}
	return false, nil
}

func (c *Cluster) initdb(ctx context.Context, ephemeral bool) error {
	args := []string{
		"-D", c.dir,
		"-U", Superuser,
		"-E", "UTF8",
		"--locale=C",
		"--auth-local=trust",
		"--auth-host=trust",
	}
	if ephemeral {
		args = append(args, "--no-sync")
	}
	var out bytes.Buffer
	cmd := c.command(ctx, c.bins.initdb, args...)
	cmd.Stdout = io.MultiWriter(&out, c.log)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initdb %s: %w\n%s", c.dir, err, tail(out.Bytes()))
	}
	return nil
}

// lockOwner takes the owner lock of the data directory: an exclusive flock on
// the file Dir+".lock", held until Stop. The kernel drops it when the process
// dies, however it dies, so a server found running on the directory while we
// hold the lock was left behind by an owner that is gone. The file names the
// owner's PID, for the error a second owner gets.
func (c *Cluster) lockOwner() error {
	path := c.dir + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open lock file of data directory %s: %w", c.dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := io.ReadAll(io.LimitReader(f, 64))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("a PostgreSQL server is already running on data directory %s for process %s, which is still running; stop it first",
				c.dir, strings.TrimSpace(string(b)))
		}
		return fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	c.lock = f
	return nil
}

func (c *Cluster) unlock() {
	if c.lock != nil {
		c.lock.Close() // Closing the only descriptor releases the flock.
		c.lock = nil
	}
}

// clearPrevious makes way for our server where a previous one left its mark.
// A server still running on the directory belongs to an owner that died
// without stopping it (we hold the owner lock): it is stopped, fast, and
// with it the port it holds. A postmaster.pid whose process is gone is
// deleted.
func (c *Cluster) clearPrevious(ctx context.Context) error {
	pid, running, err := c.runningPostmaster()
	if err != nil || !running {
		return err
	}
	fmt.Fprintf(c.log, "pgcluster: stopping PostgreSQL (pid %d) left running on %s by an owner that exited without stopping it\n", pid, c.dir)
	if err := c.pgCtlStop(ctx, "fast"); err != nil {
		fmt.Fprintf(c.log, "pgcluster: %v; trying an immediate shutdown\n", err)
		if err := c.pgCtlStop(ctx, "immediate"); err != nil {
			return fmt.Errorf("stop PostgreSQL (pid %d) left running on data directory %s: %w", pid, c.dir, err)
		}
	}
	return nil
}

// runningPostmaster reports the postmaster running on the data directory, if
// any, and deletes postmaster.pid left by a server that was killed.
// PostgreSQL does the latter itself unless the recorded PID has been reused by
// an unrelated process, which is common in containers where PIDs are small;
// so a postmaster.pid whose process is not a postmaster of this directory
// goes.
func (c *Cluster) runningPostmaster() (pid int, running bool, err error) {
	if _, err := os.Stat("/proc/self/cwd"); err != nil {
		return 0, false, nil // Without /proc we cannot tell; leave it to PostgreSQL.
	}
	path := filepath.Join(c.dir, "postmaster.pid")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read %s: %w", path, err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err = strconv.Atoi(strings.TrimSpace(line))
	if err == nil && pid > 0 && syscall.Kill(pid, 0) == nil {
		// A postmaster's working directory is always its data directory.
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil && cwd == c.dir {
			return pid, true, nil
		}
	}
	if err := c.endOrphanedBackends(); err != nil {
		return 0, false, err
	}
	if err := os.Remove(path); err != nil {
		return 0, false, fmt.Errorf("remove stale %s: %w", path, err)
	}
	fmt.Fprintf(c.log, "pgcluster: removed stale %s\n", path)
	return 0, false, nil
}

// endOrphanedBackends ends the server processes a killed postmaster left on
// the data directory. Most notice its death and exit at once, but one busy
// with a long query runs on and keeps the shared memory block attached, and
// PostgreSQL then refuses to start ("pre-existing shared memory block is
// still in use"). They are the processes running the postgres binary from the
// data directory; they get SIGQUIT (exit at once), then SIGKILL.
func (c *Cluster) endOrphanedBackends() error {
	bin, err := os.Stat(c.bins.postgres)
	if err != nil {
		return nil // Nothing to compare with; leave it to PostgreSQL.
	}
	orphans := func() []int {
		var pids []int
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err != nil || cwd != c.dir {
				continue
			}
			if exe, err := os.Stat(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && os.SameFile(exe, bin) {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	pids := orphans()
	if len(pids) == 0 {
		return nil
	}
	fmt.Fprintf(c.log, "pgcluster: ending %d server process(es) %v left on %s by a postmaster that was killed\n", len(pids), pids, c.dir)
	for _, sig := range []syscall.Signal{syscall.SIGQUIT, syscall.SIGKILL} {
		for _, pid := range pids {
			_ = syscall.Kill(pid, sig)
		}
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if pids = orphans(); len(pids) == 0 {
				return nil
			}
		}
	}
	return fmt.Errorf("server processes %v of a killed postmaster still run on data directory %s", pids, c.dir)
}

func (c *Cluster) pgCtlStart(ctx context.Context, ephemeral bool) error {
	settings := []string{
		"listen_addresses=127.0.0.1",
		"port=" + strconv.Itoa(c.port),
		"unix_socket_directories=" + c.socketDir(),
	}
	if ephemeral {
		settings = append(settings,
			"fsync=off",
			"synchronous_commit=off",
			"full_page_writes=off",
			"max_connections=200",
		)
	}
	settings = append(settings, c.settings...)
	var opts []string
	for _, s := range settings {
		// pg_ctl passes -o through /bin/sh, so each value is shell-quoted.
		opts = append(opts, "-c", shellQuote(s))
	}

	// The server inherits this pipe; copying from it until EOF follows the
	// server's whole life without pg_ctl's Wait blocking on it.
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("create log pipe: %w", err)
	}
	logTail := &tailBuffer{max: 8 << 10}
	c.logDone = make(chan struct{})
	go func() {
		defer close(c.logDone)
		defer r.Close()
		io.Copy(io.MultiWriter(logTail, c.log), r)
	}()

	cmd := c.command(ctx, c.bins.pgCtl, "start", "-w", "-t", "60",
		"-D", c.dir, "-o", strings.Join(opts, " "))
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Run()
	w.Close()
	if err != nil {
		// Give the copier a moment to collect the server's last words.
		select {
		case <-c.logDone:
		case <-time.After(500 * time.Millisecond):
		}
		return fmt.Errorf("start PostgreSQL in %s on port %d: %w\n%s", c.dir, c.port, err, logTail.String())
	}
	return nil
}

// socketDir is the data directory, unless the socket path would pass the
// kernel's 107-byte limit; then there is no Unix socket (we use TCP anyway).
func (c *Cluster) socketDir() string {
	if len(c.dir)+len("/.s.PGSQL.65535.lock") > 100 {
		return ""
	}
	return c.dir
}

// URL returns a connection URL for database as the superuser.
func (c *Cluster) URL(database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, c.port, url.PathEscape(database))
}

// Port returns the TCP port the server listens on.
func (c *Cluster) Port() int { return c.port }

// Dir returns the data directory.
func (c *Cluster) Dir() string { return c.dir }

// CreateDatabase creates database name; it is not an error if it exists.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	return CreateDatabase(ctx, c.URL("postgres"), name)
}

// CreateDatabase connects to the server at adminURL and creates database
// name; it is not an error if it exists.
func CreateDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("create database %q: connect: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("create database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %q: %w", name, err)
	}
	return nil
}

// Stop shuts the server down (fast mode: sessions are disconnected) and,
// when Start made a temporary data directory, removes it. It gives up the
// data directory to the next Start. Calling Stop again returns the first
// call's result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		defer c.unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := c.pgCtlStop(ctx, "fast"); err != nil {
			c.stopErr = err
			return
		}
		select {
		case <-c.logDone:
		case <-time.After(5 * time.Second):
		}
		if c.removeDir {
			if err := os.RemoveAll(c.dir); err != nil {
				c.stopErr = fmt.Errorf("remove temporary data directory: %w", err)
			}
		}
	})
	return c.stopErr
}

// pgCtlStop stops the server running on the data directory in the given
// shutdown mode and waits until it is gone.
func (c *Cluster) pgCtlStop(ctx context.Context, mode string) error {
	out, err := c.command(ctx, c.bins.pgCtl, "stop", "-w", "-t", "60", "-m", mode, "-D", c.dir).CombinedOutput()
	c.log.Write(out)
	if err != nil {
		return fmt.Errorf("stop PostgreSQL in %s: %w\n%s", c.dir, err, tail(out))
	}
	return nil
}

// command runs a PostgreSQL binary, as the postgres user when we are root.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	// A cwd the postgres user may not enter (root's home) upsets initdb.
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGDATA="+c.dir)
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

// debianBinGlob is where Debian's postgresql packages put the server binaries.
var debianBinGlob = "/usr/lib/postgresql/*/bin"

func findBinaries() (binaries, error) {
	var b binaries
	for _, x := range []struct {
		name string
		dst  *string
	}{{"initdb", &b.initdb}, {"pg_ctl", &b.pgCtl}, {"postgres", &b.postgres}} {
		path, err := exec.LookPath(x.name)
		if err != nil {
			// Debian's postgresql package keeps the server binaries off PATH.
			if m, _ := filepath.Glob(filepath.Join(debianBinGlob, x.name)); len(m) > 0 {
				path, err = m[len(m)-1], nil
			}
		}
		if err != nil {
			return b, fmt.Errorf("%w: %s is not on PATH; %s", ErrBinariesNotFound, x.name, installHint)
		}
		*x.dst = path
	}
	return b, nil
}

func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL must run as another user, but user \"postgres\" was not found (%w); %s, which creates it", err, installHint)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse uid of user postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse gid of user postgres: %w", err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(g))
			}
		}
	}
	return cred, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func tail(b []byte) string {
	const max = 4 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
