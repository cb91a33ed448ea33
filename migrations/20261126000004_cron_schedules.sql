-- A schedule runs every fixed period or on a cron pattern (UTC), one or the other.
ALTER TABLE catalog_schedules
    ALTER COLUMN every_seconds DROP NOT NULL,
    ADD COLUMN cron text,
    ADD CONSTRAINT catalog_schedules_one_period CHECK ((every_seconds IS NULL) <> (cron IS NULL));
