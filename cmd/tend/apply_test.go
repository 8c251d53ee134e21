package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/api"
	"github.com/tendhq/tend/internal/content"
	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
	"github.com/tendhq/tend/internal/pgtest"
)

// contentServer is the admin API of a tend whose content was seeded from the example files, over
// a real Postgres; the CLI talks to it as to any tend server.
func contentServer(t *testing.T) (env func(string) string, store *db.Store) {
	t.Helper()
	store = dbtest.Store(t)
	seed := content.FileSeed{Sequences: "../../examples/sequences.yaml", Scoring: "../../examples/scoring.yaml", Sales: "../../examples/sales.yaml"}
	live, err := content.Open(context.Background(), store, seed.Read, nil)
	require.NoError(t, err)
	srv := &api.Server{Store: store, Live: live, APIKeys: []string{"cli-key-0123456789"}, KeyNames: map[string]string{"cli-key-0123456789": "ci"}}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	vars := map[string]string{"TEND_URL": hs.URL, "TEND_API_KEY": "cli-key-0123456789"}
	return func(k string) string { return vars[k] }, store
}

func tendWith(t *testing.T, env func(string) string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr, env)
	return stdout.String() + stderr.String(), err
}

func writeFileIn(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return p
}

// The marketer's round trip from the command line: a dry run shows the diff and publishes
// nothing, an apply publishes under the key's name, a file that does not build is refused with
// file:line, versions lists them, and a rollback republishes an old one.
func TestApplyFromTheCommandLine(t *testing.T) {
	t.Parallel()
	env, store := contentServer(t)
	dir := t.TempDir()
	orig, err := os.ReadFile("../../examples/sequences.yaml")
	require.NoError(t, err)
	changed := writeFileIn(t, dir, "sequences.yaml", strings.Replace(string(orig), "wait: 1m", "wait: 3m", 1))

	out, err := tendWith(t, env, "apply", changed, "--dry-run")
	require.NoError(t, err, out)
	assert.Contains(t, out, "--- sequences/sequences.yaml (version 1)\n+++ sequences/sequences.yaml (proposed)\n")
	assert.Contains(t, out, "-          wait: 1m\n+          wait: 3m\n")
	assert.Contains(t, out, "dry run: nothing published")
	latest, err := store.LatestContentVersions(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, latest["sequences"])

	out, err = tendWith(t, env, "apply", changed)
	require.NoError(t, err, out)
	assert.Contains(t, out, "published sequences version 2 (was 1), applied by ci")
	out, err = tendWith(t, env, "apply", changed, "../../examples/scoring.yaml")
	require.NoError(t, err, out)
	assert.Contains(t, out, "unchanged: sequences, scoring")
	assert.Contains(t, out, "nothing to publish")

	bad := writeFileIn(t, dir, "broken.yaml", strings.Replace(string(orig), "template: analytics-1", "template: analytics-9", 1))
	out, err = tendWith(t, env, "apply", bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nothing was published")
	assert.Contains(t, out, "broken.yaml:43: ")
	assert.Contains(t, out, "analytics-9")

	tpl := filepath.Join(dir, "templates")
	require.NoError(t, os.Mkdir(tpl, 0o755))
	writeFileIn(t, tpl, "analytics-1.html", "<p>Hi {{.FirstName}}</p>")
	writeFileIn(t, tpl, "analytics-1.txt", "Hi {{.FirstName}}")
	out, err = tendWith(t, env, "apply", "--pin", tpl)
	require.NoError(t, err, out)
	assert.Contains(t, out, "published templates version 2 (was 1), applied by ci, pinned")
	assert.Contains(t, out, "+++ templates/analytics-1.html (proposed)")

	out, err = tendWith(t, env, "versions", "--kind", "sequences")
	require.NoError(t, err, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.GreaterOrEqual(t, len(lines), 3, out)
	assert.Regexp(t, `^sequences\s+2 \*\s+\S+ \S+\s+ci\s`, lines[1])
	assert.Regexp(t, `^sequences\s+1\s+\S+ \S+\s+seed\s`, lines[2])

	out, err = tendWith(t, env, "apply", "--rollback", "1", "--kind", "sequences")
	require.NoError(t, err, out)
	assert.Contains(t, out, "published sequences version 3 (was 2)")
	assert.Contains(t, out, "+          wait: 1m\n")

	out, err = tendWith(t, env, "versions", "--output", "json")
	require.NoError(t, err, out)
	var listed struct {
		Versions []struct {
			Kind       string `json:"kind"`
			Version    int    `json:"version"`
			RollbackOf *int   `json:"rollback_of"`
		} `json:"versions"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &listed), out)
	require.Len(t, listed.Versions, 7)
	assert.Equal(t, 1, *listed.Versions[2].RollbackOf, "sequences 3 is a rollback to 1: %s", out)
}

func TestApplyTellsWhatIsWrongBeforeCallingTheServer(t *testing.T) {
	t.Parallel()
	env, _ := contentServer(t)
	dir := t.TempDir()
	odd := writeFileIn(t, dir, "odd.yaml", "hello: world\n")
	_, err := tendWith(t, env, "apply", odd)
	require.ErrorContains(t, err, "--kind")
	_, err = tendWith(t, env, "apply", "../../examples/sequences.yaml", "../../examples/sequences-production.yaml")
	require.ErrorContains(t, err, "are both sequences")
	_, err = tendWith(t, env, "apply", writeFileIn(t, dir, "x.html", "<p>"))
	require.ErrorContains(t, err, "tend apply DIR")
	_, err = tendWith(t, env, "apply", "--rollback", "1")
	require.ErrorIs(t, err, errUsage)
	_, err = tendWith(t, env, "apply", "--kind", "segments", odd)
	require.ErrorContains(t, err, `unknown kind "segments"`)
	_, err = tendWith(t, func(k string) string { return map[string]string{"TEND_URL": env("TEND_URL")}[k] }, "apply", "../../examples/scoring.yaml")
	require.ErrorContains(t, err, "TEND_API_KEY")
	_, err = tendWith(t, func(k string) string {
		return map[string]string{"TEND_URL": env("TEND_URL"), "TEND_API_KEY": "wrong"}[k]
	}, "versions")
	require.ErrorContains(t, err, "invalid API key")
}

func TestPauseAndResumeFromTheCommandLine(t *testing.T) {
	t.Parallel()
	env, store := contentServer(t)
	ctx := context.Background()

	out, err := tendWith(t, env, "sequences", "pause", "analytics-series", "--step", "deep-dive")
	require.NoError(t, err, out)
	assert.Contains(t, out, "paused analytics-series step deep-dive")
	paused, err := store.Paused(ctx, "analytics-series", "deep-dive")
	require.NoError(t, err)
	assert.True(t, paused)
	out, err = tendWith(t, env, "sequences", "pause", "analytics-series", "--step", "deep-dive")
	require.NoError(t, err, out)
	assert.Contains(t, out, "was paused already")

	_, err = tendWith(t, env, "sequences", "pause", "no-such-series")
	require.ErrorContains(t, err, `no sequence "no-such-series"`)

	out, err = tendWith(t, env, "sequences", "resume", "analytics-series", "--step", "deep-dive", "--ramp", "1h")
	require.NoError(t, err, out)
	assert.Contains(t, out, "resumed analytics-series step deep-dive")
	paused, err = store.Paused(ctx, "analytics-series", "deep-dive")
	require.NoError(t, err)
	assert.False(t, paused)
}

// A published version is simulated straight from the store: the calendar of version 1 and of
// version 2, whose deep-dive waits 3 minutes instead of 1, differ by exactly that.
func TestSimulateAPublishedVersion(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	store, err := db.Open(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(store.Close)
	_, err = store.Migrate(context.Background())
	require.NoError(t, err)
	seed := content.FileSeed{Sequences: "../../examples/sequences.yaml", Scoring: "../../examples/scoring.yaml", Sales: "../../examples/sales.yaml"}
	_, err = content.Open(context.Background(), store, seed.Read, nil)
	require.NoError(t, err)
	orig, err := os.ReadFile("../../examples/sequences.yaml")
	require.NoError(t, err)
	src := content.Source{content.Sequences: content.Files{"sequences.yaml": strings.Replace(string(orig), "wait: 1m", "wait: 3m", 1)}}
	_, _, err = content.Publish(context.Background(), store, src, "test", false)
	require.NoError(t, err)

	env := func(k string) string { return map[string]string{"DATABASE_URL": url}[k] }
	calendar := func(version string) string {
		out, err := tendWith(t, env, "sequences", "simulate", "--version", version, "--segment", "analytics", "--at", "2026-11-30T10:00", "--days", "1")
		require.NoError(t, err, out)
		return out
	}
	assert.Regexp(t, `Mon 30 Nov 2026 10:01 +\+1m +analytics-series/deep-dive`, calendar("1"))
	assert.Regexp(t, `Mon 30 Nov 2026 10:03 +\+3m +analytics-series/deep-dive`, calendar("2"))
	_, err = tendWith(t, env, "sequences", "simulate", "--version", "9", "--segment", "analytics")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--version 9")
	_, err = tendWith(t, env, "sequences", "simulate", "../../examples/sequences.yaml", "--version", "1")
	require.ErrorIs(t, err, errUsage, "a file and a version at once")
}
