-- The full catalog: more facts per relation, column, constraint and index; types, sequences,
-- functions, triggers and view dependencies.
--
-- Name search (?q=) filters one catalog's rows first (every primary key leads with
-- catalog_id), so no trigram index: it would cost far more on each snapshot write than it
-- saves on reads.

ALTER TABLE catalog_relations
    ADD COLUMN total_bytes   bigint,
    ADD COLUMN unlogged      boolean NOT NULL DEFAULT false,
    ADD COLUMN rls_enabled   boolean NOT NULL DEFAULT false,
    ADD COLUMN partition_key text;

-- Partitions of a parent, for the table detail.
CREATE INDEX catalog_relations_parent ON catalog_relations (catalog_id, parent_schema, parent_name)
    WHERE parent_name IS NOT NULL;

ALTER TABLE catalog_columns
    ADD COLUMN type_schema text,
    ADD COLUMN type_name   text,
    ADD COLUMN is_array    boolean NOT NULL DEFAULT false,
    ADD COLUMN identity    text,
    ADD COLUMN generated   text,
    ADD COLUMN collation_name text;

ALTER TABLE catalog_constraints
    ADD COLUMN on_update          text,
    ADD COLUMN on_delete          text,
    ADD COLUMN is_deferrable      boolean NOT NULL DEFAULT false,
    ADD COLUMN is_deferred        boolean NOT NULL DEFAULT false;

ALTER TABLE catalog_indexes
    ADD COLUMN include_columns text[] NOT NULL DEFAULT '{}';

CREATE TABLE catalog_types (
    catalog_id   uuid   NOT NULL,
    schema_name  text   NOT NULL,
    name         text   NOT NULL,
    kind         text   NOT NULL,          -- enum, domain, composite
    owner        text,
    comment      text,
    labels       text[],                   -- enum labels in order
    base_type    text,                     -- domain
    not_null     boolean NOT NULL DEFAULT false,
    default_expr text,
    checks       text[],                   -- domain CHECK constraints
    attributes   jsonb,                    -- composite: [{"name","type"}]
    PRIMARY KEY (catalog_id, schema_name, name)
);

CREATE TABLE catalog_sequences (
    catalog_id     uuid   NOT NULL,
    schema_name    text   NOT NULL,
    name           text   NOT NULL,
    data_type      text   NOT NULL,
    start_value    bigint NOT NULL,
    increment      bigint NOT NULL,
    min_value      bigint NOT NULL,
    max_value      bigint NOT NULL,
    cache          bigint NOT NULL,
    cycle          boolean NOT NULL,
    owned_by_table  text,
    owned_by_column text,
    PRIMARY KEY (catalog_id, schema_name, name)
);

CREATE TABLE catalog_functions (
    catalog_id   uuid NOT NULL,
    schema_name  text NOT NULL,
    name         text NOT NULL,
    arguments    text NOT NULL,            -- identity arguments: what tells overloads apart
    result       text,
    language     text NOT NULL,
    kind         text NOT NULL,            -- function, procedure, aggregate, window
    comment      text,
    PRIMARY KEY (catalog_id, schema_name, name, arguments)
);

CREATE TABLE catalog_triggers (
    catalog_id     uuid    NOT NULL,
    schema_name    text    NOT NULL,
    relation_name  text    NOT NULL,
    name           text    NOT NULL,
    timing         text    NOT NULL,       -- BEFORE, AFTER, INSTEAD OF
    events         text[]  NOT NULL,       -- INSERT, UPDATE, DELETE, TRUNCATE
    for_each       text    NOT NULL,       -- ROW, STATEMENT
    function       text    NOT NULL,
    enabled        boolean NOT NULL,
    definition     text    NOT NULL,
    PRIMARY KEY (catalog_id, schema_name, relation_name, name)
);

-- View lineage: view (schema_name, relation_name) reads relation (ref_schema, ref_name).
CREATE TABLE catalog_dependencies (
    catalog_id     uuid NOT NULL,
    schema_name    text NOT NULL,
    relation_name  text NOT NULL,
    ref_schema     text NOT NULL,
    ref_name       text NOT NULL,
    PRIMARY KEY (catalog_id, schema_name, relation_name, ref_schema, ref_name)
);
CREATE INDEX catalog_dependencies_ref ON catalog_dependencies (catalog_id, ref_schema, ref_name);

-- The schema include/exclude list a sync was asked for (NULL: all user schemas).
ALTER TABLE syncs ADD COLUMN schema_filter jsonb;
