-- Sales can release a lead the screening kept as spam (a person taken for a bot), or keep one
-- as spam by hand. Such a change is recorded like the others, so a lead's history allows a
-- fourth field, `spam` (from and to: the spam reason, or NULL). SQLite cannot change a CHECK
-- in place: the table is rebuilt with everything in it.
CREATE TABLE lead_changes_new (
    lead_id    TEXT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL, -- the lead's version this change produced
    field      TEXT NOT NULL CHECK (field IN ('status', 'assignee', 'tags', 'spam')),
    from_value TEXT,
    to_value   TEXT,
    actor      TEXT NOT NULL,
    at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (lead_id, version, field)
) STRICT, WITHOUT ROWID;
INSERT INTO lead_changes_new (lead_id, version, field, from_value, to_value, actor, at)
    SELECT lead_id, version, field, from_value, to_value, actor, at FROM lead_changes;
DROP TABLE lead_changes;
ALTER TABLE lead_changes_new RENAME TO lead_changes;
