package indexer

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Backoff is the wait before retry number attempt (1 for the first):
// minWait doubled per attempt up to maxWait, with full jitter in its upper
// half, so many retriers (sources, webhooks) do not come back in step.
func Backoff(attempt int, minWait, maxWait time.Duration) time.Duration {
	d := max(minWait, 0)
	for i := 1; i < attempt && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	return d/2 + rand.N(d/2+1)
}

// ParseRetryAfter reads an HTTP Retry-After header, seconds or an HTTP
// date, capped at limit; ok is false when it says nothing usable (absent,
// malformed, a date in the past). It compares before it multiplies, so no
// value overflows: a Retry-After of 999999999 seconds once made evindex
// wait until 2058.
func ParseRetryAfter(h string, now time.Time, limit time.Duration) (wait time.Duration, ok bool) {
	h = strings.TrimSpace(h)
	if secs, err := strconv.ParseUint(h, 10, 64); err == nil {
		if secs > uint64(limit/time.Second) {
			return limit, true
		}
		return time.Duration(secs) * time.Second, true
	} else if errors.Is(err, strconv.ErrRange) {
		return limit, true // all digits, more than 64 bits of them
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return min(t.Sub(now), limit), true
	}
	return 0, false
}
