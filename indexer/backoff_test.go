package indexer

import (
	"net/http"
	"testing"
	"time"
)

// TestBackoff checks the wait's bounds per attempt: it doubles from the
// minimum, never passes the cap, and its jitter keeps it within the upper
// half of each step; huge attempt counts do not overflow.
func TestBackoff(t *testing.T) {
	minWait, maxWait := time.Second, time.Minute
	for _, tc := range []struct {
		attempt int
		step    time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {6, 32 * time.Second}, {7, time.Minute}, {40, time.Minute}, {1 << 30, time.Minute}} {
		distinct := map[time.Duration]bool{}
		for range 200 {
			d := Backoff(tc.attempt, minWait, maxWait)
			if d < tc.step/2 || d > tc.step {
				t.Fatalf("attempt %d: %s, want within [%s, %s]", tc.attempt, d, tc.step/2, tc.step)
			}
			distinct[d] = true
		}
		if len(distinct) < 2 {
			t.Errorf("attempt %d: 200 waits all %v: no jitter", tc.attempt, distinct)
		}
	}
}

// TestParseRetryAfter reads seconds and HTTP dates, caps them, and says
// nothing for what is not a wait.
func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{" 7 ", 7 * time.Second, true},
		{"0", 0, true},
		{"999999999", time.Hour, true},
		{"99999999999999999999999", time.Hour, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), time.Hour, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, false},
		{"", 0, false},
		{"-5", 0, false},
		{"soon", 0, false},
	} {
		got, ok := ParseRetryAfter(tc.h, now, time.Hour)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tc.h, got, ok, tc.want, tc.ok)
		}
	}
}
