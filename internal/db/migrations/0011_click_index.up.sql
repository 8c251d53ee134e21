-- The duplicate and scanner checks read a send's recent events of one type: with an index on
-- send_id alone Postgres visited every event of the send, its opens too, for each click.
CREATE INDEX events_send_type_idx ON events (send_id, type, occurred_at) WHERE send_id IS NOT NULL;
