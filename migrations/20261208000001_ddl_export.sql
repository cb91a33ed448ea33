-- What the DDL export (`GET /catalogs/{id}/ddl`) needs beyond the listed objects: each
-- function's full definition, each range type's options, and the extensions installed in
-- each schema (whose own functions and types the snapshot leaves out: `CREATE EXTENSION`
-- makes them).
ALTER TABLE catalog_functions ADD COLUMN definition text;
ALTER TABLE catalog_types ADD COLUMN range_options text;

CREATE TABLE catalog_extensions (
    catalog_id   uuid NOT NULL,
    schema_name  text NOT NULL,
    name         text NOT NULL,
    version      text,
    PRIMARY KEY (catalog_id, schema_name, name)
);

-- A snapshot written before holds none of these. Forgetting the sources' probes makes the next
-- sync of every catalog read its source whole (an unchanged probe skips the read); the schemas'
-- content hashes then differ from the stored ones, and the schemas are rewritten.
UPDATE catalogs SET source_probe = NULL;
