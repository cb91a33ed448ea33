-- Long-polling clients (GET /syncs/{id}?wait=) learn that a sync ended from a notification,
-- sent at the commit of the transaction that ended it.
CREATE FUNCTION notify_sync_finished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pgcs_sync_finished', NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER syncs_finished
    AFTER UPDATE OF status ON syncs
    FOR EACH ROW
    WHEN (NEW.status IN ('succeeded', 'failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION notify_sync_finished();
