-- What a sync needs to run again without its client: the source's connection details and the
-- password sealed under CREDENTIALS_KEY (never in clear). A sync keeps them while it may still
-- be retried by hand: they are removed when it succeeds, and by retention after it ended.
ALTER TABLE syncs ADD COLUMN credentials jsonb;

-- Retention deletes ended syncs older than its age, except each catalog's latest.
CREATE INDEX syncs_finished ON syncs (finished_at) WHERE finished_at IS NOT NULL;

-- Periodic re-syncs. A schedule holds the credentials its re-syncs need, sealed with the
-- catalog id; deleting the schedule deletes them.
CREATE TABLE catalog_schedules (
    catalog_id     uuid        PRIMARY KEY REFERENCES catalogs (id) ON DELETE CASCADE,
    every_seconds  bigint      NOT NULL CHECK (every_seconds > 0),
    credentials    jsonb       NOT NULL,
    schema_filter  jsonb,
    max_attempts   integer     NOT NULL CHECK (max_attempts > 0),
    next_run_at    timestamptz NOT NULL,
    last_run_at    timestamptz,
    last_sync_id   uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Workers look for due schedules.
CREATE INDEX catalog_schedules_due ON catalog_schedules (next_run_at);
