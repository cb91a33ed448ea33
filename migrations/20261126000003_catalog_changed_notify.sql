-- API processes cache what they read of a catalog's snapshot; they learn that a snapshot may
-- have changed from a notification on `pgcs_catalog_changed` (payload: the catalog id), sent at
-- the commit of the transaction that ended one of its syncs (a snapshot only changes there) or
-- deleted the catalog.
--
-- The catalog's notification goes first: a listener retires the catalog's cached reads before
-- it wakes the requests waiting for the sync, which may read the catalog next.
CREATE OR REPLACE FUNCTION notify_sync_finished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pgcs_catalog_changed', NEW.catalog_id::text);
    PERFORM pg_notify('pgcs_sync_finished', NEW.id::text);
    RETURN NULL;
END
$$;

CREATE FUNCTION notify_catalog_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pgcs_catalog_changed', OLD.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER catalogs_deleted
    AFTER DELETE ON catalogs
    FOR EACH ROW
    EXECUTE FUNCTION notify_catalog_deleted();
