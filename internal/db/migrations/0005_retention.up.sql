-- Retention: raw events older than the retention period are folded into daily aggregates per
-- lead, type and tags before they are deleted, so scores computed later still count them.
CREATE TABLE event_aggregates (
    lead_id    uuid NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    day        date NOT NULL,
    type       text NOT NULL,
    tags       text[] NOT NULL DEFAULT '{}',
    machine    boolean NOT NULL DEFAULT false,
    duplicate  boolean NOT NULL DEFAULT false,
    count      integer NOT NULL,
    UNIQUE (lead_id, day, type, tags, machine, duplicate)
);
