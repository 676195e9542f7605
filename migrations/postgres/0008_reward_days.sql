-- The rewards' count and exact sum per UTC day, source, account, unit,
-- kind and decimals, which summaries of whole days read instead of the
-- rewards (as the bbolt store's reward_days buckets). A reward counts
-- under its account (name = account) and once under each distinct alias
-- other than its account (name = the alias). day is 0 for the zero time
-- (time_ns 0), else 1 + days since 1970-01-01 UTC.
--
-- Triggers keep the totals in the statement that writes or deletes the
-- rewards, so no write path (Apply's upserts, a revert's delete, a copy)
-- can leave them behind; the existing rewards are summed once here.
CREATE TABLE reward_days (
	source   text COLLATE "C" NOT NULL,
	name     text COLLATE "C" NOT NULL,
	day      bigint NOT NULL,
	account  text COLLATE "C" NOT NULL,
	unit     text COLLATE "C" NOT NULL,
	kind     text COLLATE "C" NOT NULL,
	decimals bigint NOT NULL,
	count    bigint NOT NULL,
	amount   numeric NOT NULL,
	PRIMARY KEY (source, name, day, account, unit, kind, decimals)
);
-- A summary of one account without a source.
CREATE INDEX reward_days_by_name ON reward_days (name, day);

CREATE FUNCTION reward_day(time_ns bigint) RETURNS bigint
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT CASE WHEN time_ns = 0 THEN 0 ELSE 1 + time_ns / 86400000000000 END $$;

-- The names a reward counts under: its account and its other aliases.
CREATE FUNCTION reward_day_names(account text, aliases text[]) RETURNS SETOF text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT account UNION SELECT a FROM unnest(aliases) a WHERE a <> account $$;

-- A signed change of the totals: a reward written (1) or gone (-1).
CREATE TYPE reward_day_change AS (source text, account text, aliases text[], time_ns bigint,
	unit text, kind text, decimals bigint, amount numeric, sign int);

-- reward_days_add adds changes to the totals and deletes those that no
-- reward is left in.
CREATE FUNCTION reward_days_add(changes reward_day_change[]) RETURNS void LANGUAGE sql AS $$
	INSERT INTO reward_days AS d (source, name, day, account, unit, kind, decimals, count, amount)
	SELECT c.source, n.name, reward_day(c.time_ns), c.account, c.unit, c.kind, c.decimals, sum(c.sign), sum(c.sign * c.amount)
	FROM unnest(changes) c, reward_day_names(c.account, c.aliases) n(name)
	GROUP BY 1, 2, 3, 4, 5, 6, 7
	ON CONFLICT (source, name, day, account, unit, kind, decimals)
	DO UPDATE SET count = d.count + excluded.count, amount = d.amount + excluded.amount;
	DELETE FROM reward_days WHERE count = 0;
$$;
-- Totals at zero exist only between the two statements above: this
-- index finds them without reading the table.
CREATE INDEX reward_days_empty ON reward_days (source) WHERE count = 0;

-- reward_days_count is the triggers' function: the statement's rewards,
-- from its transition tables, each with its sign.
CREATE FUNCTION reward_days_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		PERFORM reward_days_add(ARRAY(SELECT ROW(source, account, aliases, time_ns, unit, kind, decimals, amount, 1)::reward_day_change
			FROM new_rewards));
	ELSIF TG_OP = 'DELETE' THEN
		PERFORM reward_days_add(ARRAY(SELECT ROW(source, account, aliases, time_ns, unit, kind, decimals, amount, -1)::reward_day_change
			FROM old_rewards));
	ELSE
		PERFORM reward_days_add(ARRAY(SELECT ROW(source, account, aliases, time_ns, unit, kind, decimals, amount, 1)::reward_day_change
			FROM new_rewards UNION ALL
			SELECT ROW(source, account, aliases, time_ns, unit, kind, decimals, amount, -1)::reward_day_change
			FROM old_rewards));
	END IF;
	RETURN NULL;
END $$;

CREATE TRIGGER reward_days_insert AFTER INSERT ON rewards REFERENCING NEW TABLE AS new_rewards
	FOR EACH STATEMENT EXECUTE FUNCTION reward_days_count();
CREATE TRIGGER reward_days_update AFTER UPDATE ON rewards REFERENCING OLD TABLE AS old_rewards NEW TABLE AS new_rewards
	FOR EACH STATEMENT EXECUTE FUNCTION reward_days_count();
CREATE TRIGGER reward_days_delete AFTER DELETE ON rewards REFERENCING OLD TABLE AS old_rewards
	FOR EACH STATEMENT EXECUTE FUNCTION reward_days_count();

INSERT INTO reward_days (source, name, day, account, unit, kind, decimals, count, amount)
SELECT r.source, n.name, reward_day(r.time_ns), r.account, r.unit, r.kind, r.decimals, count(*), sum(r.amount)
FROM rewards r, reward_day_names(r.account, r.aliases) n(name)
GROUP BY 1, 2, 3, 4, 5, 6, 7;
