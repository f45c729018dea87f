-- Follow-up: the outbox of messages each lead is due, written in the same D1 batch as the lead
-- so no acknowledged lead misses its follow-up; and the time a lead unsubscribed.

ALTER TABLE leads ADD COLUMN unsubscribed_at TEXT;

CREATE TABLE follow_ups (
    id                  TEXT PRIMARY KEY, -- "<lead id>/<step>": also the provider's idempotency key
    lead_id             TEXT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    step                INTEGER NOT NULL,
    channel             TEXT NOT NULL DEFAULT 'email',
    template            TEXT NOT NULL,
    due_at              INTEGER NOT NULL, -- Unix ms
    state               TEXT NOT NULL DEFAULT 'scheduled'
        CHECK (state IN ('scheduled', 'queued', 'sending', 'sent', 'dead', 'cancelled')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    last_error          TEXT,
    provider_message_id TEXT,
    updated_at          INTEGER NOT NULL, -- Unix ms
    UNIQUE (lead_id, step)
) STRICT;
CREATE INDEX follow_ups_due ON follow_ups (state, due_at);
