package db_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tendhq/tend/internal/db"
	"github.com/tendhq/tend/internal/dbtest"
)

// The backlog counts what the outbox has not delivered yet: a capture until its enrolment reaches
// Temporal, a stage change until the CRM took it.
func TestBacklogCountsUndeliveredOutboxRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := dbtest.Store(t)
	enrollments, crm, err := store.Backlog(ctx)
	require.NoError(t, err)
	assert.Zero(t, enrollments)
	assert.Zero(t, crm)

	c, err := store.RecordCapture(ctx, db.Capture{Email: "ada@example.com", Source: "api", Segment: "general", Stage: "lead"})
	require.NoError(t, err)
	require.NoError(t, store.SetStage(ctx, c.Lead.ID, "mql", "test", "scored", nil))
	enrollments, crm, err = store.Backlog(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), enrollments)
	assert.Equal(t, int64(1), crm, "the stage change waits for the CRM")

	require.NoError(t, store.MarkEnrollmentDelivered(ctx, c.EnrollmentID))
	enrollments, _, err = store.Backlog(ctx)
	require.NoError(t, err)
	assert.Zero(t, enrollments)
}
