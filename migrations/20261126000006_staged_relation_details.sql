-- The detail documents of a big snapshot, written by a second connection of the worker while
-- the first writes the snapshot's rows, then moved into catalog_relation_details by the
-- snapshot's own transaction (src/store/snapshot.rs), which commits them with everything else.
-- UNLOGGED: a row lives here only until that transaction ends; what a failed write leaves is
-- deleted by the catalog's next write or its deletion.
CREATE UNLOGGED TABLE catalog_relation_details_staged (
    catalog_id  uuid NOT NULL,
    generation  uuid NOT NULL,
    schema_name text NOT NULL,
    name        text NOT NULL,
    detail      text NOT NULL
);

CREATE INDEX catalog_relation_details_staged_generation
    ON catalog_relation_details_staged (catalog_id, generation);

-- Compressed here as in catalog_relation_details, so that moving a document there copies it
-- without compressing it again.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE catalog_relation_details_staged ALTER COLUMN detail SET COMPRESSION lz4';
EXCEPTION WHEN OTHERS THEN
    NULL;
END
$$;
