-- A paused schedule keeps its period and credentials but starts no re-sync until resumed.
ALTER TABLE catalog_schedules ADD COLUMN paused_at timestamptz;
