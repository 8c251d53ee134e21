-- Content versions: the sequences, the scoring model, the sales team and the templates, each kind
-- numbered on its own. The newest version of a kind is the published one; a rollback publishes an
-- old version's files again as a new version. files maps each file name to its text.
CREATE TABLE content_versions (
    kind        text NOT NULL CHECK (kind IN ('sequences', 'scoring', 'sales', 'templates')),
    version     integer NOT NULL CHECK (version > 0),
    checksum    text NOT NULL,
    files       jsonb NOT NULL,
    applied_by  text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    -- pinned: running leads keep the version they run; only new enrolments take this one.
    pinned      boolean NOT NULL DEFAULT false,
    rollback_of integer,
    PRIMARY KEY (kind, version)
);

-- Every server and worker listens on tend_content and also polls, so a missed notification only
-- delays a new version by the poll interval.
CREATE FUNCTION content_versions_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('tend_content', NEW.kind || ':' || NEW.version);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER content_versions_notify AFTER INSERT ON content_versions
    FOR EACH ROW EXECUTE FUNCTION content_versions_notify();

-- A paused sequence (step_id '') or step: sends that fall due wait, in held_sends, until resumed.
CREATE TABLE sequence_pauses (
    sequence_id text NOT NULL,
    step_id     text NOT NULL DEFAULT '',
    paused_by   text NOT NULL,
    paused_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sequence_id, step_id)
);

-- The leads whose send fell due while its sequence or step was paused, in the order they fell due:
-- a resume spreads their sends over a ramp in this order.
CREATE TABLE held_sends (
    lead_id     uuid NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    sequence_id text NOT NULL,
    step_id     text NOT NULL,
    held_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (lead_id, sequence_id, step_id)
);
CREATE INDEX held_sends_step_idx ON held_sends (sequence_id, step_id, held_at);

-- A lead that reached its sequence's goal, once per sequence. held_out: the lead was in the
-- sequence's holdout group (received none of its emails), for measuring lift.
CREATE TABLE conversions (
    lead_id     uuid NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    sequence_id text NOT NULL,
    goal        text NOT NULL,
    event_id    bigint,
    held_out    boolean NOT NULL DEFAULT false,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (lead_id, sequence_id)
);
CREATE INDEX conversions_sequence_idx ON conversions (sequence_id, at);

-- Which variant of a step a send carried ('' for a step without variants), and the sequences
-- version it was sent under. A held_out row records a holdout lead's step: nothing was mailed.
ALTER TABLE sends ADD COLUMN variant text NOT NULL DEFAULT '';
ALTER TABLE sends ADD COLUMN content_version integer NOT NULL DEFAULT 0;
ALTER TABLE sends DROP CONSTRAINT sends_status_check;
ALTER TABLE sends ADD CONSTRAINT sends_status_check CHECK (status IN ('pending', 'sent', 'failed', 'suppressed', 'held_out'));
