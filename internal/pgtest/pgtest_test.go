package pgtest

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewDBIsolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	urlA, urlB := NewDB(t), NewDB(t)
	require.NotEqual(t, urlA, urlB)

	a, err := pgx.Connect(ctx, urlA)
	require.NoError(t, err)
	defer a.Close(ctx)
	b, err := pgx.Connect(ctx, urlB)
	require.NoError(t, err)
	defer b.Close(ctx)

	_, err = a.Exec(ctx, "CREATE TABLE leads (email text); INSERT INTO leads VALUES ('a@example.com')")
	require.NoError(t, err)

	var n int
	require.NoError(t, a.QueryRow(ctx, "SELECT count(*) FROM leads").Scan(&n))
	require.Equal(t, 1, n)

	var exists bool
	require.NoError(t, b.QueryRow(ctx, "SELECT to_regclass('public.leads') IS NOT NULL").Scan(&exists))
	require.False(t, exists, "a table made in one NewDB database is visible in another")

	// B can make its own table of the same name without a conflict.
	_, err = b.Exec(ctx, "CREATE TABLE leads (email text)")
	require.NoError(t, err)
}

func TestNewDBDroppedAtCleanup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var name string
	t.Run("inner", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, NewDB(t))
		require.NoError(t, err)
		require.NoError(t, conn.QueryRow(ctx, "SELECT current_database()").Scan(&name))
		// Left open on purpose: cleanup must still drop the database.
	})
	require.True(t, strings.HasPrefix(name, "t_testnewdbdroppedatcleanup_inner_"), name)

	admin, err := server()
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, admin)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n))
	require.Zero(t, n)
}

func TestDBNameFitsLimit(t *testing.T) {
	t.Parallel()
	name := dbName(strings.Repeat("VeryLong/Sub Test-", 20))
	require.LessOrEqual(t, len(name), 63)
	require.Regexp(t, `^t_[a-z0-9_]+_[0-9a-f]{12}$`, name)
}

func TestWithDatabaseKeepsServerAndOptions(t *testing.T) {
	t.Parallel()
	got, err := withDatabase("postgres://u:p@db.internal:6543/postgres?sslmode=require", "t_x_1")
	require.NoError(t, err)
	require.Equal(t, "postgres://u:p@db.internal:6543/t_x_1?sslmode=require", got)
}
