package postgres

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/evindex/evindex/store"
)

// RewardSummary sums the rewards q selects per time bucket, source, account
// and unit, in integer base units: the sum of the rows equals the sum of
// the rewards exactly, in any time zone. Buckets are computed here, with
// the same calendar code as the bbolt store; a query whose bounds and
// buckets fall on whole UTC hours reads the totals the triggers of
// reward_hours keep
// (store.SummaryHours), any other streams the selected amounts and buckets
// each reward by its exact time, with the same rows as a result. It
// returns store.ErrInvalid for an unknown grouping, or group_by=epoch on
// a source without epochs.
func (s *Store) RewardSummary(ctx context.Context, q store.SummaryQuery) ([]store.SummaryRow, error) {
	if from, to, ok := store.SummaryHours(q); ok && storable(append(append([]string{q.Source}, q.Accounts...), q.Kinds...)...) {
		rows, ok, err := s.summaryFromHours(ctx, q, from, to)
		if err != nil || ok {
			return rows, err
		}
	}
	loc := q.Location
	if loc == nil {
		loc = time.UTC
	}
	switch q.GroupBy {
	case store.GroupDay, store.GroupWeek, store.GroupMonth, store.GroupEpoch:
	default:
		return nil, fmt.Errorf("%w: group_by %q: want day, week, month or epoch", store.ErrInvalid, q.GroupBy)
	}
	epochs := map[string]*store.Epochs{}
	if q.GroupBy == store.GroupEpoch {
		infos, err := s.Sources(ctx)
		if err != nil {
			return nil, err
		}
		for _, in := range infos {
			if in.Epochs != nil && in.Epochs.BlocksPerEpoch > 0 {
				epochs[in.Name] = in.Epochs
			}
		}
	}
	type groupKey struct {
		start                 int64
		epoch                 uint64 // a named epoch (start is then 0)
		source, account, unit string
	}
	groups := map[groupKey]*store.SummaryRow{}
	if !storable(append(append([]string{q.Source}, q.Accounts...), q.Kinds...)...) {
		return []store.SummaryRow{}, nil
	}
	var a args
	rq := q.RewardQuery
	filters := rewardFilters(&a, &rq)
	// In key order, so a group's Decimals come from its first reward as
	// in the bbolt store.
	rows, err := s.read.Query(ctx, `SELECT r.source, r.account, r.unit, r.decimals, r.time_ns, r.height, r.amount, r.epoch
		FROM rewards r WHERE `+and(filters)+` ORDER BY r.source, r.account, r.time_key, r.id`, a...)
	if err != nil {
		return nil, s.redact(fmt.Errorf("summarize rewards: %w", err))
	}
	defer rows.Close()
	for rows.Next() {
		var src, acct, unit string
		var dec, tns int64
		var height, named *int64
		var amount pgtype.Numeric
		if err := rows.Scan(&src, &acct, &unit, &dec, &tns, &height, &amount, &named); err != nil {
			return nil, s.redact(fmt.Errorf("summarize rewards: %w", err))
		}
		row := store.SummaryRow{Source: src, Account: acct, Unit: unit, Decimals: int(dec)}
		k := groupKey{source: src, account: acct, unit: unit}
		switch {
		case q.GroupBy == store.GroupEpoch && named != nil:
			// The upstream named the epoch (Flow's epochCounter): the row
			// spans the payments counted in it.
			n := uint64(*named)
			row.Epoch, k.epoch = &n, n
			row.BucketStart = fromNanos(tns)
			row.BucketEnd = row.BucketStart
		case q.GroupBy == store.GroupEpoch:
			ep := epochs[src]
			if ep == nil || height == nil {
				return nil, fmt.Errorf("%w: group_by=epoch: source %q has no epochs", store.ErrInvalid, src)
			}
			n := uint64(*height) / ep.BlocksPerEpoch
			span := time.Duration(ep.BlocksPerEpoch) * ep.BlockDuration
			row.Epoch = &n
			row.BucketStart = ep.Genesis.Add(time.Duration(n) * span).UTC()
			row.BucketEnd = row.BucketStart.Add(span)
			k.start = row.BucketStart.UnixNano()
		default:
			row.BucketStart, row.BucketEnd = store.BucketOf(fromNanos(tns).In(loc), q.GroupBy)
			k.start = row.BucketStart.UnixNano()
		}
		g := groups[k]
		if g == nil {
			row.RawAmount = new(big.Int)
			g = &row
			groups[k] = g
		}
		if g.BucketStart.After(row.BucketStart) {
			g.BucketStart = row.BucketStart
		}
		if g.BucketEnd.Before(row.BucketEnd) {
			g.BucketEnd = row.BucketEnd
		}
		text, err := integerText(amount)
		if err != nil {
			return nil, fmt.Errorf("summarize rewards: reward of %s: %w", acct, err)
		}
		v, _ := new(big.Int).SetString(text, 10)
		g.RawAmount.Add(g.RawAmount, v)
		g.Count++
	}
	if err := rows.Err(); err != nil {
		return nil, s.redact(fmt.Errorf("summarize rewards: %w", err))
	}
	out := make([]store.SummaryRow, 0, len(groups))
	for _, g := range groups {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b store.SummaryRow) int { return store.CompareSummaryRows(&a, &b) })
	return out, nil
}

// summaryFromHours answers q, whose hour slots [from, to) store.SummaryHours
// accepted, from reward_hours. It reports false when the totals cannot
// give the rows a scan would (store.HourSummer.Add).
func (s *Store) summaryFromHours(ctx context.Context, q store.SummaryQuery, from, to uint64) ([]store.SummaryRow, bool, error) {
	var a args
	f := []string{"d.hour >= " + a.add(int64(min(from, math.MaxInt64))), "d.hour < " + a.add(int64(min(to, math.MaxInt64)))}
	if q.Source != "" {
		f = append(f, "d.source = "+a.add(q.Source))
	}
	if len(q.Accounts) == 1 {
		f = append(f, "d.name = "+a.add(q.Accounts[0]))
	} else {
		f = append(f, "d.name = d.account") // each reward once, under its account
	}
	if len(q.Kinds) > 0 {
		f = append(f, "d.kind = ANY ("+a.add(q.Kinds)+"::text[])")
	}
	rows, err := s.read.Query(ctx, `SELECT d.source, d.account, d.unit, d.kind, d.decimals, d.hour, d.count, d.amount
		FROM reward_hours d WHERE `+and(f)+` ORDER BY d.hour`, a...)
	if err != nil {
		return nil, false, s.redact(fmt.Errorf("summarize rewards: %w", err))
	}
	defer rows.Close()
	sum := store.NewHourSummer(q)
	for rows.Next() {
		var src, acct, unit, kind string
		var dec, hour, count int64
		var amount pgtype.Numeric
		if err := rows.Scan(&src, &acct, &unit, &kind, &dec, &hour, &count, &amount); err != nil {
			return nil, false, s.redact(fmt.Errorf("summarize rewards: %w", err))
		}
		v, err := integerOf(amount)
		if err != nil || hour < 0 || count <= 0 {
			return nil, false, fmt.Errorf("summarize rewards: hour total of %s: %w", acct, store.ErrCorrupt)
		}
		if !sum.Add(src, acct, unit, kind, int(dec), uint64(hour), uint64(count), v) {
			return nil, false, nil
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, s.redact(fmt.Errorf("summarize rewards: %w", err))
	}
	return sum.Rows(), true, nil
}
