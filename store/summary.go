package store

import (
	"cmp"
	"context"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// RewardSummary sums the rewards q selects per time bucket, source, account
// and unit, in integer base units: the sum of the rows equals the sum of the
// rewards exactly. It reads in short transactions, a page at a time. It
// returns ErrInvalid for an unknown grouping, or group_by=epoch on a source
// without epochs.
func (s *Store) RewardSummary(ctx context.Context, q SummaryQuery) ([]SummaryRow, error) {
	loc := q.Location
	if loc == nil {
		loc = time.UTC
	}
	switch q.GroupBy {
	case GroupDay, GroupWeek, GroupMonth, GroupEpoch:
	default:
		return nil, fmt.Errorf("%w: group_by %q: want day, week, month or epoch", ErrInvalid, q.GroupBy)
	}
	epochs := map[string]*Epochs{}
	if q.GroupBy == GroupEpoch {
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
		source, account, unit string
	}
	groups := map[groupKey]*SummaryRow{}
	rq := q.RewardQuery
	rq.Limit, rq.Desc, rq.Cursor = MaxLimit, false, ""
	for {
		p, err := s.Rewards(ctx, rq)
		if err != nil {
			return nil, fmt.Errorf("summarize rewards: %w", err)
		}
		for i := range p.Items {
			r := &p.Items[i]
			row := SummaryRow{Source: r.Source, Account: r.Account, Unit: r.Unit, Decimals: r.Decimals}
			if q.GroupBy == GroupEpoch {
				ep := epochs[r.Source]
				if ep == nil || !r.HasHeight {
					return nil, fmt.Errorf("%w: group_by=epoch: source %q has no epochs", ErrInvalid, r.Source)
				}
				n := r.Height / ep.BlocksPerEpoch
				span := time.Duration(ep.BlocksPerEpoch) * ep.BlockDuration
				row.Epoch = &n
				row.BucketStart = ep.Genesis.Add(time.Duration(n) * span).UTC()
				row.BucketEnd = row.BucketStart.Add(span)
			} else {
				row.BucketStart, row.BucketEnd = bucketOf(r.Time.In(loc), q.GroupBy)
			}
			k := groupKey{row.BucketStart.UnixNano(), r.Source, r.Account, r.Unit}
			g := groups[k]
			if g == nil {
				row.RawAmount = new(big.Int)
				g = &row
				groups[k] = g
			}
			amt, ok := new(big.Int).SetString(r.RawAmount, 10)
			if !ok {
				return nil, fmt.Errorf("reward %s/%s: %w: amount %q", r.Account, r.ID, ErrCorrupt, r.RawAmount)
			}
			g.RawAmount.Add(g.RawAmount, amt)
			g.Count++
		}
		if p.Next == "" {
			break
		}
		rq.Cursor = p.Next
	}
	out := make([]SummaryRow, 0, len(groups))
	for _, g := range groups {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b SummaryRow) int {
		return cmp.Or(a.BucketStart.Compare(b.BucketStart), cmp.Compare(a.Source, b.Source),
			cmp.Compare(a.Account, b.Account), cmp.Compare(a.Unit, b.Unit))
	})
	return out, nil
}

// bucketOf returns the [start, end) bucket holding t, in t's location.
func bucketOf(t time.Time, group string) (time.Time, time.Time) {
	y, m, d := t.Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, t.Location())
	switch group {
	case GroupWeek:
		back := (int(day.Weekday()) + 6) % 7 // Monday starts the week
		start := day.AddDate(0, 0, -back)
		return start, start.AddDate(0, 0, 7)
	case GroupMonth:
		start := time.Date(y, m, 1, 0, 0, 0, 0, t.Location())
		return start, start.AddDate(0, 1, 0)
	default:
		return day, day.AddDate(0, 0, 1)
	}
}
