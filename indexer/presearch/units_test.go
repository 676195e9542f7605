package presearch

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseAmount(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"Zero", "0", "0", false},
		{"Integer", "12", "12000000000000000000", false},
		{"AllDecimals", "0.123456789012345678", "123456789012345678", false},
		{"FloatLooking", "28.69725493086953", "28697254930869530000", false},
		{"Exponent", "1.5e-7", "150000000000", false},
		{"UpperExponent", "2E+3", "2000000000000000000000", false},
		{"Negative", "-0.5", "", true},
		{"NegativeZero", "-0.0", "0", false},
		{"WouldRoundUp", "0.0000000000000000005", "", true},
		{"WouldRoundToZero", "0.0000000000000000001", "", true},
		{"TrailingZerosBeyondUnit", "0.10000000000000000000", "100000000000000000", false},
		{"ExponentPastTheBound", "1e400", "", true},
		{"LeadingDot", ".25", "250000000000000000", false},
		{"Empty", "", "", true},
		{"Letters", "abc", "", true},
		{"TwoDots", "1.2.3", "", true},
		{"HugeExponent", "1e999999999", "", true},
		{"BareDot", ".", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAmount(tt.in, preDecimals)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseAmount(%q) = %s, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want {
				t.Fatalf("parseAmount(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.APIKey = "k"
		return c
	}
	tests := []struct {
		name  string
		edit  func(*Config)
		field string // "" means valid
	}{
		{"Defaults", func(c *Config) {}, ""},
		{"ZeroDurationsTakeDefaults", func(c *Config) { c.StatusInterval, c.StatsWindow = 0, 0 }, ""},
		{"NoName", func(c *Config) { c.Name = "" }, "name: required"},
		{"BadName", func(c *Config) { c.Name = "Pre Search" }, "name:"},
		{"BadURL", func(c *Config) { c.BaseURL = "nodes.presearch.com" }, "base_url:"},
		{"NoKey", func(c *Config) { c.APIKey = "" }, "api_key: required"},
		{"BothKeys", func(c *Config) { c.APIKeyFile = "/k" }, "api_key: set either"},
		{"EmptyPublicKey", func(c *Config) { c.PublicKeys = []string{"a", ""} }, "public_keys[1]:"},
		{"StatusTooFast", func(c *Config) { c.StatusInterval = 10 * time.Second }, "status_interval:"},
		{"WindowNotDividingDay", func(c *Config) { c.StatsWindow = 7 * time.Hour }, "stats_window:"},
		{"WindowSeconds", func(c *Config) { c.StatsWindow = 90 * time.Second }, "stats_window:"},
		{"Window15m", func(c *Config) { c.StatsWindow = 15 * time.Minute }, ""},
		{"NegativeBackfill", func(c *Config) { c.BackfillDays = -1 }, "backfill_days:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.edit(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("error %v, want one naming %q", err, tt.field)
			}
		})
	}
}

func TestNextWindow(t *testing.T) {
	s, err := New(Config{Name: "p", APIKey: "k", StatsDelay: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name                string
		cursor, now         time.Time
		wantStart, wantEnd  time.Time
		wantReady           bool
		wantPendingAtLeastN int
	}{
		{"WholeDay", day, day.Add(50 * time.Hour), day, day.Add(24 * time.Hour), true, 3},
		{"HalfDayCatchUp", day, day.Add(15 * time.Hour), day, day.Add(12 * time.Hour), true, 3},
		{"Hourly", day.Add(13 * time.Hour), day.Add(14*time.Hour + 6*time.Minute), day.Add(13 * time.Hour), day.Add(14 * time.Hour), true, 1},
		{"NotYetWithinDelay", day.Add(13 * time.Hour), day.Add(14*time.Hour + 4*time.Minute), day.Add(13 * time.Hour), day.Add(14 * time.Hour), false, 0},
		{"Misaligned", day.Add(30 * time.Minute), day.Add(3 * time.Hour), day.Add(30 * time.Minute), day.Add(time.Hour), true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, ready := s.nextWindow(tt.cursor, tt.now)
			if !w.start.Equal(tt.wantStart) || !w.end.Equal(tt.wantEnd) {
				t.Fatalf("window %s..%s, want %s..%s", w.start, w.end, tt.wantStart, tt.wantEnd)
			}
			if got := !ready.After(tt.now); got != tt.wantReady {
				t.Fatalf("ready %v, want %v", got, tt.wantReady)
			}
			if n := s.pendingWindows(tt.cursor, tt.now); n < tt.wantPendingAtLeastN {
				t.Fatalf("%d pending windows, want at least %d", n, tt.wantPendingAtLeastN)
			}
		})
	}
	// A week of catch-up plus part of a day takes a handful of requests.
	if n := s.pendingWindows(day, day.AddDate(0, 0, 7).Add(23*time.Hour+30*time.Minute)); n > 7+5 {
		t.Fatalf("%d requests to catch up a week and 23 hours", n)
	}
}

