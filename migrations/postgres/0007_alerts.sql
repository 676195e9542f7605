-- Alert episodes (Batch.Alerts), keyed as the bbolt file keys them so
-- cursors agree, and the webhook outbox (Batch.Deliveries).
CREATE TABLE alerts (
	source      text COLLATE "C" NOT NULL,
	starts_ns   bigint NOT NULL,
	rule        text COLLATE "C" NOT NULL,
	subject     text COLLATE "C" NOT NULL,
	state       text NOT NULL,
	ends_ns     bigint,  -- NULL while firing
	fingerprint text NOT NULL,
	labels      jsonb NOT NULL,
	annotations jsonb NOT NULL,
	updated_ns  bigint NOT NULL,
	PRIMARY KEY (source, starts_ns, rule, subject)
);
-- An evaluator's start: the newest episode of each (rule, subject).
CREATE INDEX alerts_latest ON alerts (source, rule, subject, starts_ns DESC);

CREATE TABLE deliveries (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	webhook          text COLLATE "C" NOT NULL,
	alert            jsonb NOT NULL,  -- the alert as its transition left it
	created_ns       bigint NOT NULL,
	attempts         bigint NOT NULL DEFAULT 0,
	next_attempt_ns  bigint NOT NULL DEFAULT 0,
	last_error       text NOT NULL DEFAULT '',
	claimed_by       text NOT NULL DEFAULT '',
	claimed_until_ns bigint NOT NULL DEFAULT 0
);
