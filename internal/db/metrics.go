package db

import "context"

// Backlog counts the outbox rows not yet delivered, for the metrics: enrolments not yet
// delivered to Temporal and stage changes not yet posted to the CRM webhook. Both counts are
// served by partial indexes over the undelivered rows, so they cost what the backlog is, not what
// the tables hold.
func (s *Store) Backlog(ctx context.Context) (enrollments, crm int64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM enrollments WHERE delivered_at IS NULL),
		(SELECT count(*) FROM crm_deliveries WHERE state <> 'delivered')`).Scan(&enrollments, &crm)
	return enrollments, crm, translate(err)
}