func TestAllowedAt(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	tests := []struct {
		name string
		hist []int64
		now  time.Time
		want time.Time
	}{
		{"Empty", nil, t0, t0},
		{"ThreeRecent", []int64{at(0), at(time.Minute), at(2 * time.Minute)}, t0.Add(3 * time.Minute), t0.Add(3 * time.Minute)},
		{"FourRecent", []int64{at(0), at(time.Minute), at(2 * time.Minute), at(3 * time.Minute)}, t0.Add(4 * time.Minute), t0.Add(time.Hour + statsMargin)},
		{"OldOnesForgotten", []int64{at(-2 * time.Hour), at(-90 * time.Minute), at(0), at(time.Minute), at(2 * time.Minute)}, t0.Add(3 * time.Minute), t0.Add(3 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := limits{Stats: tt.hist}
			if got := l.statsAllowedAt(tt.now); !got.Equal(tt.want) {
				t.Fatalf("allowed at %s, want %s", got, tt.want)
			}
		})
	}
}

func TestErrorsNeverCarryTheKey(t *testing.T) {
	const key = "sEcReT+key/with spaces"
	s, err := New(Config{Name: "p", APIKey: key, BaseURL: "http://user:pw@127.0.0.1:1/base", RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.Endpoint(), "sEcReT") || strings.Contains(s.Endpoint(), "pw") || !strings.Contains(s.Endpoint(), "<redacted>") {
		t.Fatalf("endpoint %q leaks or is not redacted", s.Endpoint())
	}
	// Nothing listens on port 1: net/http returns a *url.Error with the URL.
	_, err = s.fetch(context.Background(), statusQuery{})
	if err == nil {
		t.Fatal("fetch to a closed port succeeded")
	}
	for _, leak := range []string{"sEcReT", "sEcReT%2Bkey", "pw@"} {
		if strings.Contains(err.Error(), leak) {
			t.Fatalf("error %q contains %q", err, leak)
		}
	}
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		if strings.Contains(e.Error(), "sEcReT") {
			t.Fatalf("wrapped error %q contains the key", e)
		}
	}
	if got := retryAfter("120", time.Now()); got != 2*time.Minute {
		t.Fatalf("Retry-After 120 = %s", got)
	}
	if got := retryAfter(time.Now().Add(time.Hour).UTC().Format(http.TimeFormat), time.Now()); got < 59*time.Minute || got > time.Hour {
		t.Fatalf("Retry-After date = %s", got)
	}
	if got := retryAfter("soon", time.Now()); got != defaultBlock {
		t.Fatalf("Retry-After garbage = %s", got)
	}
}

// TestRetryAfterIsCapped: an upstream-given wait is capped at maxBlock
// and computed without overflow. 999999999 s once made evindex wait until
// 2058; 99999999999 and 9300000000 overflowed, one to a negative wait.
func TestRetryAfterIsCapped(t *testing.T) {
	now := time.Now()
	for _, h := range []string{"999999999", "99999999999", "9300000000", "99999999999999999999999", "3601",
		now.AddDate(40, 0, 0).UTC().Format(http.TimeFormat)} {
		if got := retryAfter(h, now); got != maxBlock {
			t.Errorf("Retry-After %s = %s, want %s", h, got, maxBlock)
		}
	}
	if got := retryAfter("-5", now); got != defaultBlock {
		t.Errorf("Retry-After -5 = %s, want the default %s", got, defaultBlock)
	}
}

// TestBackfillETA checks the backfill estimate against the stats limit:
// it falls with every completed window and with the time that passes,
// where whole rounds counted from now kept it at one value for a round.
func TestBackfillETA(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	per := statsPer + statsMargin
	r := &run{}
	if got := r.eta(3, now); got != 0 {
		t.Fatalf("3 windows, no request sent: eta %v, want 0", got)
	}
	// Four requests went 50, 40, 30 and 20 minutes ago: the next may go
	// when the first leaves the period (in 11 minutes), the eighth window
	// a period after that.
	for _, ago := range []time.Duration{50, 40, 30, 20} {
		r.lim.Stats = append(r.lim.Stats, now.Add(-ago*time.Minute).UnixNano())
	}
	for _, c := range []struct {
		pending int
		want    time.Duration
	}{
		{1, 11 * time.Minute},
		{4, 41 * time.Minute},
		{5, 11*time.Minute + per},
		{8, 41*time.Minute + per},
	} {
		if got := r.eta(c.pending, now); got != c.want {
			t.Errorf("%d windows: eta %v, want %v", c.pending, got, c.want)
		}
	}
	// Five minutes later the same windows are five minutes nearer.
	if got, want := r.eta(8, now.Add(5*time.Minute)), 36*time.Minute+per; got != want {
		t.Errorf("5 minutes on: eta %v, want %v", got, want)
	}
	// A window completed (a request went at now+11m): one fewer pending,
	// and the estimate of the last window is unchanged.
	r.lim.Stats = append(r.lim.Stats, now.Add(11*time.Minute).UnixNano())
	if got, want := r.eta(7, now.Add(11*time.Minute)), 30*time.Minute+per; got != want {
		t.Errorf("after a window: eta %v, want %v", got, want)
	}
}
