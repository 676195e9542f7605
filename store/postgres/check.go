package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/evindex/evindex/store"
)

// invariants are what Apply keeps true, each a query that returns the
// number of rows breaking it.
var invariants = []struct{ what, sql string }{
	{"sources whose event count is not their events", `SELECT count(*) FROM sources s
		WHERE s.events <> (SELECT count(*) FROM events e WHERE e.source = s.name)`},
	{"sources whose block count is not their blocks", `SELECT count(*) FROM sources s
		WHERE s.blocks <> (SELECT count(*) FROM blocks b WHERE b.source = s.name)`},
	{"sources whose reward count is not their rewards", `SELECT count(*) FROM sources s
		WHERE s.rewards <> (SELECT count(*) FROM rewards r WHERE r.source = s.name)`},
	{"sources whose rejected count is not their rejected records", `SELECT count(*) FROM sources s
		WHERE s.rejected <> (SELECT coalesce(sum(greatest(r.counted, 1)), 0) FROM rejected r WHERE r.source = s.name)`},
	{"address rows without their event's address", `SELECT count(*) FROM event_addresses a
		WHERE NOT EXISTS (SELECT 1 FROM events e WHERE (e.source, e.height, e.tx_index, e.event_index) = (a.source, a.height, a.tx_index, a.event_index)
			AND a.address = ANY (e.addresses))`},
	{"event addresses without an address row", `SELECT count(*) FROM events e, unnest(e.addresses) x
		WHERE x <> '' AND NOT EXISTS (SELECT 1 FROM event_addresses a
			WHERE (a.address, a.source, a.height, a.tx_index, a.event_index) = (x, e.source, e.height, e.tx_index, e.event_index))`},
	{"alias rows without their reward's alias", `SELECT count(*) FROM reward_aliases a
		WHERE NOT EXISTS (SELECT 1 FROM rewards r WHERE (r.source, r.account, r.time_key, r.id) = (a.source, a.account, a.time_key, a.id)
			AND a.alias = ANY (r.aliases))`},
	{"reward aliases without an alias row", `SELECT count(*) FROM rewards r, unnest(r.aliases) x
		WHERE NOT EXISTS (SELECT 1 FROM reward_aliases a
			WHERE (a.alias, a.source, a.account, a.time_key, a.id) = (x, r.source, r.account, r.time_key, r.id))`},
	{"coverage ranges reversed, overlapping or touching", `SELECT count(*) FROM coverage c
		WHERE c.from_height > c.to_height OR EXISTS (SELECT 1 FROM coverage d WHERE d.source = c.source
			AND d.from_height > c.from_height AND d.from_height <= c.to_height + 1)`},
	{"nodes whose latest snapshot is older than their history", `SELECT count(*) FROM node_latest l
		WHERE l.time_ns < (SELECT max(h.time_ns) FROM node_status h WHERE (h.source, h.node) = (l.source, l.node))`},
	{"reward amounts that are not whole base units", `SELECT count(*) FROM rewards WHERE amount <> trunc(amount) OR amount < 0`},
	{"hour totals that are not their rewards' count and sum", `WITH want AS (
			SELECT r.source, n.name, reward_hour(r.time_ns) AS hour, r.account, r.unit, r.kind, r.decimals, count(*) AS count, sum(r.amount) AS amount
			FROM rewards r, reward_hour_names(r.account, r.aliases) n(name)
			GROUP BY 1, 2, 3, 4, 5, 6, 7)
		SELECT count(*) FROM want w FULL JOIN reward_hours d
			ON (w.source, w.name, w.hour, w.account, w.unit, w.kind, w.decimals) = (d.source, d.name, d.hour, d.account, d.unit, d.kind, d.decimals)
		WHERE (w.count, w.amount) IS DISTINCT FROM (d.count, d.amount)`},
}

// Check verifies the store's own invariants (counts, lookup tables,
// coverage, latest node snapshots) and returns every violation found,
// joined and wrapping store.ErrCorrupt, or nil when the database is
// sound. It reads every row: a tool for tests and `evindex check`, not
// for a serving path.
func (s *Store) Check(ctx context.Context) error {
	var errs []error
	for _, inv := range invariants {
		var n int64
		if err := s.db.QueryRow(ctx, inv.sql).Scan(&n); err != nil {
			return s.redact(fmt.Errorf("check: %s: %w", inv.what, err))
		}
		if n > 0 {
			errs = append(errs, fmt.Errorf("%d %s", n, inv.what))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("check: %w: %w", store.ErrCorrupt, errors.Join(errs...))
	}
	return nil
}
