-- Search across catalogs (`GET /search`): schemas, relations and columns whose names or
-- comments match a query, case-insensitively and by trigram similarity (pg_trgm, a trusted
-- extension since PostgreSQL 13).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Every schema, relation and column name a snapshot has held, once. A search matches the
-- query against these distinct names (100 catalogs of the benchmark's 2,000 tables hold 4
-- million columns of 22 names), then looks up where the matching names occur.
-- Snapshot writes add the names of the units they write; names are never deleted, and one no
-- snapshot holds any more only costs a lookup that finds nothing.
CREATE TABLE search_names (
    name text PRIMARY KEY
);
CREATE INDEX search_names_trigrams ON search_names USING gin (lower(name) gin_trgm_ops);

INSERT INTO search_names
SELECT name FROM catalog_schemas
UNION SELECT name FROM catalog_relations
UNION SELECT unnest(names) FROM catalog_column_lists;

-- Where a name occurs.
CREATE INDEX catalog_schemas_by_name ON catalog_schemas (name);
CREATE INDEX catalog_relations_by_name ON catalog_relations (name);
CREATE INDEX catalog_column_lists_by_name ON catalog_column_lists USING gin (names);

-- Comments are matched where they are stored: a column list's comments as one text.
CREATE FUNCTION search_comments(comments text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT lower(array_to_string(comments, ' ')) $$;

CREATE INDEX catalog_schemas_comment_trigrams ON catalog_schemas
    USING gin (lower(comment) gin_trgm_ops) WHERE comment IS NOT NULL;
CREATE INDEX catalog_relations_comment_trigrams ON catalog_relations
    USING gin (lower(comment) gin_trgm_ops) WHERE comment IS NOT NULL;
CREATE INDEX catalog_column_lists_comment_trigrams ON catalog_column_lists
    USING gin (search_comments(comments) gin_trgm_ops) WHERE comments IS NOT NULL;
