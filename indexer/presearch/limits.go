package presearch

import (
	"encoding/json"
	"fmt"
	"time"
)

// The API's limits, per node (docs.presearch.io/nodes/api, "API Request
// Rate Limits"): 4 requests per minute without stats, 4 per hour with
// stats; more blocks the key for a while.
const (
	statusLimit = 4
	statusPer   = time.Minute
	statsLimit  = 4
	statsPer    = time.Hour
	// The margins widen our window beyond the API's so clock skew and
	// request latency cannot make the API count one request too many.
	statusMargin = 2 * time.Second
	statsMargin  = time.Minute
)

// stateLimits is the Batch.State key of the request history.
const stateLimits = "limits"

// limits is the request history the source keeps in the store, so a
// restart (or a crash loop) knows which requests the API has already
// counted. Times are unix nanoseconds.
type limits struct {
	Status       []int64 `json:"status"`
	Stats        []int64 `json:"stats"`
	BlockedUntil int64   `json:"blocked_until,omitempty"`
}

func loadLimits(raw []byte) (limits, error) {
	var l limits
	if len(raw) == 0 {
		return l, nil
	}
	if err := json.Unmarshal(raw, &l); err != nil {
		return l, fmt.Errorf("decode %s state: %w", stateLimits, err)
	}
	return l, nil
}

func (l *limits) encode() []byte {
	b, _ := json.Marshal(l)
	return b
}

// blockedUntil is when a 429's block should have lifted.
func (l *limits) blockedUntil() time.Time {
	if l.BlockedUntil == 0 {
		return time.Time{}
	}
	return time.Unix(0, l.BlockedUntil)
}

// allowedAt is the earliest time at or after now when one more request
// keeps at most limit requests in any window of per+margin.
func allowedAt(hist []int64, now time.Time, limit int, per time.Duration) time.Time {
	recent := prune(hist, now, per)
	if len(recent) < limit {
		return now
	}
	return time.Unix(0, recent[len(recent)-limit]).Add(per)
}

// prune keeps the times within per before now (and any in the future, in
// case the clock stepped back), oldest first.
func prune(hist []int64, now time.Time, per time.Duration) []int64 {
	cut := now.Add(-per).UnixNano()
	out := hist[:0:0]
	for _, t := range hist {
		if t > cut {
			out = append(out, t)
		}
	}
	return out
}

func (l *limits) statusAllowedAt(now time.Time) time.Time {
	return allowedAt(l.Status, now, statusLimit, statusPer+statusMargin)
}

func (l *limits) statsAllowedAt(now time.Time) time.Time {
	return allowedAt(l.Stats, now, statsLimit, statsPer+statsMargin)
}

// record adds a request at now and forgets the ones no limit can count.
func (l *limits) record(stats bool, now time.Time) {
	if stats {
		l.Stats = append(prune(l.Stats, now, statsPer+statsMargin), now.UnixNano())
	} else {
		l.Status = append(prune(l.Status, now, statusPer+statusMargin), now.UnixNano())
	}
}
