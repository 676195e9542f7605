-- The runtime status of a leased source (store.SourceStatus as JSON),
-- written by its owner with every renewal, so any process can show every
-- source. NULL until the owner first reports.
ALTER TABLE leases ADD COLUMN status bytea;
