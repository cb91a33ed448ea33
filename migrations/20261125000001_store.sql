-- The store: catalogs (one per source database), their syncs, and the latest snapshot of each
-- catalog's metadata. Snapshot rows are keyed by natural names so a whole snapshot is written
-- with one UNNEST insert per table, without id round trips.
--
-- Snapshot tables (catalog_*) carry catalog_id without a foreign key: they are written only by
-- a snapshot replacement, under the catalog's row lock, and deleted with it. A per-row foreign
-- key check would double the cost of writing a 200,000-column snapshot.

CREATE TABLE catalogs (
    id          uuid PRIMARY KEY,
    host        text        NOT NULL,
    port        integer     NOT NULL CHECK (port BETWEEN 1 AND 65535),
    dbname      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- When the current snapshot was written (NULL until the first successful sync).
    synced_at   timestamptz,
    -- Database-level facts of the current snapshot (name, server version, encoding, size).
    database    jsonb,
    UNIQUE (host, port, dbname)
);

-- GET /catalogs pages newest first.
CREATE INDEX catalogs_newest_first ON catalogs (created_at DESC, id DESC);

CREATE TABLE syncs (
    id            uuid PRIMARY KEY,
    catalog_id    uuid        NOT NULL REFERENCES catalogs (id) ON DELETE CASCADE,
    status        text        NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'retrying', 'succeeded', 'failed', 'cancelled')),
    attempts      integer     NOT NULL DEFAULT 0,
    max_attempts  integer     NOT NULL CHECK (max_attempts > 0),
    last_error    text,
    -- Where the metadata came from: 'database' or 'http'.
    source_kind   text,
    enqueued_at   timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    stats         jsonb
);

-- At most one active sync per catalog: POST /sync answers with the active one instead.
CREATE UNIQUE INDEX syncs_one_active_per_catalog ON syncs (catalog_id)
    WHERE status IN ('queued', 'running', 'retrying');
CREATE INDEX syncs_catalog_newest_first ON syncs (catalog_id, enqueued_at DESC, id DESC);

-- Every attempt of every sync: which worker ran it, when, and how it ended.
CREATE TABLE sync_attempts (
    sync_id     uuid        NOT NULL REFERENCES syncs (id) ON DELETE CASCADE,
    attempt     integer     NOT NULL,
    worker      text        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    error       text,
    PRIMARY KEY (sync_id, attempt)
);

CREATE TABLE catalog_schemas (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    catalog_id  uuid NOT NULL,
    name        text NOT NULL,
    owner       text,
    comment     text,
    UNIQUE (catalog_id, name)
);

CREATE TABLE catalog_relations (
    catalog_id       uuid   NOT NULL,
    schema_name      text   NOT NULL,
    name             text   NOT NULL,
    kind             text   NOT NULL,
    owner            text,
    comment          text,
    row_estimate     bigint,
    definition       text,
    parent_schema    text,
    parent_name      text,
    partition_bound  text,
    column_count     integer NOT NULL,
    PRIMARY KEY (catalog_id, schema_name, name)
);

CREATE TABLE catalog_columns (
    catalog_id     uuid    NOT NULL,
    schema_name    text    NOT NULL,
    relation_name  text    NOT NULL,
    ordinal        integer NOT NULL,
    name           text    NOT NULL,
    data_type      text    NOT NULL,
    nullable       boolean NOT NULL,
    default_expr   text,
    comment        text,
    PRIMARY KEY (catalog_id, schema_name, relation_name, ordinal)
);

CREATE TABLE catalog_constraints (
    catalog_id     uuid   NOT NULL,
    schema_name    text   NOT NULL,
    relation_name  text   NOT NULL,
    name           text   NOT NULL,
    kind           text   NOT NULL,
    columns        text[] NOT NULL,
    definition     text,
    ref_schema     text,
    ref_table      text,
    ref_columns    text[],
    PRIMARY KEY (catalog_id, schema_name, relation_name, name)
);

CREATE TABLE catalog_indexes (
    catalog_id     uuid    NOT NULL,
    schema_name    text    NOT NULL,
    relation_name  text    NOT NULL,
    name           text    NOT NULL,
    columns        text[]  NOT NULL,
    is_unique      boolean NOT NULL,
    is_primary     boolean NOT NULL,
    method         text,
    predicate      text,
    definition     text,
    PRIMARY KEY (catalog_id, schema_name, relation_name, name)
);
