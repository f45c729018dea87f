-- Sites that embed the form, the origins allowed to embed each, and the leads they capture.
-- Migrations are append-only: never edit one that has shipped; add a new file instead.

CREATE TABLE sites (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    consent_text    TEXT NOT NULL,
    consent_version TEXT NOT NULL,
    phone           TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

-- One row per allowed origin; the index on origin answers CORS preflights, which carry no site.
CREATE TABLE site_origins (
    site_id TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    origin  TEXT NOT NULL,
    PRIMARY KEY (site_id, origin)
) STRICT, WITHOUT ROWID;
CREATE INDEX site_origins_by_origin ON site_origins (origin);

CREATE TABLE leads (
    id                   TEXT PRIMARY KEY, -- UUIDv7: opaque to clients, ordered by creation
    site_id              TEXT NOT NULL REFERENCES sites (id),
    email                TEXT NOT NULL,
    name                 TEXT NOT NULL,
    company              TEXT,
    phone                TEXT,
    message              TEXT,
    consent_text_version TEXT NOT NULL,
    consent_ip           TEXT,
    page_url             TEXT,
    idempotency_key      TEXT NOT NULL,
    created_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (site_id, idempotency_key)
) STRICT;
CREATE INDEX leads_by_site_created ON leads (site_id, created_at);
