-- Leads: one row per person, keyed by the normalised email address.
CREATE TABLE leads (
    id          uuid PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    name        text NOT NULL DEFAULT '',
    company     text NOT NULL DEFAULT '',
    interests   text[] NOT NULL DEFAULT '{}',
    attributes  jsonb NOT NULL DEFAULT '{}',
    time_zone   text NOT NULL DEFAULT '',
    source      text NOT NULL,
    segment     text NOT NULL,
    stage       text NOT NULL DEFAULT 'lead',
    unsubscribed_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every capture of a lead (form, import, API), in order: the lead source history.
CREATE TABLE captures (
    id          bigserial PRIMARY KEY,
    lead_id     uuid NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    source      text NOT NULL,
    interests   text[] NOT NULL DEFAULT '{}',
    captured_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX captures_lead_idx ON captures (lead_id, captured_at);

-- Consent as given at capture time: what was agreed to, where, and when.
CREATE TABLE consents (
    id          bigserial PRIMARY KEY,
    lead_id     uuid NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    granted     boolean NOT NULL,
    purpose     text NOT NULL DEFAULT 'marketing',
    wording_id  text NOT NULL DEFAULT '',
    source      text NOT NULL,
    ip          text NOT NULL DEFAULT '',
    import_batch text NOT NULL DEFAULT '',
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consents_lead_idx ON consents (lead_id, recorded_at);

-- The enrolment outbox: written in the capture's transaction, delivered to Temporal
-- (signal-with-start) afterwards, retried by the reconciler until delivered.
CREATE TABLE enrollments (
    id           bigserial PRIMARY KEY,
    lead_id      uuid NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    segment      text NOT NULL,
    stage        text NOT NULL,
    time_zone    text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text NOT NULL DEFAULT ''
);
CREATE INDEX enrollments_pending_idx ON enrollments (created_at) WHERE delivered_at IS NULL;

-- Sends: exactly one row per (lead, sequence, step). The row is locked while its SMTP
-- transaction runs, so a concurrent or retried attempt can never mail twice.
CREATE TABLE sends (
    id           uuid PRIMARY KEY,
    lead_id      uuid NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    sequence_id  text NOT NULL,
    step_id      text NOT NULL,
    template     text NOT NULL,
    message_id   text NOT NULL UNIQUE,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'sent', 'failed', 'suppressed')),
    subject      text NOT NULL DEFAULT '',
    attempts     integer NOT NULL DEFAULT 0,
    smtp_code    integer NOT NULL DEFAULT 0,
    smtp_status  text NOT NULL DEFAULT '',
    error        text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    UNIQUE (lead_id, sequence_id, step_id)
);
CREATE INDEX sends_lead_idx ON sends (lead_id, created_at);

-- Addresses that must never be mailed again (hard bounce, complaint, manual).
CREATE TABLE suppressions (
    email       text PRIMARY KEY,
    reason      text NOT NULL,
    detail      text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
