-- Sales handoffs: one row per (lead, handoff number, assignment). A reassignment closes the row
-- (outcome 'reassigned') and opens the next one for the new rep.
CREATE TABLE handoffs (
    id               bigserial PRIMARY KEY,
    lead_id          uuid NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    seq              integer NOT NULL,            -- the lead's nth handoff (a recycled lead can come back)
    assignment       integer NOT NULL,            -- 1 for the first rep, 2 after a reassignment …
    rep_id           text NOT NULL,
    manager_id       text NOT NULL DEFAULT '',
    policy           text NOT NULL,
    reason           text NOT NULL,               -- why the lead was handed off
    handed_off_at    timestamptz NOT NULL,
    due_at           timestamptz NOT NULL,
    accepted_at      timestamptz,
    responded_at     timestamptz,                 -- accept or reject
    response_seconds double precision,            -- wall-clock seconds from handoff to response
    outcome          text NOT NULL DEFAULT 'open' CHECK (outcome IN ('open', 'accepted', 'rejected', 'reassigned')),
    lapses           integer NOT NULL DEFAULT 0,
    reject_reason    text NOT NULL DEFAULT '',
    reject_note      text NOT NULL DEFAULT '',
    UNIQUE (lead_id, seq, assignment)
);
CREATE INDEX handoffs_rep_idx ON handoffs (rep_id, handed_off_at);
CREATE INDEX handoffs_open_idx ON handoffs (lead_id) WHERE outcome = 'open';

-- Every escalation notice: exactly one per lapse of a handoff.
CREATE TABLE escalations (
    id               bigserial PRIMARY KEY,
    handoff_id       bigint NOT NULL REFERENCES handoffs(id) ON DELETE CASCADE,
    lapse            integer NOT NULL,
    manager_id       text NOT NULL,
    overdue_seconds  double precision NOT NULL,
    notified_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (handoff_id, lapse)
);

-- Round-robin positions per territory, so assignment is fair across restarts and servers.
CREATE TABLE assignment_counters (
    territory  text PRIMARY KEY,
    counter    bigint NOT NULL DEFAULT 0
);

-- What sales learned: BANT qualification, opportunities and their outcome.
CREATE TABLE qualifications (
    id          bigserial PRIMARY KEY,
    lead_id     uuid NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    rep_id      text NOT NULL,
    budget      text NOT NULL DEFAULT '',
    authority   text NOT NULL DEFAULT '',
    need        text NOT NULL DEFAULT '',
    timeframe   text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE opportunities (
    id          bigserial PRIMARY KEY,
    lead_id     uuid NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    rep_id      text NOT NULL,
    opened_at   timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz,
    outcome     text NOT NULL DEFAULT 'open' CHECK (outcome IN ('open', 'won', 'lost')),
    value       numeric(14, 2),
    currency    text NOT NULL DEFAULT '',
    lost_reason text NOT NULL DEFAULT ''
);
CREATE INDEX opportunities_lead_idx ON opportunities (lead_id);

-- Sends may go to sales people too (handoff notices, escalations): those rows have no step and
-- are exactly-once by their own key.
CREATE TABLE notices (
    key         text PRIMARY KEY,               -- e.g. handoff:<id>:notice, escalation:<id>:<lapse>
    lead_id     uuid NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    kind        text NOT NULL,                  -- handoff, escalation, reminder
    recipient   text NOT NULL,                  -- a rep or manager id from the team file, not an address
    message_id  text NOT NULL UNIQUE,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts    integer NOT NULL DEFAULT 0,
    error       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
