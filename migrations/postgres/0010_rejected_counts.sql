-- Counting records of the quarantine's bound (store.Rejected.Counted):
-- of one height's rejected records of one reason only a sample is kept
-- in full, and one row counts the rest, from key to last_key. A row kept
-- in full has counted 0 and stands for itself.
ALTER TABLE rejected ADD COLUMN counted bigint NOT NULL DEFAULT 0;
ALTER TABLE rejected ADD COLUMN last_key text COLLATE "C" NOT NULL DEFAULT '';
