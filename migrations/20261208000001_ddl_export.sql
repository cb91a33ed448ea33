-- What the DDL export (`GET /catalogs/{id}/ddl`) needs beyond the listed objects: each
-- function's full definition, each range type's options, and the extensions installed in
-- each schema (whose own functions and types the snapshot leaves out: `CREATE EXTENSION`
-- makes them).
-- A snapshot written before holds no definition: its schemas' content hashes no longer match
-- once the worker reads the definitions, so the next sync rewrites them.
ALTER TABLE catalog_functions ADD COLUMN definition text;
ALTER TABLE catalog_types ADD COLUMN range_options text;

CREATE TABLE catalog_extensions (
    catalog_id   uuid NOT NULL,
    schema_name  text NOT NULL,
    name         text NOT NULL,
    version      text,
    PRIMARY KEY (catalog_id, schema_name, name)
);
