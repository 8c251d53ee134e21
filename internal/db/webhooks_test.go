package db_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/pgtest"
)

// Upgrading from the stream cursor: changes up to the cursor count as delivered, the rest are
// pending, and none is lost.
func TestCRMDeliveriesStartFromTheOldCursor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := db.Open(ctx, pgtest.NewDB(t))
	require.NoError(t, err)
	t.Cleanup(store.Close)
	all, err := db.Migrations()
	require.NoError(t, err)
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := store.Pool().Exec(ctx, sql, args...)
		require.NoError(t, err)
	}
	// The schema as 0006 left it, with three changes of which the CRM had taken the first two.
	exec(`CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
	for _, m := range all {
		if m.Version > 6 {
			continue
		}
		exec(m.SQL)
		exec(`INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
	}
	c, err := store.RecordCapture(ctx, db.Capture{Email: "ada@example.com", Source: "api", Segment: "general", Stage: "lead"})
	require.NoError(t, err)
	var ids []int64
	for _, to := range []string{"mql", "sal", "sql"} {
		var id int64
		require.NoError(t, store.Pool().QueryRow(ctx, `INSERT INTO stage_changes (lead_id, from_stage, to_stage, reason)
			VALUES ($1, 'x', $2, 'r') RETURNING id`, c.Lead.ID, to).Scan(&id))
		ids = append(ids, id)
	}
	exec(`INSERT INTO webhook_cursors (name, last_id) VALUES ('crm', $1)`, ids[1])

	_, err = store.Migrate(ctx)
	require.NoError(t, err)
	rows, err := store.Pool().Query(ctx, `SELECT state FROM crm_deliveries ORDER BY stage_change_id`)
	require.NoError(t, err)
	states, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.Equal(t, []string{"delivered", "delivered", "pending"}, states)

	claim, err := store.ClaimStageChange(ctx, nil)
	require.NoError(t, err)
	defer claim.Release(ctx)
	assert.Equal(t, ids[2], claim.Event.ID, "the change the CRM never got is the next to go")
	assert.Equal(t, "ada@example.com", claim.Event.Email)
	assert.Equal(t, "sql", claim.Event.To)
}
