package pgcluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// A restart drops the clients' sessions and keeps the data, the port and the settings; the server
// accepts connections again when Restart returns.
func TestRestartKeepsDataPortAndSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var log syncBuffer
	c, err := Start(ctx, Config{Ephemeral: true, Log: &log})
	require.NoError(t, err, log.String())
	t.Cleanup(func() { c.Stop() })
	require.NoError(t, c.CreateDatabase(ctx, "app"))
	port := c.Port()

	conn, err := pgx.Connect(ctx, c.URL("app"))
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before')")
	require.NoError(t, err)
	var before int
	require.NoError(t, conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&before))

	start := time.Now()
	require.NoError(t, c.Restart(ctx), log.String())
	t.Logf("restart took %s", time.Since(start))

	_, err = conn.Exec(ctx, "SELECT 1")
	require.Error(t, err, "the old session was disconnected")
	require.Equal(t, port, c.Port())
	require.Equal(t, "before", query(t, c.URL("app"), "SELECT v FROM kept"))
	require.Equal(t, "off", query(t, c.URL("postgres"), "SHOW fsync"), "settings of the first start are kept")
	require.Equal(t, "127.0.0.1", query(t, c.URL("postgres"), "SHOW listen_addresses"))
	require.NoError(t, c.Stop())
	require.GreaterOrEqual(t, strings.Count(log.String(), "database system is ready to accept connections"), 2,
		"the restarted server's log reaches Config.Log too")
}
