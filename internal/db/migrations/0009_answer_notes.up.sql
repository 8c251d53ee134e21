-- A rep's free-text note on an answer is stored here by the server before the answer goes to the
-- lead's workflow, which carries only the note's id: the text never enters Temporal's history,
-- and erasing the lead deletes it.
CREATE TABLE answer_notes (
    id         uuid PRIMARY KEY,
    lead_id    uuid NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    note       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX answer_notes_lead_idx ON answer_notes (lead_id);
