-- Spam screening settings per site, and duplicate suppression: a second submission with the
-- same email on the same site within the window updates the first lead instead of creating
-- another.

ALTER TABLE sites ADD COLUMN min_fill_seconds INTEGER NOT NULL DEFAULT 3
    CHECK (min_fill_seconds BETWEEN 0 AND 600);
ALTER TABLE sites ADD COLUMN duplicate_window_hours INTEGER NOT NULL DEFAULT 24
    CHECK (duplicate_window_hours BETWEEN 0 AND 8760);
ALTER TABLE sites ADD COLUMN turnstile_site_key TEXT;

ALTER TABLE leads ADD COLUMN resubmissions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE leads ADD COLUMN last_submitted_at TEXT;
CREATE INDEX leads_by_site_email ON leads (site_id, email COLLATE NOCASE, created_at);

-- Every accepted submission, by its idempotency key: which lead it created or updated. A replay
-- (the same key again) finds its row here and changes nothing. `request_id` is the id the
-- request that wrote the row would have given a new lead: it tells that request its own row
-- from an earlier one's.
CREATE TABLE submissions (
    site_id         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    lead_id         TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (site_id, idempotency_key)
) STRICT, WITHOUT ROWID;

INSERT INTO submissions (site_id, idempotency_key, lead_id, request_id, created_at)
SELECT site_id, idempotency_key, id, id, created_at FROM leads;
