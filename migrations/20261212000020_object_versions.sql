-- The sync that wrote the catalog's database-wide objects document (`objects`), so that the
-- document a later write replaces is kept as a version (in `catalog_retired_rows`, as
-- `catalogs.objects`) for reads as of a past sync. NULL: written before this migration.
ALTER TABLE catalogs ADD COLUMN objects_written_by uuid;
