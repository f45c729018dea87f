-- Forms with qualification questions (every stored version kept: leads name the version their
-- visitor answered, and old versions still score), and per-lead answers, score and attribution.

ALTER TABLE sites ADD COLUMN booking_url TEXT;
ALTER TABLE sites ADD COLUMN first_touch_attribution INTEGER NOT NULL DEFAULT 1
    CHECK (first_touch_attribution IN (0, 1));

CREATE TABLE forms (
    site_id    TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    form_id    TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version > 0),
    definition TEXT NOT NULL, -- JSON, a leadglue_shared::FormDefinition
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (site_id, form_id, version)
) STRICT, WITHOUT ROWID;

ALTER TABLE leads ADD COLUMN form_id TEXT NOT NULL DEFAULT 'default';
ALTER TABLE leads ADD COLUMN form_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE leads ADD COLUMN answers TEXT NOT NULL DEFAULT '{}';       -- JSON, by question id
ALTER TABLE leads ADD COLUMN score INTEGER NOT NULL DEFAULT 0;
ALTER TABLE leads ADD COLUMN grade TEXT NOT NULL DEFAULT 'cold'
    CHECK (grade IN ('hot', 'warm', 'cold'));
ALTER TABLE leads ADD COLUMN score_reasons TEXT NOT NULL DEFAULT '[]'; -- JSON
ALTER TABLE leads ADD COLUMN attribution TEXT NOT NULL DEFAULT '{}';   -- JSON
ALTER TABLE leads ADD COLUMN channel TEXT NOT NULL DEFAULT 'direct';
CREATE INDEX leads_by_site_grade ON leads (site_id, grade, created_at);
