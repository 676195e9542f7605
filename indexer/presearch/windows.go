package presearch

import (
	"sort"
	"time"
)

// window is a stats window [start, end) in UTC.
type window struct{ start, end time.Time }

// windowSizes are the sizes a catch-up may read at once, largest first:
// whole aligned days for history, then ever smaller aligned blocks down to
// the configured window, so reaching the present takes a handful of
// requests instead of one per window. All are multiples of the configured
// window and divide a day, so windows stay aligned and never overlap.
func windowSizes(statsWindow time.Duration) []time.Duration {
	seen := map[time.Duration]bool{statsWindow: true}
	sizes := []time.Duration{statsWindow}
	for _, d := range []time.Duration{24 * time.Hour, 12 * time.Hour, 6 * time.Hour, 3 * time.Hour, time.Hour} {
		if d > statsWindow && d%statsWindow == 0 && !seen[d] {
			seen[d] = true
			sizes = append(sizes, d)
		}
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] > sizes[j] })
	return sizes
}

// aligned reports whether t is a multiple of d since the unix epoch (UTC
// days and hours are).
func aligned(t time.Time, d time.Duration) bool {
	return t.UnixNano()%int64(d) == 0
}

// nextWindow returns the window that starts at cursor and the time it
// becomes readable (its end plus the stats delay). It is the largest
// aligned size that is readable at now; when none is, the smallest one.
func (s *Source) nextWindow(cursor, now time.Time) (w window, readyAt time.Time) {
	delay := s.cfg.StatsDelay
	if !aligned(cursor, s.cfg.StatsWindow) {
		// A checkpoint from a different stats_window: realign first.
		end := cursor.Truncate(s.cfg.StatsWindow).Add(s.cfg.StatsWindow)
		return window{cursor, end}, end.Add(delay)
	}
	for _, d := range s.sizes {
		end := cursor.Add(d)
		if aligned(cursor, d) && !end.Add(delay).After(now) {
			return window{cursor, end}, end.Add(delay)
		}
	}
	end := cursor.Add(s.cfg.StatsWindow)
	return window{cursor, end}, end.Add(delay)
}

// horizon is the end of the newest window readable at now: the head the
// checkpoint is chasing.
func (s *Source) horizon(now time.Time) time.Time {
	return now.Add(-s.cfg.StatsDelay).Truncate(s.cfg.StatsWindow)
}

// pendingWindows counts the requests still needed to reach the horizon.
func (s *Source) pendingWindows(cursor, now time.Time) int {
	n := 0
	for i := 0; i < 1_000_000; i++ {
		w, ready := s.nextWindow(cursor, now)
		if ready.After(now) {
			break
		}
		n++
		cursor = w.end
	}
	return n
}

// origin is where a first start begins reading earnings.
func (s *Source) origin(now time.Time) time.Time {
	if s.cfg.BackfillDays == 0 {
		return now.Truncate(s.cfg.StatsWindow)
	}
	day := now.UTC().Truncate(24 * time.Hour)
	return day.AddDate(0, 0, -s.cfg.BackfillDays)
}
