-- The CRM webhook's delivery state, one row per stage change, replacing the stream cursor: a
-- cursor over a bigserial passes a change whose transaction commits after a later one's, and
-- never comes back for it. A row is claimed with FOR UPDATE SKIP LOCKED while it is posted, so
-- several servers never post one change at once, and none is skipped.
--   pending    not tried yet
--   failed     the last attempt failed (last_error says why); tried again at next_attempt_at
--   delivered  the CRM answered 2xx
-- The row has no lead_id of its own: it belongs to the lead through its stage change, and goes
-- with it on erasure.
CREATE TABLE crm_deliveries (
    stage_change_id  bigint PRIMARY KEY REFERENCES stage_changes(id) ON DELETE CASCADE,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'failed', 'delivered')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text NOT NULL DEFAULT '',
    delivered_at     timestamptz
);
CREATE INDEX crm_deliveries_undelivered_idx ON crm_deliveries (stage_change_id) WHERE state <> 'delivered';

-- Every stage change gets its delivery row in the transaction that records it, whichever code
-- path inserts it.
CREATE FUNCTION crm_delivery_for_stage_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO crm_deliveries (stage_change_id) VALUES (NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER stage_changes_crm_delivery AFTER INSERT ON stage_changes
    FOR EACH ROW EXECUTE FUNCTION crm_delivery_for_stage_change();

-- Changes up to the old cursor were delivered; the rest are pending.
INSERT INTO crm_deliveries (stage_change_id, state)
SELECT c.id, CASE WHEN c.id <= coalesce((SELECT last_id FROM webhook_cursors WHERE name = 'crm'), 0)
                  THEN 'delivered' ELSE 'pending' END
FROM stage_changes c;

DROP TABLE webhook_cursors;
