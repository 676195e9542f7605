package store

import (
	"math"
	"math/big"
	"slices"
	"time"
)

// Backends keep, beside the rewards, their count and exact sum per UTC day,
// source, account, unit, kind and decimals (and the same per alias that
// finds them), updated in the transaction that writes or deletes the
// rewards. A summary that selects whole days reads those instead of every
// reward; DaySummer turns them into the rows a scan of the rewards gives,
// so both backends answer alike.
//
// A reward's day slot is 0 for a reward whose time is the zero time, else
// 1 + the days from 1970-01-01 UTC to its time.

// RewardDay returns the day slot of a reward whose time reads back as t
// (both stores read the Unix epoch itself back as the zero time).
func RewardDay(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return 1 + uint64(max(t.Unix(), 0)/secondsPerDay)
}

const secondsPerDay = 24 * 60 * 60

// dayStart returns the first instant of day slot d > 0.
func dayStart(d uint64) time.Time {
	return time.Unix(int64(d-1)*secondsPerDay, 0).UTC()
}

// SummaryDays returns the day slots [from, to) of the rewards q selects,
// and ok when day totals can answer q exactly: a day, week or month
// grouping, at most one account (a reward found by several of them counts
// once, which totals cannot tell), no height bounds, and time bounds at
// UTC midnights. Whether each day falls in one bucket of q's Location is
// told by DaySummer.Add.
func SummaryDays(q SummaryQuery) (from, to uint64, ok bool) {
	switch q.GroupBy {
	case GroupDay, GroupWeek, GroupMonth:
	default:
		return 0, 0, false
	}
	if len(q.Accounts) > 1 || q.FromHeight != nil || q.ToHeight != nil {
		return 0, 0, false
	}
	from, ok = daySlotBound(q.FromTime, 0)
	if !ok {
		return 0, 0, false
	}
	to, ok = daySlotBound(q.ToTime, math.MaxUint64)
	return from, to, ok
}

// daySlotBound is the first day slot at or after t, when no day slot has
// times on both sides of t; unbounded when t is zero. Bounds at or before
// 1970 are left to the scan: there the backends differ on whether a
// reward of the zero time is in range.
func daySlotBound(t time.Time, unbounded uint64) (uint64, bool) {
	switch {
	case t.IsZero():
		return unbounded, true
	case !t.After(time.Unix(0, 0)) || t.Nanosecond() != 0 || t.Unix()%secondsPerDay != 0:
		return 0, false
	}
	return 1 + uint64(t.Unix()/secondsPerDay), true
}

// DaySummer composes summary rows from day totals, as RewardSummary of
// its query would sum the rewards themselves.
type DaySummer struct {
	q    SummaryQuery
	loc  *time.Location
	rows map[daySumKey]*daySum
	// order holds the rows as they were first met: totals come in day
	// order, so it is nearly sorted already.
	order []*daySum
	// bucket caches the last day's bucket: totals come in day order.
	lastDay            uint64
	lastStart, lastEnd time.Time
	lastOK, cached     bool
}

type daySumKey struct {
	start                 int64
	source, account, unit string
}

// daySum is one row being summed: in a uint64 while the sum fits.
type daySum struct {
	row SummaryRow
	sum uint64
	big bool
}

// NewDaySummer starts the rows of q, whose day slots SummaryDays accepted.
func NewDaySummer(q SummaryQuery) *DaySummer {
	loc := q.Location
	if loc == nil {
		loc = time.UTC
	}
	return &DaySummer{q: q, loc: loc, rows: map[daySumKey]*daySum{}}
}

// Add counts one day total: count rewards of one account, unit, kind and
// decimals in day slot day, summing to amount. Totals of kinds q does not
// select are skipped. It reports false when the totals cannot give the
// rows a scan would: the day is cut by a bucket boundary of q's Location,
// or a row would hold rewards of different Decimals (a scan takes the
// first reward's). amount is not kept.
func (s *DaySummer) Add(source, account, unit, kind string, decimals int, day, count uint64, amount *big.Int) bool {
	if len(s.q.Kinds) > 0 && !slices.Contains(s.q.Kinds, kind) {
		return true
	}
	start, end, ok := s.bucket(day)
	if !ok {
		return false
	}
	k := daySumKey{start: start.UnixNano(), source: source, account: account, unit: unit}
	g := s.rows[k]
	if g == nil {
		g = &daySum{row: SummaryRow{BucketStart: start, BucketEnd: end, Source: source, Account: account, Unit: unit, Decimals: decimals}}
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

// bucket returns the bucket of q's grouping that holds all of day slot
// day, or false when a bucket boundary cuts it.
func (s *DaySummer) bucket(day uint64) (start, end time.Time, ok bool) {
	if s.cached && day == s.lastDay {
		return s.lastStart, s.lastEnd, s.lastOK
	}
	if day == 0 {
		start, end = BucketOf(time.Time{}.In(s.loc), s.q.GroupBy)
		ok = true
	} else {
		first := dayStart(day)
		start, end = BucketOf(first.In(s.loc), s.q.GroupBy)
		ok = !start.After(first) && !end.Before(first.Add(24*time.Hour))
	}
	s.lastDay, s.lastStart, s.lastEnd, s.lastOK, s.cached = day, start, end, ok, true
	return start, end, ok
}

// Rows returns the summed rows in bucket, source, account and unit order,
// as RewardSummary returns them.
func (s *DaySummer) Rows() []SummaryRow {
	// Sorted as pointers: moving whole rows was most of the cost.
	slices.SortFunc(s.order, func(a, b *daySum) int { return CompareSummaryRows(&a.row, &b.row) })
	out := make([]SummaryRow, len(s.order))
	for i, g := range s.order {
		if !g.big {
			g.row.RawAmount = new(big.Int).SetUint64(g.sum)
		}
		out[i] = g.row
	}
	return out
}
