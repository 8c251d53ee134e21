-- Where each outgoing webhook stream stands: the id of the last stage change delivered.
CREATE TABLE webhook_cursors (
    name     text PRIMARY KEY,
    last_id  bigint NOT NULL DEFAULT 0
);
