-- The functions, types, sequences, collations, statistics and text search configurations an
-- extension owns are stored with its name, so that a list can show them on request
-- (`?include_extension_objects=true`). Every list, count, comparison and DDL export leaves
-- them out by default, as pg_dump does. Rows stored before this migration are the schema
-- author's own (extensions' members were not read then).
ALTER TABLE catalog_functions ADD COLUMN extension text;
ALTER TABLE catalog_types ADD COLUMN extension text;
ALTER TABLE catalog_sequences ADD COLUMN extension text;
ALTER TABLE catalog_schema_objects ADD COLUMN extension text;
