-- The links of each send, recorded before the message leaves: a click token names a send and a
-- link index, and the redirect goes only to the URL stored here.
CREATE TABLE send_links (
    send_id  uuid NOT NULL REFERENCES sends(id) ON DELETE CASCADE,
    idx      integer NOT NULL,
    url      text NOT NULL,
    tag      text NOT NULL DEFAULT '',
    PRIMARY KEY (send_id, idx)
);

-- Engagement and behaviour: email opens and clicks, site events, unsubscribes, bounces.
-- Machine and duplicate events are stored but never scored.
CREATE TABLE events (
    id              bigserial PRIMARY KEY,
    lead_id         uuid NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    type            text NOT NULL,
    tags            text[] NOT NULL DEFAULT '{}',
    url             text NOT NULL DEFAULT '',
    send_id         uuid REFERENCES sends(id) ON DELETE SET NULL,
    link_idx        integer,
    client_event_id text,
    machine         boolean NOT NULL DEFAULT false,
    machine_reason  text NOT NULL DEFAULT '',
    duplicate       boolean NOT NULL DEFAULT false,
    user_agent      text NOT NULL DEFAULT '',
    occurred_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (lead_id, client_event_id)
);
CREATE INDEX events_lead_idx ON events (lead_id, occurred_at);
CREATE INDEX events_send_idx ON events (send_id) WHERE send_id IS NOT NULL;
CREATE INDEX events_received_idx ON events (received_at);

-- Every lifecycle stage change, with why and who.
CREATE TABLE stage_changes (
    id          bigserial PRIMARY KEY,
    lead_id     uuid NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    from_stage  text NOT NULL,
    to_stage    text NOT NULL,
    reason      text NOT NULL,
    actor       text NOT NULL DEFAULT 'tend',
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stage_changes_lead_idx ON stage_changes (lead_id, changed_at);

-- The lead's current score, as last computed from its events by the scoring model.
ALTER TABLE leads
    ADD COLUMN score            double precision NOT NULL DEFAULT 0,
    ADD COLUMN band             text NOT NULL DEFAULT 'cold',
    ADD COLUMN score_breakdown  jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN scored_at        timestamptz,
    ADD COLUMN handoff_ready_at timestamptz,
    ADD COLUMN handoff_reason   text NOT NULL DEFAULT '',
    ADD COLUMN opted_out_interests text[] NOT NULL DEFAULT '{}';
CREATE INDEX leads_stage_idx ON leads (stage);
CREATE INDEX leads_score_idx ON leads (score);
