-- The storage-floor Worker's one table (a benchmark fixture, not leadglue's schema).
CREATE TABLE writes (id TEXT PRIMARY KEY, body TEXT NOT NULL) STRICT;
