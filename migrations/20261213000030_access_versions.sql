-- The sync that wrote the catalog's access facts (`access`: roles and default privileges), so
-- that the document a later write replaces is kept as a version (in `catalog_retired_rows`, as
-- `catalogs.access`) for reads as of a past sync, as the database objects' are. NULL: written
-- before this migration.
ALTER TABLE catalogs ADD COLUMN access_written_by uuid;
