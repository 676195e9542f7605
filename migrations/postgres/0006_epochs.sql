-- Rewards that name the epoch they pay (Reward.Epoch), sources whose
-- rewards do (Epochs.Named), and each epoch's network payout
-- (Batch.EpochTotals).
ALTER TABLE rewards ADD COLUMN epoch bigint; -- NULL: the reward names no epoch
ALTER TABLE sources ADD COLUMN epoch_named boolean;

CREATE TABLE epoch_totals (
	source    text COLLATE "C" NOT NULL,
	epoch     bigint NOT NULL,
	height    bigint NOT NULL,
	time_ns   bigint NOT NULL,
	total     numeric NOT NULL,
	from_fees numeric NOT NULL,
	minted    numeric NOT NULL,
	burned    numeric NOT NULL,
	unit      text NOT NULL,
	decimals  bigint NOT NULL,
	PRIMARY KEY (source, epoch)
);
