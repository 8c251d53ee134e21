package main

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// `tend bench` brings up its own stack, and every lead it captures gets exactly one first email;
// the events it posts are coalesced into at most one signal per request.
func TestBenchMeasuresAPrivateStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Postgres and Temporal")
	}
	r := tend(t, map[string]string{}, "bench", "--leads", "20", "--concurrency", "4", "--events", "6", "--batch", "6", "--sample", "5")
	require.NoError(t, r.err, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	assert.Contains(t, r.stdout, "capture      20 leads in ")
	assert.Contains(t, r.stdout, "first email  20/20 sent, 0 duplicates among the 20 the inbox kept")
	assert.Contains(t, r.stdout, "site events  120 in 20 requests")
	m := regexp.MustCompile(`the 6 site events cost ([0-9.]+) signals and ([0-9.]+) rescores`).FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	signals, _ := strconv.ParseFloat(m[1], 64)
	rescores, _ := strconv.ParseFloat(m[2], 64)
	assert.LessOrEqual(t, signals, 1.0, "one request per lead: at most one signal each")
	assert.GreaterOrEqual(t, rescores, 1.0, "every sampled lead rescored its events")
	assert.Regexp(t, `memory       heap in use \d+ MiB with 20 open lead workflows`, r.stdout)
	t.Log("\n" + r.stdout)
}

func TestBenchRejectsNonsenseSizes(t *testing.T) {
	r := tend(t, map[string]string{}, "bench", "--leads", "0")
	require.ErrorIs(t, r.err, errUsage)
	assert.Contains(t, r.err.Error(), "--leads")
}
