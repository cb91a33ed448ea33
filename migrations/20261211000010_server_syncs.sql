-- Whole-server syncs. A parent sync has no catalog: its job connects to the server, lists the
-- databases its selection (`databases`) admits, and queues one child sync per database through
-- the path POST /sync takes. `sync_children` links a parent to the sync that answers each
-- database (a new one, or the catalog's already active one: a sync may answer two parents),
-- and keeps the names the selection asked for that discovery did not find (`child_id` NULL).
ALTER TABLE syncs ALTER COLUMN catalog_id DROP NOT NULL;
ALTER TABLE syncs ADD COLUMN databases jsonb;
ALTER TABLE syncs ADD CONSTRAINT syncs_catalog_or_server
    CHECK ((catalog_id IS NULL) = (databases IS NOT NULL));

CREATE TABLE sync_children (
    parent_id uuid NOT NULL REFERENCES syncs (id) ON DELETE CASCADE,
    dbname    text NOT NULL,
    child_id  uuid REFERENCES syncs (id) ON DELETE CASCADE,
    PRIMARY KEY (parent_id, dbname)
);
CREATE INDEX sync_children_by_child ON sync_children (child_id) WHERE child_id IS NOT NULL;

-- How a parent's databases ended, as its `stats`.
CREATE FUNCTION server_sync_summary(parent uuid) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'databases', count(*),
        'succeeded', count(*) FILTER (WHERE c.status = 'succeeded'),
        'failed', count(*) FILTER (WHERE c.status = 'failed'),
        'cancelled', count(*) FILTER (WHERE c.status = 'cancelled'),
        'missing', count(*) FILTER (WHERE l.child_id IS NULL))
    FROM sync_children l LEFT JOIN syncs c ON c.id = l.child_id
    WHERE l.parent_id = parent
$$;

-- A parent that discovered its databases stays `running` until the last of its children ends,
-- in whatever state: the transaction that ends that child ends the parent as `succeeded`.
-- The parent's row is locked before its children are counted, so of two children ending at
-- once the second to commit sees the first ended. Discovery locks the children it links
-- before it counts them, for the same reason (see src/store/server_syncs.rs).
CREATE FUNCTION finish_parent_syncs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent uuid;
BEGIN
    FOR parent IN
        SELECT l.parent_id FROM sync_children l WHERE l.child_id = NEW.id ORDER BY l.parent_id
    LOOP
        PERFORM 1 FROM syncs WHERE id = parent AND status = 'running' FOR UPDATE;
        IF FOUND AND NOT EXISTS (
            SELECT 1 FROM sync_children l JOIN syncs c ON c.id = l.child_id
            WHERE l.parent_id = parent AND c.status IN ('queued', 'running', 'retrying')
        ) THEN
            UPDATE syncs
            SET status = 'succeeded', finished_at = now(), credentials = NULL, progress = NULL,
                stats = server_sync_summary(parent)
            WHERE id = parent;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER syncs_finish_parents
    AFTER UPDATE OF status ON syncs
    FOR EACH ROW
    WHEN (NEW.status IN ('succeeded', 'failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION finish_parent_syncs();

-- A parent has no catalog to announce.
CREATE OR REPLACE FUNCTION notify_sync_finished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.catalog_id IS NOT NULL THEN
        PERFORM pg_notify('pgcs_catalog_changed', NEW.catalog_id::text);
    END IF;
    PERFORM pg_notify('pgcs_sync_finished', NEW.id::text);
    RETURN NULL;
END
$$;
