-- A tx id is 64 hex digits: an index of its hash is a quarter the size
-- of one of the text, and costs ingestion less. A lookup compares the
-- hash, then the id.
DROP INDEX events_by_tx;
CREATE INDEX events_by_tx_hash ON events (hashtext(tx_id)) WHERE tx_id <> '';
