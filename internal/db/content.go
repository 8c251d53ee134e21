package db

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ContentChannel is the channel a new content version is announced on (payload "kind:version").
const ContentChannel = "tend_content"

// ContentVersion is one published version of one kind of content.
type ContentVersion struct {
	Kind     string `json:"kind" db:"kind"`
	Version  int    `json:"version" db:"version"`
	Checksum string `json:"checksum" db:"checksum"`
	// Files maps each file name to its text; nil in listings.
	Files     map[string]string `json:"files,omitempty" db:"files"`
	AppliedBy string            `json:"applied_by" db:"applied_by"`
	AppliedAt time.Time         `json:"applied_at" db:"applied_at"`
	Pinned    bool              `json:"pinned" db:"pinned"`
	// RollbackOf is the version whose files this one republished; nil for a new text.
	RollbackOf *int `json:"rollback_of,omitempty" db:"rollback_of"`
}

// NewContentVersion is a version to publish: its number is the next of its kind.
type NewContentVersion struct {
	Kind      string
	Files     map[string]string
	AppliedBy string
	Pinned    bool
	// RollbackOf, when positive, is the version whose files these are.
	RollbackOf int
}

// ContentChecksum is the sha256 of the files' canonical JSON (keys in order): the same text
// has the same checksum wherever it was applied from.
func ContentChecksum(files map[string]string) string {
	if files == nil {
		files = map[string]string{}
	}
	b, _ := json.Marshal(files) // a map of strings always marshals; encoding/json sorts its keys
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ErrContentChanged is returned when a publish was checked against versions that are no longer
// the newest: another publish came first. Check again against the new ones.
var ErrContentChanged = errors.New("the published content changed since this change was checked")

// lockContent serialises the writers of content, so that two publishes (or two seeds) never take
// the same number and a publish checked against the newest versions stays checked against them
// until it commits: the lock lasts until the transaction ends. Publishes are rare; one lock for
// every kind keeps a change to one kind from slipping past the check of another.
func lockContent(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('tend_content'))`)
	return err
}

const contentColumns = `kind, version, checksum, files, applied_by, applied_at, pinned, rollback_of`

func insertContent(ctx context.Context, tx pgx.Tx, v NewContentVersion) (ContentVersion, error) {
	files := v.Files
	if files == nil {
		files = map[string]string{}
	}
	var rollback *int
	if v.RollbackOf > 0 {
		rollback = &v.RollbackOf
	}
	rows, err := tx.Query(ctx, `INSERT INTO content_versions (kind, version, checksum, files, applied_by, pinned, rollback_of)
		SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, $6 FROM content_versions WHERE kind = $1
		RETURNING `+contentColumns, v.Kind, ContentChecksum(files), files, v.AppliedBy, v.Pinned, rollback)
	if err != nil {
		return ContentVersion{}, err
	}
	return pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[ContentVersion])
}

// InsertContentVersions publishes the versions together, each numbered after the newest of its
// kind: all of them or, on an error, none. They are returned in kind order. expect, when not nil,
// is the newest version of each kind the change was checked against (0: none); if any kind has
// moved on since, nothing is published and the error is ErrContentChanged.
func (s *Store) InsertContentVersions(ctx context.Context, vs []NewContentVersion, expect map[string]int) ([]ContentVersion, error) {
	vs = slices.Clone(vs)
	slices.SortStableFunc(vs, func(a, b NewContentVersion) int { return strings.Compare(a.Kind, b.Kind) })
	var out []ContentVersion
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		out = out[:0]
		if err := lockContent(ctx, tx); err != nil {
			return err
		}
		if expect != nil {
			latest, err := latestVersions(ctx, tx)
			if err != nil {
				return err
			}
			for k, n := range expect {
				if latest[k] != n {
					return fmt.Errorf("%w: %s is at version %d, not %d", ErrContentChanged, k, latest[k], n)
				}
			}
		}
		for _, v := range vs {
			cv, err := insertContent(ctx, tx, v)
			if err != nil {
				return fmt.Errorf("publish %s: %w", v.Kind, err)
			}
			out = append(out, cv)
		}
		return nil
	})
	return out, err
}

// InsertContentVersion publishes one version, numbered after the newest of its kind.
func (s *Store) InsertContentVersion(ctx context.Context, v NewContentVersion) (ContentVersion, error) {
	out, err := s.InsertContentVersions(ctx, []NewContentVersion{v}, nil)
	if err != nil {
		return ContentVersion{}, err
	}
	return out[0], nil
}

// SeedContentVersion publishes v as version 1 of its kind unless the kind has a version already,
// and reports whether it did. Processes starting together seed once: the kind's lock makes the
// second wait and then find the first one's version.
func (s *Store) SeedContentVersion(ctx context.Context, v NewContentVersion) (bool, error) {
	seeded := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockContent(ctx, tx); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM content_versions WHERE kind = $1)`, v.Kind).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		if _, err := insertContent(ctx, tx, v); err != nil {
			return fmt.Errorf("seed %s: %w", v.Kind, err)
		}
		seeded = true
		return nil
	})
	return seeded, err
}

