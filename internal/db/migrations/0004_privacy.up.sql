-- Privacy: the suppression list keeps a keyed hash of each address instead of the address itself,
-- so an erased person can be kept from being mailed again without tend remembering who they were.
--
-- The hash is HMAC-SHA256 under a key only the application holds, so existing rows cannot be
-- hashed here. Store.HashSuppressions(ctx, key) fills email_hash for rows that have only the clear
-- address and blanks that address; the server calls it at start-up. Until every writer and reader
-- of the list works by hash, the clear email column stays, nullable, with its unique constraint
-- (ON CONFLICT (email) still needs it; NULLs never conflict).
ALTER TABLE suppressions DROP CONSTRAINT suppressions_pkey;
ALTER TABLE suppressions ALTER COLUMN email DROP NOT NULL;
ALTER TABLE suppressions ADD CONSTRAINT suppressions_email_key UNIQUE (email);
ALTER TABLE suppressions ADD COLUMN email_hash bytea;
CREATE UNIQUE INDEX suppressions_email_hash_key ON suppressions (email_hash);
ALTER TABLE suppressions ADD CONSTRAINT suppressions_addressed
    CHECK (email IS NOT NULL OR email_hash IS NOT NULL);

-- One row per erased lead. lead_ref is a keyed hash of the lead id: enough to answer "was this
-- lead erased, and when?" for whoever holds the id, useless to anyone else. reason must not hold
-- personal data (say "gdpr request", not who asked).
CREATE TABLE erasures (
    id         bigserial PRIMARY KEY,
    erased_at  timestamptz NOT NULL DEFAULT now(),
    lead_ref   bytea NOT NULL,
    reason     text NOT NULL DEFAULT ''
);
CREATE INDEX erasures_lead_ref_idx ON erasures (lead_ref);
