-- Runs once, when the data volume is first initialised (docker-entrypoint-initdb.d).
-- The pgvector image ships the extension but does not create it.
CREATE EXTENSION IF NOT EXISTS vector;
