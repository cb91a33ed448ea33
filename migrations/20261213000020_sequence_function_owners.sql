-- The owners of sequences and functions, as of relations, types and schemas: the lists show
-- them, the history records a new owner, and the DDL export gives them back. Rows stored
-- before this migration name none until their schema's next write.
ALTER TABLE catalog_sequences ADD COLUMN owner text;
ALTER TABLE catalog_functions ADD COLUMN owner text;
