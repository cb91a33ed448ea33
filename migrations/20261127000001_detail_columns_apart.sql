-- A relation's detail document leaves its columns out: readers take them from the relation's
-- column list (catalog_column_lists), which every snapshot writes anyway. They were four
-- fifths of a document's bytes, compressed, written and moved once more on every full write.
--
-- The documents already stored, and those that workers of an earlier version still write
-- during an upgrade, hold their columns: the default says so, and they are served as they are.
ALTER TABLE catalog_relation_details
    ADD COLUMN columns_inside boolean NOT NULL DEFAULT true;
ALTER TABLE catalog_relation_details_staged
    ADD COLUMN columns_inside boolean NOT NULL DEFAULT true;
