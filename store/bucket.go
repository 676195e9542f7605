package store

import "time"

// BucketOf returns the [start, end) summary bucket of a GroupDay,
// GroupWeek (weeks start on Monday) or GroupMonth grouping that holds t,
// in t's location. Every backend buckets with it, so summaries agree.
func BucketOf(t time.Time, group string) (start, end time.Time) { return bucketOf(t, group) }
