-- The duplicate and scanner checks of opens and clicks ask, for a send and a link (an open has
-- none: -1), when a person last hit it within a window. This index answers that with one probe;
-- with an index on send_id alone Postgres visited every event of the send, its opens too, for
-- each click, and the more a send was clicked the slower the next click was.
CREATE INDEX events_send_human_idx ON events (send_id, type, (coalesce(link_idx, -1)), occurred_at)
    WHERE send_id IS NOT NULL AND NOT machine;
