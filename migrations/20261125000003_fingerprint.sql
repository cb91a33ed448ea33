-- Change detection for re-syncs:
-- * fingerprint: a digest of the current snapshot's structure (without volatile statistics);
--   a re-read snapshot with the same fingerprint only refreshes its statistics.
-- * source_probe: a digest of the source's catalog state when the snapshot was read (one cheap
--   query on the source); a re-sync whose probe matches skips reading the catalog at all.
ALTER TABLE catalogs
    ADD COLUMN fingerprint  text,
    ADD COLUMN source_probe text;
