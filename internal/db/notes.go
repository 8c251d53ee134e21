package db

import (
	"context"

	"github.com/google/uuid"
)

// SaveAnswerNote stores a rep's note on an answer for the lead and returns its id, which is all
// that travels to the lead's workflow.
func (s *Store) SaveAnswerNote(ctx context.Context, leadID, note string) (string, error) {
	id := uuid.NewString()
	_, err := s.pool.Exec(ctx, `INSERT INTO answer_notes (id, lead_id, note) VALUES ($1, $2, $3)`, id, leadID, truncate(note, 1000))
	if err != nil {
		return "", translate(err)
	}
	return id, nil
}

// AnswerNote returns the note with the id, if it belongs to the lead; ErrNotFound otherwise.
func (s *Store) AnswerNote(ctx context.Context, leadID, id string) (string, error) {
	if _, err := uuid.Parse(id); err != nil {
		return "", ErrNotFound
	}
	var note string
	err := s.pool.QueryRow(ctx, `SELECT note FROM answer_notes WHERE id = $1 AND lead_id = $2`, id, leadID).Scan(&note)
	return note, translate(err)
}

// DeleteAnswerNote removes a note once it was stored with its answer, or when the answer was
// refused.
func (s *Store) DeleteAnswerNote(ctx context.Context, id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return nil
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM answer_notes WHERE id = $1`, id)
	return translate(err)
}
