package content_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/pgtest"
)

// process is one server or worker: a pool of its own on the shared database.
func process(t *testing.T, url string) *db.Store {
	t.Helper()
	s, err := db.Open(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

func sharedDB(t *testing.T) string {
	t.Helper()
	url := pgtest.NewDB(t)
	s := process(t, url)
	_, err := s.Migrate(context.Background())
	require.NoError(t, err)
	return url
}

// watch starts a watcher over a fresh Live of the store, as tend server and tend worker do.
func watch(t *testing.T, store *db.Store, poll, listenRetry time.Duration) *content.Live {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	live, err := content.Open(ctx, store, seed(t), nil)
	require.NoError(t, err)
	w := &content.Watcher{Store: store, Live: live, Poll: poll, ListenRetry: listenRetry}
	done := make(chan struct{})
	go func() { defer close(done); w.Watch(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return live
}

// waitFor fails unless live holds sequences version n within 5 s, and returns how long it took.
func waitFor(t *testing.T, live *content.Live, n int) time.Duration {
	t.Helper()
	start := time.Now()
	require.Eventually(t, func() bool { return live.Current().Version(content.Sequences) == n }, 5*time.Second, 20*time.Millisecond,
		"sequences version %d not in use within 5s", n)
	return time.Since(start)
}

func waitListening(t *testing.T, store *db.Store, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		var c int
		err := store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND query = 'LISTEN tend_content'`).Scan(&c)
		return err == nil && c == n
	}, 5*time.Second, 20*time.Millisecond, "want %d listeners", n)
}

// Two workers pick up a version that a third process publishes, without a restart, within
// seconds: told by NOTIFY (their poll is a minute, far too slow to be what found it). The new
// catalog is the one they use.
func TestWatchersUseANewVersionWithoutRestart(t *testing.T) {
	t.Parallel()
	url := sharedDB(t)
	w1 := watch(t, process(t, url), time.Minute, 0)
	w2 := watch(t, process(t, url), time.Minute, 0)
	admin := process(t, url)
	waitListening(t, admin, 2)
	require.Equal(t, 1, w1.Current().Version(content.Sequences))
	before := w1.Current()

	seqs := strings.Replace(example(t, "sequences.yaml"), "wait: 1m", "wait: 90s", 1)
	_, _, err := content.Publish(context.Background(), admin, content.Source{content.Sequences: {"sequences.yaml": seqs}}, "marketing", false)
	require.NoError(t, err)
	for _, live := range []*content.Live{w1, w2} {
		waitFor(t, live, 2)
		seg, ok := live.Current().Catalog.Segment("analytics")
		require.True(t, ok)
		require.Equal(t, 90*time.Second, seg.Sequence.Steps[1].Wait, "the new wait is the one in use")
	}
	require.Equal(t, 1, before.Version(content.Sequences), "a Set taken before the swap stays as it was")
}

// A worker whose listening connection was killed still picks up a new version within seconds:
// its poll finds it (it listens again only after a minute).
func TestWatcherPollsWhenItsListenerIsGone(t *testing.T) {
	t.Parallel()
	url := sharedDB(t)
	live := watch(t, process(t, url), 500*time.Millisecond, time.Minute)
	admin := process(t, url)
	waitListening(t, admin, 1)
	_, err := admin.Pool().Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN tend_content'`)
	require.NoError(t, err)
	waitListening(t, admin, 0)

	seqs := strings.Replace(example(t, "sequences.yaml"), "wait: 1m", "wait: 90s", 1)
	_, _, err = content.Publish(context.Background(), admin, content.Source{content.Sequences: {"sequences.yaml": seqs}}, "marketing", false)
	require.NoError(t, err)
	waitFor(t, live, 2)
	waitListening(t, admin, 0) // it was the poll: nobody listens yet
}

// A version that does not build (written past apply, straight into the table) is not used:
// the content in use stays, and the next good version is picked up.
func TestWatcherKeepsTheContentWhenAVersionDoesNotBuild(t *testing.T) {
	t.Parallel()
	url := sharedDB(t)
	live := watch(t, process(t, url), 200*time.Millisecond, 0)
	admin := process(t, url)
	ctx := context.Background()
	_, err := admin.InsertContentVersion(ctx, db.NewContentVersion{Kind: "sequences", Files: map[string]string{"s.yaml": "version: 1\n"}, AppliedBy: "vandal"})
	require.NoError(t, err)
	time.Sleep(time.Second)
	require.Equal(t, 1, live.Current().Version(content.Sequences))
	require.NotNil(t, live.Current().Catalog)

	_, err = admin.InsertContentVersion(ctx, db.NewContentVersion{Kind: "sequences", Files: map[string]string{"s.yaml": example(t, "sequences.yaml")}, AppliedBy: "fix"})
	require.NoError(t, err)
	waitFor(t, live, 3)
}

// A tend whose published content does not build still starts, on its files, so that a fix can be
// published through it; the fix is then used.
func TestOpenRunsOnTheFilesWhenThePublishedContentDoesNotBuild(t *testing.T) {
	t.Parallel()
	url := sharedDB(t)
	admin := process(t, url)
	ctx := context.Background()
	_, err := content.Open(ctx, admin, seed(t), nil)
	require.NoError(t, err)
	_, err = admin.InsertContentVersion(ctx, db.NewContentVersion{Kind: "sequences", Files: map[string]string{"s.yaml": "version: 1\n"}, AppliedBy: "vandal"})
	require.NoError(t, err)

	live := watch(t, process(t, url), 200*time.Millisecond, 0)
	require.NotNil(t, live.Current().Catalog, "running on the files")
	require.Equal(t, 0, live.Current().Version(content.Sequences))

	_, _, err = content.Publish(ctx, admin, content.Source{content.Sequences: {"sequences.yaml": example(t, "sequences.yaml")}}, "fix", false)
	require.NoError(t, err)
	waitFor(t, live, 3)
}
