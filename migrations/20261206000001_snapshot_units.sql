-- Each schema and relation of a snapshot is stored with the hash of its rows (`content_hash`),
-- so that a write compares the units it reads with the stored ones and writes only those that
-- changed. Rows stored before have no hash: they compare as changed once and are rewritten.
ALTER TABLE catalog_relations ADD COLUMN content_hash bytea;
ALTER TABLE catalog_schemas ADD COLUMN content_hash bytea;

-- The whole-snapshot fingerprint gives way to the units' hashes.
ALTER TABLE catalogs DROP COLUMN fingerprint;

-- The source probe is stored with the snapshot it was read with, never as a stand-in: the
-- marks of probes still to be taken mean "unknown".
UPDATE catalogs SET source_probe = NULL WHERE source_probe LIKE 'pending:%';

-- Detail documents are written in the snapshot's own transaction only.
DROP TABLE catalog_relation_details_staged;

-- A running sync's phase and how far it is, as `GET /syncs/{id}` shows it.
ALTER TABLE syncs ADD COLUMN progress jsonb;
