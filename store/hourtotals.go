package store

import (
	"math"
	"math/big"
	"slices"
	"time"
)

// Backends keep, beside the rewards, their count and exact sum per UTC
// hour, source, account, unit, kind and decimals (and the same per alias
// that finds them), updated in the transaction that writes or deletes the
// rewards. A summary whose buckets and bounds fall on whole hours (days,
// weeks and months in UTC and in every zone whose offsets are whole
// hours) reads those instead of every reward; HourSummer turns them into
// the rows a sum of the rewards gives, so both backends answer alike.
//
// A reward's hour slot is 0 for a reward whose time is the zero time, else
// 1 + the hours from 1970-01-01T00:00Z to its time.

// RewardHour returns the hour slot of a reward whose time reads back as t
// (both stores read the Unix epoch itself back as the zero time).
func RewardHour(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return 1 + uint64(max(t.Unix(), 0)/secondsPerHour)
}

const secondsPerHour = 60 * 60

// hourStart returns the first instant of hour slot h > 0.
func hourStart(h uint64) time.Time {
	return time.Unix(int64(h-1)*secondsPerHour, 0).UTC()
}

// SummaryHours returns the hour slots [from, to) of the rewards q selects,
// and ok when hour totals can answer q exactly: a day, week or month
// grouping, at most one account (a reward found by several of them counts
// once, which totals cannot tell), no height bounds, and time bounds on
// whole UTC hours. Whether each hour falls in one bucket of q's Location
// is told by HourSummer.Add.
func SummaryHours(q SummaryQuery) (from, to uint64, ok bool) {
	switch q.GroupBy {
	case GroupDay, GroupWeek, GroupMonth:
	default:
		return 0, 0, false
	}
	if len(q.Accounts) > 1 || q.FromHeight != nil || q.ToHeight != nil {
		return 0, 0, false
	}
	from, ok = hourSlotBound(q.FromTime, 0)
	if !ok {
		return 0, 0, false
	}
	to, ok = hourSlotBound(q.ToTime, math.MaxUint64)
	return from, to, ok
}

// hourSlotBound is the first hour slot at or after t, when no hour slot
// has times on both sides of t; unbounded when t is zero. Bounds at or
// before 1970 are left to the sum of the rewards: there the backends
// differ on whether a reward of the zero time is in range.
func hourSlotBound(t time.Time, unbounded uint64) (uint64, bool) {
	switch {
	case t.IsZero():
		return unbounded, true
	case !t.After(time.Unix(0, 0)) || t.Nanosecond() != 0 || t.Unix()%secondsPerHour != 0:
		return 0, false
	}
	return 1 + uint64(t.Unix()/secondsPerHour), true
}

// HourSummer composes summary rows from hour totals, as RewardSummary of
// its query would sum the rewards themselves.
type HourSummer struct {
	q    SummaryQuery
	loc  *time.Location
	rows map[hourSumKey]*hourSum
	// order holds the rows as they were first met: totals come in time
	// order, so it is nearly sorted already.
	order []*hourSum
	// lastStart and lastEnd are the bucket found last: the next hours
	// mostly fall in it too.
	lastStart, lastEnd time.Time
	cached             bool
}

type hourSumKey struct {
	start                 int64
	source, account, unit string
}

// hourSum is one row being summed: in a uint64 while the sum fits.
type hourSum struct {
	row SummaryRow
	sum uint64
	big bool
}

// NewHourSummer starts the rows of q, whose hour slots SummaryHours accepted.
func NewHourSummer(q SummaryQuery) *HourSummer {
	loc := q.Location
	if loc == nil {
		loc = time.UTC
	}
	return &HourSummer{q: q, loc: loc, rows: map[hourSumKey]*hourSum{}}
}

// Add counts one hour total: count rewards of one account, unit, kind and
// decimals in hour slot hour, summing to amount. Totals of kinds q does
// not select are skipped. It reports false when the totals cannot give
// the rows a sum of the rewards would: a bucket boundary of q's Location
// cuts the hour (zones half an hour off UTC), or a row would hold rewards
// of different Decimals (a sum takes the first reward's). amount is not
// kept.
func (s *HourSummer) Add(source, account, unit, kind string, decimals int, hour, count uint64, amount *big.Int) bool {
	if len(s.q.Kinds) > 0 && !slices.Contains(s.q.Kinds, kind) {
		return true
	}
	start, end, ok := s.bucket(hour)
	if !ok {
		return false
	}
	k := hourSumKey{start: start.UnixNano(), source: source, account: account, unit: unit}
	g := s.rows[k]
	if g == nil {
		g = &hourSum{row: SummaryRow{BucketStart: start, BucketEnd: end, Source: source, Account: account, Unit: unit, Decimals: decimals}}
		s.rows[k] = g
		s.order = append(s.order, g)
	} else if g.row.Decimals != decimals {
		return false
	}
	g.row.Count += count
	if !g.big && amount.IsUint64() {
		if v := g.sum + amount.Uint64(); v >= g.sum {
			g.sum = v
			return true
		}
	}
	if !g.big {
		g.big = true
		g.row.RawAmount = new(big.Int).SetUint64(g.sum)
	}
	g.row.RawAmount.Add(g.row.RawAmount, amount)
	return true
}

// bucket returns the bucket of q's grouping that holds all of hour slot
// hour, or false when a bucket boundary cuts it.
func (s *HourSummer) bucket(hour uint64) (start, end time.Time, ok bool) {
	if hour == 0 {
		start, end = BucketOf(time.Time{}.In(s.loc), s.q.GroupBy)
		return start, end, true
	}
	first := hourStart(hour)
	last := first.Add(time.Hour)
	if s.cached && !first.Before(s.lastStart) && !last.After(s.lastEnd) {
		return s.lastStart, s.lastEnd, true
	}
	start, end = BucketOf(first.In(s.loc), s.q.GroupBy)
	if start.After(first) || end.Before(last) {
		return start, end, false
	}
	s.lastStart, s.lastEnd, s.cached = start, end, true
	return start, end, true
}

// Rows returns the summed rows in bucket, source, account and unit order,
// as RewardSummary returns them.
func (s *HourSummer) Rows() []SummaryRow {
	// Sorted as pointers: moving whole rows was most of the cost.
	slices.SortFunc(s.order, func(a, b *hourSum) int { return CompareSummaryRows(&a.row, &b.row) })
	out := make([]SummaryRow, len(s.order))
	for i, g := range s.order {
		if !g.big {
			g.row.RawAmount = new(big.Int).SetUint64(g.sum)
		}
		out[i] = g.row
	}
	return out
}
