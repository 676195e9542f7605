-- evindex on PostgreSQL, version 1: the records, each source's bookkeeping
-- and the ingestion leases.
--
-- Plain SQL only (no extensions), so wire-compatible engines stay possible.
-- Text that is part of a key is COLLATE "C": rows then sort by their bytes,
-- the order of the bbolt keys, so the two backends page alike and a cursor
-- means the same on both. Times are int8 nanoseconds since the Unix epoch
-- (timestamptz keeps only microseconds), 0 for the zero time; uint32
-- indexes are int8 so every value fits.

CREATE TABLE sources (
	name              text COLLATE "C" PRIMARY KEY,
	kind              text NOT NULL DEFAULT '',
	-- epochs: all three set or all NULL
	epoch_genesis_ns  bigint,
	epoch_block_ns    bigint,
	epoch_blocks      bigint,
	meta              bytea,
	-- records currently stored, kept by Apply
	events            bigint NOT NULL DEFAULT 0,
	blocks            bigint NOT NULL DEFAULT 0,
	rewards           bigint NOT NULL DEFAULT 0,
	rejected          bigint NOT NULL DEFAULT 0,
	-- the checkpoint: NULL checkpoint_height means none yet
	checkpoint_height     bigint,
	checkpoint_block_id   text,
	checkpoint_time_ns    bigint,
	checkpoint_updated_ns bigint
);

-- Proven-scanned height ranges, disjoint and not touching.
CREATE TABLE coverage (
	source      text COLLATE "C" NOT NULL,
	from_height bigint NOT NULL,
	to_height   bigint NOT NULL,
	PRIMARY KEY (source, from_height)
);

-- Source-private values that change with the records (Batch.State).
CREATE TABLE source_state (
	source text COLLATE "C" NOT NULL,
	key    bytea NOT NULL,
	value  bytea NOT NULL,
	PRIMARY KEY (source, key)
);

CREATE TABLE events (
	source        text COLLATE "C" NOT NULL,
	height        bigint NOT NULL,
	tx_index      bigint NOT NULL,
	event_index   bigint NOT NULL,
	block_id      text NOT NULL,
	block_time_ns bigint NOT NULL,
	tx_id         text COLLATE "C" NOT NULL,
	type          text COLLATE "C" NOT NULL,
	contract      text COLLATE "C" NOT NULL,
	addresses     text[] NOT NULL, -- as written, order and repeats kept
	payload       bytea,           -- the upstream's JSON, byte for byte
	PRIMARY KEY (source, height, tx_index, event_index)
);
CREATE INDEX events_by_type ON events (type, source, height, tx_index, event_index);
CREATE INDEX events_by_contract ON events (contract, source, height, tx_index, event_index) WHERE contract <> '';
CREATE INDEX events_by_tx ON events (tx_id) WHERE tx_id <> '';

-- One row per distinct non-empty address of an event: the address lookup
-- pages in key order through this primary key.
CREATE TABLE event_addresses (
	address     text COLLATE "C" NOT NULL,
	source      text COLLATE "C" NOT NULL,
	height      bigint NOT NULL,
	tx_index    bigint NOT NULL,
	event_index bigint NOT NULL,
	PRIMARY KEY (address, source, height, tx_index, event_index)
);

CREATE TABLE blocks (
	source        text COLLATE "C" NOT NULL,
	height        bigint NOT NULL,
	block_id      text NOT NULL,
	block_time_ns bigint NOT NULL,
	event_count   bigint NOT NULL,
	status        text NOT NULL,
	PRIMARY KEY (source, height)
);

-- A reward's identity is (source, account, time_key, id); time_key is the
-- time in nanoseconds, 0 before 1970, as in the bbolt key.
CREATE TABLE rewards (
	source          text COLLATE "C" NOT NULL,
	account         text COLLATE "C" NOT NULL,
	time_key        bigint NOT NULL,
	id              text COLLATE "C" NOT NULL,
	kind            text NOT NULL,
	height          bigint,          -- NULL: the reward has no height
	time_ns         bigint NOT NULL,
	period_start_ns bigint,          -- NULL: not a period reward
	period_end_ns   bigint,
	amount          numeric NOT NULL, -- exact, in base units
	unit            text NOT NULL,
	decimals        bigint NOT NULL,
	aliases         text[] NOT NULL,
	details         bytea,
	PRIMARY KEY (source, account, time_key, id)
);
CREATE INDEX rewards_by_account ON rewards (account, source, time_key, id);
CREATE INDEX rewards_by_height ON rewards (source, height) WHERE height IS NOT NULL;

CREATE TABLE reward_aliases (
	alias    text COLLATE "C" NOT NULL,
	source   text COLLATE "C" NOT NULL,
	account  text COLLATE "C" NOT NULL,
	time_key bigint NOT NULL,
	id       text COLLATE "C" NOT NULL,
	PRIMARY KEY (alias, source, account, time_key, id)
);

CREATE TABLE node_status (
	source    text COLLATE "C" NOT NULL,
	node      text COLLATE "C" NOT NULL,
	time_key  bigint NOT NULL,
	time_ns   bigint NOT NULL,
	connected boolean,
	synced    boolean,
	details   bytea,
	PRIMARY KEY (source, node, time_key)
);

-- The latest snapshot of each node: a late older snapshot does not
-- replace it.
CREATE TABLE node_latest (
	source    text COLLATE "C" NOT NULL,
	node      text COLLATE "C" NOT NULL,
	time_ns   bigint NOT NULL,
	connected boolean,
	synced    boolean,
	details   bytea,
	PRIMARY KEY (source, node)
);

-- Upstream records that failed validation, quarantined with the
-- checkpoint that passes them (Batch.Rejected).
CREATE TABLE rejected (
	source   text COLLATE "C" NOT NULL,
	height   bigint NOT NULL,
	key      text COLLATE "C" NOT NULL,
	kind     text NOT NULL,
	field    text NOT NULL,
	reason   text NOT NULL,
	raw      bytea NOT NULL,
	raw_size bigint NOT NULL,
	time_ns  bigint NOT NULL,
	PRIMARY KEY (source, height, key)
);

-- Which process ingests a source. generation grows with every change of
-- owner; Apply checks it inside its transaction (fencing). Expiry is in
-- the database's clock, so hosts' clocks never have to agree.
CREATE TABLE leases (
	source     text COLLATE "C" PRIMARY KEY,
	owner      text NOT NULL,  -- '' when released
	generation bigint NOT NULL,
	expires_at timestamptz NOT NULL
);
