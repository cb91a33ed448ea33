-- Change history: what each successful sync changed against the catalog's previous snapshot.
--
-- Rows outlive the sync that wrote them (sync_id is kept, not referenced), so the history of a
-- catalog survives the retention of old syncs; they go with their catalog.
CREATE TABLE catalog_changes (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    catalog_id     uuid        NOT NULL REFERENCES catalogs (id) ON DELETE CASCADE,
    sync_id        uuid        NOT NULL,
    changed_at     timestamptz NOT NULL DEFAULT now(),
    -- 'relation', 'column', 'constraint' or 'index'.
    object         text        NOT NULL,
    action         text        NOT NULL CHECK (action IN ('added', 'removed', 'altered')),
    schema_name    text        NOT NULL,
    relation_name  text        NOT NULL,
    -- The column, constraint or index; NULL for a relation.
    name           text,
    -- Added: after holds the object. Removed: before does. Altered: both hold only the
    -- attributes that changed.
    before         jsonb,
    after          jsonb
);

-- GET /catalogs/{id}/changes pages newest first; GET /syncs/{id}/changes lists one sync's.
CREATE INDEX catalog_changes_newest_first ON catalog_changes (catalog_id, id DESC);
CREATE INDEX catalog_changes_by_sync ON catalog_changes (sync_id, id);
