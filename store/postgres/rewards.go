package postgres

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/evindex/evindex/store"
)

var rewardKeys = []string{"source", "account", "time_key", "id"}

const rewardSelect = `r.source, r.account, r.time_key, r.id, r.kind, r.height, r.time_ns, r.period_start_ns, r.period_end_ns,
	r.amount, r.unit, r.decimals, r.aliases, r.details, r.epoch`

// Rewards returns one page of rewards in (source, account, time) order, or
// reversed with q.Desc. With accounts, only those accounts' rows are read
// (by account and through the alias table).
func (s *Store) Rewards(ctx context.Context, q store.RewardQuery) (store.Page[store.Reward], error) {
	after, err := decodeCursor(cursorRewards, q.Cursor)
	if err != nil {
		return store.Page[store.Reward]{}, err
	}
	var from *rewardKey
	if after != nil {
		k, ok := parseRewardKey(after)
		if !ok {
			return store.Page[store.Reward]{}, store.ErrCursorInvalid
		}
		from = &k
	}
	if !storable(append(append([]string{q.Source}, q.Accounts...), q.Kinds...)...) {
		return store.Page[store.Reward]{}, nil
	}
	limit := pageLimit(q.Limit)
	var a args
	filters := rewardFilters(&a, &q)
	afterOn := func(alias string) string {
		if from == nil {
			return "true"
		}
		return keyset(&a, prefixed(alias, rewardKeys), []any{from.source, from.account, from.timeKey, from.id}, q.Desc)
	}
	order := orderBy(prefixed("r.", rewardKeys), q.Desc)
	lim := strconv.Itoa(limit + 1)
	var sql string
	if len(q.Accounts) == 0 {
		sql = "SELECT " + rewardSelect + " FROM rewards r WHERE " + afterOn("r.") + " AND " + and(filters) + " ORDER BY " + order + " LIMIT " + lim
	} else {
		// A branch per account through rewards_by_account and one through
		// the alias table; a reward found twice is one row.
		var branches []string
		for _, acct := range slices.Compact(slices.Sorted(slices.Values(q.Accounts))) {
			p := a.add(acct)
			branches = append(branches,
				"(SELECT "+rewardSelect+" FROM rewards r WHERE r.account = "+p+" AND "+afterOn("r.")+" AND "+and(filters)+
					" ORDER BY "+order+" LIMIT "+lim+")",
				"(SELECT "+rewardSelect+" FROM reward_aliases x JOIN rewards r ON (r.source, r.account, r.time_key, r.id) = (x.source, x.account, x.time_key, x.id)"+
					" WHERE x.alias = "+p+" AND "+afterOn("x.")+" AND "+and(filters)+
					" ORDER BY "+orderBy(prefixed("x.", rewardKeys), q.Desc)+" LIMIT "+lim+")")
		}
		sql = "SELECT DISTINCT ON (" + strings.Join(prefixed("r.", rewardKeys), ", ") + ") * FROM (" +
			strings.Join(branches, " UNION ALL ") + ") r ORDER BY " + order + " LIMIT " + lim
	}
	rows, err := s.read.Query(ctx, sql, a...)
	if err != nil {
		return store.Page[store.Reward]{}, s.redact(fmt.Errorf("list rewards: %w", err))
	}
	items, err := pgx.CollectRows(rows, scanReward)
	if err != nil {
		return store.Page[store.Reward]{}, s.redact(fmt.Errorf("list rewards: %w", err))
	}
	return pageOf(items, limit, cursorRewards, func(r *store.Reward) []byte { return keyOf(r).bytes() }), nil
}

// rewardFilters are the conditions of a RewardQuery on rewards r (the
// bbolt store's matches).
func rewardFilters(a *args, q *store.RewardQuery) []string {
	var f []string
	if q.Source != "" {
		f = append(f, "r.source = "+a.add(q.Source))
	}
	if len(q.Kinds) > 0 {
		f = append(f, "r.kind = ANY ("+a.add(q.Kinds)+"::text[])")
	}
	if len(q.Accounts) > 0 {
		p := a.add(q.Accounts)
		f = append(f, "(r.account = ANY ("+p+"::text[]) OR r.aliases && "+p+"::text[])")
	}
	if !q.FromTime.IsZero() {
		// time_key bounds the index range; time_ns is the exact test.
		f = append(f, "r.time_key >= "+a.add(timeKey(q.FromTime)), "r.time_ns >= "+a.add(q.FromTime.UnixNano()))
	}
	if !q.ToTime.IsZero() {
		f = append(f, "r.time_ns < "+a.add(q.ToTime.UnixNano()))
	}
	if q.FromHeight != nil {
		if *q.FromHeight > maxHeight {
			f = append(f, "false")
		} else {
			f = append(f, "r.height >= "+a.add(int64(*q.FromHeight)))
		}
	}
	if q.ToHeight != nil {
		if *q.ToHeight > maxHeight {
			f = append(f, "r.height IS NOT NULL")
		} else {
			f = append(f, "r.height <= "+a.add(int64(*q.ToHeight)))
		}
	}
	return f
}

func scanReward(row pgx.CollectableRow) (store.Reward, error) {
	var r store.Reward
	var tkey, tns, dec int64
	var height, ps, pe *int64
	var amount pgtype.Numeric
	var details []byte
	var epoch *int64
	err := row.Scan(&r.Source, &r.Account, &tkey, &r.ID, &r.Kind, &height, &tns, &ps, &pe, &amount, &r.Unit, &dec, &r.Aliases, &details, &epoch)
	if err != nil {
		return r, err
	}
	r.Time, r.Decimals = fromNanos(tns), int(dec)
	if height != nil {
		r.Height, r.HasHeight = uint64(*height), true
	}
	if epoch != nil {
		r.Epoch, r.HasEpoch = uint64(*epoch), true
	}
	if ps != nil {
		r.PeriodStart, r.PeriodEnd = fromNanos(*ps), fromNanos(*pe)
	}
	r.RawAmount, err = integerText(amount)
	if len(r.Aliases) == 0 {
		r.Aliases = nil
	}
	if len(details) > 0 {
		r.Details = details
	}
	return r, err
}

// integerText prints an integral numeric exactly.
func integerText(n pgtype.Numeric) (string, error) {
	v, err := integerOf(n)
	if err != nil {
		return "", err
	}
	return v.String(), nil
}

// integerOf is the whole number n holds.
func integerOf(n pgtype.Numeric) (*big.Int, error) {
	if !n.Valid || n.NaN || n.InfinityModifier != 0 || n.Int == nil {
		return nil, fmt.Errorf("%w: amount is not an integer", store.ErrCorrupt)
	}
	v := new(big.Int).Set(n.Int)
	if n.Exp > 0 {
		v.Mul(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n.Exp)), nil))
	} else if n.Exp < 0 {
		q, m := new(big.Int).QuoRem(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-n.Exp)), nil), new(big.Int))
		if m.Sign() != 0 {
			return nil, fmt.Errorf("%w: amount is not an integer", store.ErrCorrupt)
		}
		v = q
	}
	return v, nil
}
