-- Reward totals per UTC hour instead of per UTC day (0008): days, weeks
-- and months of zones whose midnight is not UTC's (most users' own) are
-- whole hours, not whole UTC days, so only hour totals answer them.
-- reward_hours holds what reward_days held, per hour: a reward counts
-- under its account (name = account) and once under each distinct alias
-- other than its account (name = the alias); hour is 0 for the zero time
-- (time_ns 0), else 1 + hours since 1970-01-01T00:00Z. Statement triggers
-- keep it as they kept reward_days; the existing rewards are summed once
-- here.
DROP TRIGGER IF EXISTS reward_days_insert ON rewards;
DROP TRIGGER IF EXISTS reward_days_update ON rewards;
DROP TRIGGER IF EXISTS reward_days_delete ON rewards;
DROP FUNCTION IF EXISTS reward_days_count();
DROP FUNCTION IF EXISTS reward_days_add(reward_day_change[]);
DROP TYPE IF EXISTS reward_day_change;
DROP TABLE IF EXISTS reward_days;
DROP FUNCTION IF EXISTS reward_day_names(text, text[]);
DROP FUNCTION IF EXISTS reward_day(bigint);

CREATE TABLE reward_hours (
	source   text COLLATE "C" NOT NULL,
	name     text COLLATE "C" NOT NULL,
	hour     bigint NOT NULL,
	account  text COLLATE "C" NOT NULL,
	unit     text COLLATE "C" NOT NULL,
	kind     text COLLATE "C" NOT NULL,
	decimals bigint NOT NULL,
	count    bigint NOT NULL,
	amount   numeric NOT NULL,
	PRIMARY KEY (source, name, hour, account, unit, kind, decimals)
);
-- A summary of one account without a source.
CREATE INDEX reward_hours_by_name ON reward_hours (name, hour);

CREATE FUNCTION reward_hour(time_ns bigint) RETURNS bigint
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT CASE WHEN time_ns = 0 THEN 0 ELSE 1 + time_ns / 3600000000000 END $$;

-- The names a reward counts under: its account and its other aliases.
CREATE FUNCTION reward_hour_names(account text, aliases text[]) RETURNS SETOF text
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	AS $$ SELECT account UNION SELECT a FROM unnest(aliases) a WHERE a <> account $$;

-- A signed change of the totals: a reward written (1) or gone (-1).
CREATE TYPE reward_hour_change AS (source text, account text, aliases text[], time_ns bigint,
	unit text, kind text, decimals bigint, amount numeric, sign int);

-- reward_hours_add adds changes to the totals and deletes those that no
-- reward is left in.
CREATE FUNCTION reward_hours_add(changes reward_hour_change[]) RETURNS void LANGUAGE sql AS $$
	INSERT INTO reward_hours AS d (source, name, hour, account, unit, kind, decimals, count, amount)
	SELECT c.source, n.name, reward_hour(c.time_ns), c.account, c.unit, c.kind, c.decimals, sum(c.sign), sum(c.sign * c.amount)
	FROM unnest(changes) c, reward_hour_names(c.account, c.aliases) n(name)
	GROUP BY 1, 2, 3, 4, 5, 6, 7
	ON CONFLICT (source, name, hour, account, unit, kind, decimals)
	DO UPDATE SET count = d.count + excluded.count, amount = d.amount + excluded.amount;
	DELETE FROM reward_hours WHERE count = 0;
$$;
-- Totals at zero exist only between the two statements above: this
-- index finds them without reading the table.
CREATE INDEX reward_hours_empty ON reward_hours (source) WHERE count = 0;

-- reward_hours_count is the triggers' function: the statement's rewards,
-- from its transition tables, each with its sign.
CREATE FUNCTION reward_hours_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		PERFORM reward_hours_add(ARRAY(SELECT ROW(source, account, aliases, time_ns, unit, kind, decimals, amount, 1)::reward_hour_change
			FROM new_rewards));
	ELSIF TG_OP = 'DELETE' THEN
		PERFORM reward_hours_add(ARRAY(SELECT ROW(source, account, aliases, time_ns, unit, kind, decimals, amount, -1)::reward_hour_change
			FROM old_rewards));
	ELSE
		PERFORM reward_hours_add(ARRAY(SELECT ROW(source, account, aliases, time_ns, unit, kind, decimals, amount, 1)::reward_hour_change
			FROM new_rewards UNION ALL
			SELECT ROW(source, account, aliases, time_ns, unit, kind, decimals, amount, -1)::reward_hour_change
			FROM old_rewards));
	END IF;
	RETURN NULL;
END $$;

CREATE TRIGGER reward_hours_insert AFTER INSERT ON rewards REFERENCING NEW TABLE AS new_rewards
	FOR EACH STATEMENT EXECUTE FUNCTION reward_hours_count();
CREATE TRIGGER reward_hours_update AFTER UPDATE ON rewards REFERENCING OLD TABLE AS old_rewards NEW TABLE AS new_rewards
	FOR EACH STATEMENT EXECUTE FUNCTION reward_hours_count();
CREATE TRIGGER reward_hours_delete AFTER DELETE ON rewards REFERENCING OLD TABLE AS old_rewards
	FOR EACH STATEMENT EXECUTE FUNCTION reward_hours_count();

INSERT INTO reward_hours (source, name, hour, account, unit, kind, decimals, count, amount)
SELECT r.source, n.name, reward_hour(r.time_ns), r.account, r.unit, r.kind, r.decimals, count(*), sum(r.amount)
FROM rewards r, reward_hour_names(r.account, r.aliases) n(name)
GROUP BY 1, 2, 3, 4, 5, 6, 7;
