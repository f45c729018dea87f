-- The Sales API: API keys (only a hash of each secret is kept), a lead's lifecycle status,
-- assignee and tags, the history of changes, notes, and erasure (the lead stays as an anonymous
-- tombstone so counts stay right).

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,  -- 16 hex digits, the public half of the key
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,     -- space-separated: leads:read leads:write admin
    secret_hash  TEXT NOT NULL,     -- SHA-256 of the secret half, hex
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_used_at TEXT,
    revoked_at   TEXT
) STRICT;

ALTER TABLE leads ADD COLUMN status TEXT NOT NULL DEFAULT 'lead'
    CHECK (status IN ('lead', 'prospect', 'customer', 'repeat_customer', 'disqualified'));
ALTER TABLE leads ADD COLUMN assignee TEXT;
ALTER TABLE leads ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'; -- JSON array of strings
-- Bumped by every change through the API, so concurrent changes cannot overwrite each other.
ALTER TABLE leads ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
-- Written by each change, so the statements of its batch can tell it was theirs that applied.
ALTER TABLE leads ADD COLUMN change_id TEXT;
ALTER TABLE leads ADD COLUMN erased_at TEXT;

-- Newest first over all sites, and the keyset the cursor continues from.
CREATE INDEX leads_by_created ON leads (created_at, id);

CREATE TABLE lead_changes (
    lead_id    TEXT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL, -- the lead's version this change produced
    field      TEXT NOT NULL CHECK (field IN ('status', 'assignee', 'tags')),
    from_value TEXT,
    to_value   TEXT,
    actor      TEXT NOT NULL,
    at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (lead_id, version, field)
) STRICT, WITHOUT ROWID;

CREATE TABLE lead_notes (
    id         TEXT PRIMARY KEY, -- UUIDv7
    lead_id    TEXT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    author     TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
CREATE INDEX lead_notes_by_lead ON lead_notes (lead_id, created_at);
