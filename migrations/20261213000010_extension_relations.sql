-- The relations an extension owns (pg_partman's configuration, PostGIS's spatial_ref_sys) are
-- stored whole with its name, so that `/tables`, `/columns` and `/rules` can show them on
-- request (`?include_extension_objects=true`). Every other list, count, comparison and DDL
-- export leaves them out, as pg_dump does. Rows stored before this migration are the schema
-- author's own (extensions' relations were not read then).
ALTER TABLE catalog_relations ADD COLUMN extension text;
