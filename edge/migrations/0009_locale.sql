-- The language of a site's emails (leadglue_shared::locale::Locale).

ALTER TABLE sites ADD COLUMN locale TEXT NOT NULL DEFAULT 'en';
