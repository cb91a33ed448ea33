-- A catalog's past states, for reads as of a sync (`?sync=`, `?as_of=`).
--
-- Every unit row (a schema's, a relation's) records the sync that wrote it. A snapshot write
-- sets `pgcs.sync_id` for its transaction, and the copy leaves the column to its default.
-- Rows stored before this migration have none: they count as written before every sync.
ALTER TABLE catalog_schemas
    ADD COLUMN written_by uuid DEFAULT (nullif(current_setting('pgcs.sync_id', true), '')::uuid);
ALTER TABLE catalog_relations
    ADD COLUMN written_by uuid DEFAULT (nullif(current_setting('pgcs.sync_id', true), '')::uuid);

-- The rows of the units a write replaced or removed, each as `to_jsonb` of its row without the
-- catalog id: a unit's version was valid from `written_by` (inclusive) to `retired_by`
-- (exclusive). Sync ids are UUID v7 and one catalog's syncs run one at a time in the order
-- they were queued, so comparing ids orders them. Housekeeping deletes a version once no
-- retained succeeded sync falls in its interval.
CREATE TABLE catalog_retired_rows (
    catalog_id    uuid  NOT NULL,
    retired_by    uuid  NOT NULL,
    written_by    uuid,
    -- The snapshot table the row is of.
    snapshot_table text NOT NULL,
    row           jsonb NOT NULL
);
CREATE INDEX catalog_retired_rows_by_catalog ON catalog_retired_rows (catalog_id, snapshot_table);

-- Past states made readable: the snapshot tables hold each one's rows under its own id (a
-- UUID v5 of the catalog and the sync), never listed as a catalog. Housekeeping deletes the
-- states nobody read for a while; a later read makes them again.
CREATE TABLE catalog_states (
    id          uuid        PRIMARY KEY,
    catalog_id  uuid        NOT NULL REFERENCES catalogs (id) ON DELETE CASCADE,
    sync_id     uuid        NOT NULL,
    made_at     timestamptz NOT NULL DEFAULT now(),
    read_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catalog_states_by_catalog ON catalog_states (catalog_id);