// LatestContent returns the newest version of kind, files included; ErrNotFound when the kind
// has none.
func (s *Store) LatestContent(ctx context.Context, kind string) (ContentVersion, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+contentColumns+` FROM content_versions WHERE kind = $1 ORDER BY version DESC LIMIT 1`, kind)
	if err != nil {
		return ContentVersion{}, translate(err)
	}
	v, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[ContentVersion])
	return v, translate(err)
}

// ContentVersion returns version n of kind, files included; ErrNotFound when there is none.
func (s *Store) ContentVersion(ctx context.Context, kind string, n int) (ContentVersion, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+contentColumns+` FROM content_versions WHERE kind = $1 AND version = $2`, kind, n)
	if err != nil {
		return ContentVersion{}, translate(err)
	}
	v, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[ContentVersion])
	return v, translate(err)
}

// ContentVersions lists the versions of kind (every kind when kind is ""), newest first, without
// their files.
func (s *Store) ContentVersions(ctx context.Context, kind string) ([]ContentVersion, error) {
	rows, err := s.pool.Query(ctx, `SELECT kind, version, checksum, NULL::jsonb AS files, applied_by, applied_at, pinned, rollback_of
		FROM content_versions WHERE $1 = '' OR kind = $1 ORDER BY kind, version DESC`, kind)
	if err != nil {
		return nil, translate(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[ContentVersion])
	if err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// LatestContentVersions returns the newest version number of every kind that has one: what a
// watcher polls, cheaply, to learn of a version it missed.
func (s *Store) LatestContentVersions(ctx context.Context) (map[string]int, error) {
	out, err := latestVersions(ctx, s.pool)
	return out, translate(err)
}

func latestVersions(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) (map[string]int, error) {
	rows, err := q.Query(ctx, `SELECT kind, max(version) FROM content_versions GROUP BY kind`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

// ContentListener holds a connection of its own that listens on ContentChannel.
type ContentListener struct {
	conn *pgx.Conn
}

// ListenContent takes a connection out of the pool for good (a listening connection must not be
// handed to other queries) and listens on ContentChannel with it.
func (s *Store) ListenContent(ctx context.Context) (*ContentListener, error) {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, translate(err)
	}
	conn := c.Hijack()
	if _, err := conn.Exec(ctx, "LISTEN "+ContentChannel); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, translate(err)
	}
	return &ContentListener{conn: conn}, nil
}

// Wait blocks until a notification arrives and returns its payload ("kind:version"). An error
// means the connection is gone (or ctx ended): listen again.
func (l *ContentListener) Wait(ctx context.Context) (string, error) {
	n, err := l.conn.WaitForNotification(ctx)
	if err != nil {
		return "", translate(err)
	}
	return n.Payload, nil
}

// PID is the listening connection's backend process id.
func (l *ContentListener) PID() uint32 { return l.conn.PgConn().PID() }

// Close closes the listening connection.
func (l *ContentListener) Close(ctx context.Context) error { return l.conn.Close(ctx) }

// PauseSequence pauses a sequence (step "") or one of its steps, and reports whether it was not
// paused already (a second pause keeps the first one's author and time).
func (s *Store) PauseSequence(ctx context.Context, sequenceID, stepID, by string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO sequence_pauses (sequence_id, step_id, paused_by) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, sequenceID, stepID, by)
	if err != nil {
		return false, translate(err)
	}
	return tag.RowsAffected() == 1, nil
}

// ResumeSequence lifts the pause of a sequence (step "") or of one step, and reports whether it
// was paused. Resuming the sequence does not lift pauses of single steps.
func (s *Store) ResumeSequence(ctx context.Context, sequenceID, stepID string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM sequence_pauses WHERE sequence_id = $1 AND step_id = $2`, sequenceID, stepID)
	if err != nil {
		return false, translate(err)
	}
	return tag.RowsAffected() == 1, nil
}

// Paused reports whether a send of the step must wait: its sequence or the step itself is paused.
func (s *Store) Paused(ctx context.Context, sequenceID, stepID string) (bool, error) {
	var paused bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sequence_pauses
		WHERE sequence_id = $1 AND (step_id = '' OR step_id = $2))`, sequenceID, stepID).Scan(&paused)
	return paused, translate(err)
}

