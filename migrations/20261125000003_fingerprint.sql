-- A fingerprint of each catalog's current snapshot (its structure, without volatile
-- statistics), so that an unchanged re-sync skips the rewrite.
ALTER TABLE catalogs ADD COLUMN fingerprint text;
