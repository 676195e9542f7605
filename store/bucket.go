package store

import (
	"cmp"
	"time"
)

// BucketOf returns the [start, end) summary bucket of a GroupDay,
// GroupWeek (weeks start on Monday) or GroupMonth grouping that holds t,
// in t's location. Every backend buckets with it, so summaries agree.
func BucketOf(t time.Time, group string) (start, end time.Time) {
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

// CompareSummaryRows orders summary rows as RewardSummary returns them:
// by bucket, source, account and unit.
func CompareSummaryRows(a, b *SummaryRow) int {
	return cmp.Or(a.BucketStart.Compare(b.BucketStart), cmp.Compare(a.Source, b.Source),
		cmp.Compare(a.Account, b.Account), cmp.Compare(a.Unit, b.Unit))
}