// Pause is a paused sequence (StepID "") or step.
type Pause struct {
	SequenceID string    `json:"sequence_id" db:"sequence_id"`
	StepID     string    `json:"step_id,omitempty" db:"step_id"`
	PausedBy   string    `json:"paused_by" db:"paused_by"`
	PausedAt   time.Time `json:"paused_at" db:"paused_at"`
}

// Pauses lists what is paused, by sequence and step.
func (s *Store) Pauses(ctx context.Context) ([]Pause, error) {
	rows, err := s.pool.Query(ctx, `SELECT sequence_id, step_id, paused_by, paused_at FROM sequence_pauses ORDER BY sequence_id, step_id`)
	if err != nil {
		return nil, translate(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[Pause])
	return out, translate(err)
}

// HoldSend records that the lead's send of the step waits for a resume; holding it again keeps
// its first place in the queue.
func (s *Store) HoldSend(ctx context.Context, leadID, sequenceID, stepID string) error {
	if _, err := uuid.Parse(leadID); err != nil {
		return ErrNotFound
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO held_sends (lead_id, sequence_id, step_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		leadID, sequenceID, stepID)
	if pgErrCode(err) == "23503" { // foreign_key_violation: no such lead
		return ErrNotFound
	}
	return translate(err)
}

// ListHeldSends lists the sends held for the step (every step of the sequence when stepID is ""),
// in the order they fell due: the order a resume releases them in.
func (s *Store) ListHeldSends(ctx context.Context, sequenceID, stepID string) ([]HeldSend, error) {
	rows, err := s.pool.Query(ctx, `SELECT lead_id::text, sequence_id, step_id, held_at FROM held_sends
		WHERE sequence_id = $1 AND ($2 = '' OR step_id = $2) ORDER BY held_at, lead_id`, sequenceID, stepID)
	if err != nil {
		return nil, translate(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[HeldSend])
	return out, translate(err)
}

// ReleaseHeld removes a held send once it goes out (or its lead left), and reports whether it
// was held.
func (s *Store) ReleaseHeld(ctx context.Context, leadID, sequenceID, stepID string) (bool, error) {
	if _, err := uuid.Parse(leadID); err != nil {
		return false, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM held_sends WHERE lead_id = $1 AND sequence_id = $2 AND step_id = $3`, leadID, sequenceID, stepID)
	if err != nil {
		return false, translate(err)
	}
	return tag.RowsAffected() == 1, nil
}

// RecordConversion records that the lead reached the sequence's goal (eventID 0 when a stage,
// not an event, reached it) and reports whether this is its first conversion in the sequence:
// a retried activity counts once.
func (s *Store) RecordConversion(ctx context.Context, leadID, sequenceID, goal string, eventID int64, heldOut bool) (bool, error) {
	if _, err := uuid.Parse(leadID); err != nil {
		return false, ErrNotFound
	}
	var ev *int64
	if eventID > 0 {
		ev = &eventID
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO conversions (lead_id, sequence_id, goal, event_id, held_out) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT DO NOTHING`, leadID, sequenceID, goal, ev, heldOut)
	if pgErrCode(err) == "23503" {
		return false, ErrNotFound
	}
	if err != nil {
		return false, translate(err)
	}
	return tag.RowsAffected() == 1, nil
}

// pgErrCode is the SQLSTATE of a Postgres error, "" for anything else.
func pgErrCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// Converted reports whether the lead reached the goal of the sequence.
func (s *Store) Converted(ctx context.Context, leadID, sequenceID string) (bool, error) {
	if _, err := uuid.Parse(leadID); err != nil {
		return false, nil
	}
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM conversions WHERE lead_id = $1 AND sequence_id = $2)`, leadID, sequenceID).Scan(&ok)
	return ok, translate(err)
}
