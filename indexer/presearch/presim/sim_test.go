package presim_test

import (
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evindex/evindex/indexer/presearch/presim"
)

// clock is a manual clock shared by a test and the simulator.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var t0 = time.Date(2026, 11, 1, 13, 30, 0, 0, time.UTC)

func newSim(t *testing.T, opts ...func(*presim.Config)) (*presim.Sim, *clock, *httptest.Server) {
	t.Helper()
	clk := &clock{t: t0}
	cfg := presim.Config{Now: clk.Now, Seed: 7}
	for _, o := range opts {
		o(&cfg)
	}
	sim := presim.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, clk, srv
}

type body struct {
	Success bool `json:"success"`
	Nodes   map[string]struct {
		Meta   map[string]json.RawMessage `json:"meta"`
		Status struct {
			Connected             bool   `json:"connected"`
			InCurrentStateSince   string `json:"in_current_state_since"`
			MinutesInCurrentState int64  `json:"minutes_in_current_state"`
		} `json:"status"`
		Period map[string]json.RawMessage `json:"period"`
	} `json:"nodes"`
}

func get(t *testing.T, base, key string, params url.Values) (*http.Response, body) {
	t.Helper()
	u := base + presim.StatusPath + url.PathEscape(key) + "?" + params.Encode()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var b body
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
	}
	return resp, b
}

// preRaw converts a JSON number of PRE into 10^-18 units without floats.
func preRaw(t *testing.T, num json.RawMessage) *big.Int {
	t.Helper()
	s := string(num)
	whole, frac, _ := strings.Cut(s, ".")
	frac += strings.Repeat("0", 18-len(frac))
	v, ok := new(big.Int).SetString(whole+frac, 10)
	if !ok {
		t.Fatalf("not a decimal: %s", s)
	}
	return v
}

func TestAuth(t *testing.T) {
	sim, _, srv := newSim(t)
	tests := []struct {
		name string
		key  string
		want int
	}{
		{"WrongKey", "nope", http.StatusUnauthorized},
		{"EmptyKey", "", http.StatusUnauthorized},
		{"RightKey", sim.APIKey(), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := get(t, srv.URL, tt.key, nil)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func unlimited(c *presim.Config) { c.StatusLimit, c.StatsLimit = 1000, 1000 }

func TestFilters(t *testing.T) {
	sim, _, srv := newSim(t, unlimited)
	keys := sim.NodeKeys()
	if len(keys) != presim.DefaultNodes {
		t.Fatalf("%d nodes, want %d", len(keys), presim.DefaultNodes)
	}
	var connected, disconnected int
	for _, k := range keys {
		if sim.Connected(k, t0) {
			connected++
		} else {
			disconnected++
		}
	}
	tests := []struct {
		name   string
		params url.Values
		want   int
	}{
		{"All", url.Values{"include_inactive": {"true"}}, len(keys)},
		{"PublicKeys", url.Values{"public_keys": {keys[0] + "," + keys[2]}}, 2},
		{"UnknownPublicKey", url.Values{"public_keys": {"unknown"}}, 0},
		{"ConnectedOnly", url.Values{"disconnected": {"false"}, "include_inactive": {"true"}}, connected},
		{"DisconnectedOnly", url.Values{"connected": {"false"}, "include_inactive": {"true"}}, disconnected},
		{"BothFalseMeansConnected", url.Values{"connected": {"false"}, "disconnected": {"false"}, "include_inactive": {"true"}}, connected},
		// Before genesis no node was active.
		{"InactiveExcluded", url.Values{"start_date": {"2020-01-01 00:00"}, "end_date": {"2020-01-02 00:00"}}, 0},
		{"InactiveIncluded", url.Values{"start_date": {"2020-01-01 00:00"}, "end_date": {"2020-01-02 00:00"}, "include_inactive": {"true"}}, len(keys)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := get(t, srv.URL, sim.APIKey(), tt.params)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if len(b.Nodes) != tt.want {
				t.Fatalf("%d nodes, want %d", len(b.Nodes), tt.want)
			}
			for k, n := range b.Nodes {
				if n.Period != nil {
					t.Errorf("node %s: period without stats=true", k)
				}
			}
		})
	}
}

func TestBadQuery(t *testing.T) {
	sim, _, srv := newSim(t, unlimited)
	for _, tt := range []struct {
		name, param, value string
	}{
		{"StartDate", "start_date", "2026-11-01T13:00:00Z"},
		{"EndDate", "end_date", "yesterday"},
		{"Stats", "stats", "maybe"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + presim.StatusPath + sim.APIKey() + "?" + url.Values{tt.param: {tt.value}}.Encode())
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), tt.param) {
				t.Fatalf("status %d body %s, want 400 naming %s", resp.StatusCode, raw, tt.param)
			}
		})
	}
}

func TestStatsMatchTruth(t *testing.T) {
	sim, clk, srv := newSim(t)
	clk.Add(48 * time.Hour)
	day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	resp, b := get(t, srv.URL, sim.APIKey(), url.Values{
		"stats":            {"true"},
		"include_inactive": {"true"},
		"start_date":       {day.Format("2006-01-02 15:04")},
		"end_date":         {day.Add(24 * time.Hour).Format("2006-01-02 15:04")},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	sawNull := false
	for key, n := range b.Nodes {
		got := preRaw(t, n.Period["total_pre_earned"])
		want := sim.Earned(key, day, day.Add(24*time.Hour))
		if got.Cmp(want) != 0 {
			t.Errorf("node %s: total_pre_earned %s, truth %s", key, got, want)
		}
		if want.Sign() == 0 {
			t.Errorf("node %s earned nothing in a day", key)
		}
		// The day's truth is the sum of its hours.
		sum := new(big.Int)
		for h := 0; h < 24; h++ {
			from := day.Add(time.Duration(h) * time.Hour)
			sum.Add(sum, sim.Earned(key, from, from.Add(time.Hour)))
		}
		if sum.Cmp(want) != 0 {
			t.Errorf("node %s: hours sum to %s, day is %s", key, sum, want)
		}
		if string(n.Meta["url"]) == "null" {
			sawNull = true
		}
	}
	if !sawNull {
		t.Error("no node reports a null meta.url")
	}
}

func TestInactivePeriodHasNulls(t *testing.T) {
	sim, _, srv := newSim(t)
	_, b := get(t, srv.URL, sim.APIKey(), url.Values{
		"stats": {"true"}, "include_inactive": {"true"},
		"start_date": {"2020-01-01 00:00"}, "end_date": {"2020-01-01 01:00"},
	})
	for key, n := range b.Nodes {
		for _, f := range []string{"avg_latency_ms", "avg_uptime_score", "avg_reliability_score"} {
			if string(n.Period[f]) != "null" {
				t.Errorf("node %s: %s = %s, want null", key, f, n.Period[f])
			}
		}
		if string(n.Period["total_pre_earned"]) != "0" {
			t.Errorf("node %s: total_pre_earned %s, want 0", key, n.Period["total_pre_earned"])
		}
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name  string
		stats bool
		per   time.Duration
	}{
		{"Status", false, time.Minute},
		{"Stats", true, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, clk, srv := newSim(t)
			params := url.Values{"stats": {"false"}, "include_inactive": {"true"}}
			if tt.stats {
				params.Set("stats", "true")
			}
			for i := 0; i < presim.DefaultStatusLimit; i++ {
				if resp, _ := get(t, srv.URL, sim.APIKey(), params); resp.StatusCode != http.StatusOK {
					t.Fatalf("request %d: status %d", i+1, resp.StatusCode)
				}
				clk.Add(tt.per / 8)
			}
			resp, _ := get(t, srv.URL, sim.APIKey(), params)
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("fifth request: status %d, want 429", resp.StatusCode)
			}
			if ra := resp.Header.Get("Retry-After"); ra != "600" {
				t.Fatalf("Retry-After %q, want 600", ra)
			}
			if got := sim.Violations(); got != 1 {
				t.Fatalf("violations %d, want 1", got)
			}
			// Blocked: even a different kind of request is refused.
			other := url.Values{"stats": {"true"}}
			if tt.stats {
				other.Set("stats", "false")
			}
			if resp, _ := get(t, srv.URL, sim.APIKey(), other); resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("while blocked: status %d, want 429", resp.StatusCode)
			}
			if sim.Rejected() != 1 || sim.Violations() != 1 {
				t.Fatalf("rejected %d violations %d, want 1 and 1", sim.Rejected(), sim.Violations())
			}
			clk.Add(presim.DefaultBlockDuration + tt.per)
			if resp, _ := get(t, srv.URL, sim.APIKey(), params); resp.StatusCode != http.StatusOK {
				t.Fatalf("after the block: status %d", resp.StatusCode)
			}
		})
	}
}

func TestLimitsArePerNode(t *testing.T) {
	sim, _, srv := newSim(t)
	keys := sim.NodeKeys()
	// Four requests for each node separately stay within every node's limit.
	for _, k := range keys {
		for i := 0; i < presim.DefaultStatusLimit; i++ {
			if resp, _ := get(t, srv.URL, sim.APIKey(), url.Values{"public_keys": {k}}); resp.StatusCode != http.StatusOK {
				t.Fatalf("node %d request %d: status %d", 0, i, resp.StatusCode)
			}
		}
	}
	// A fifth for any of them exceeds its limit.
	if resp, _ := get(t, srv.URL, sim.APIKey(), url.Values{"public_keys": {keys[1]}}); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", resp.StatusCode)
	}
	if sim.Violations() != 1 {
		t.Fatalf("violations %d, want 1", sim.Violations())
	}
}

func TestStatusSince(t *testing.T) {
	sim, clk, srv := newSim(t, unlimited)
	transitions := 0
	prev := map[string]bool{}
	for i := 0; i < 24*6; i++ {
		clk.Add(10 * time.Minute)
		now := clk.Now()
		_, b := get(t, srv.URL, sim.APIKey(), url.Values{"include_inactive": {"true"}})
		for k, n := range b.Nodes {
			if n.Status.Connected != sim.Connected(k, now) {
				t.Fatalf("node %s at %s: connected %v, truth %v", k, now, n.Status.Connected, !n.Status.Connected)
			}
			since, err := time.Parse(time.RFC3339, n.Status.InCurrentStateSince)
			if err != nil {
				t.Fatal(err)
			}
			if since.After(now) || int64(now.Sub(since)/time.Minute) != n.Status.MinutesInCurrentState {
				t.Fatalf("since %s, minutes %d at %s", since, n.Status.MinutesInCurrentState, now)
			}
			if sim.Connected(k, since.Add(-time.Minute)) == n.Status.Connected && since.After(sim.Genesis()) {
				t.Fatalf("node %s: state at %s did not change at since", k, since)
			}
			if p, ok := prev[k]; ok && p != n.Status.Connected {
				transitions++
			}
			prev[k] = n.Status.Connected
		}
	}
	if transitions == 0 {
		t.Fatal("no node connected or disconnected in a day")
	}
}

func TestStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := presim.Start(ctx, "127.0.0.1:0", presim.Config{Speed: 60, Start: time.Now().Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, b := get(t, srv.URL, presim.DefaultAPIKey, url.Values{"include_inactive": {"true"}})
	if resp.StatusCode != http.StatusOK || len(b.Nodes) != presim.DefaultNodes {
		t.Fatalf("status %d, %d nodes", resp.StatusCode, len(b.Nodes))
	}
	// The fast clock scales Retry-After to real seconds.
	srv.Block(10 * time.Minute)
	resp, _ = get(t, srv.URL, presim.DefaultAPIKey, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "10" {
		t.Fatalf("status %d Retry-After %q, want 429 and 10", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// TestClockNeverRunsAhead runs a fast clock that starts a few simulated
// hours behind: it catches up with the real time and then keeps to it, so
// a source on its clock never asks for (and stores) a window that ends in
// the future, and a wait once it has caught up takes real time.
func TestClockNeverRunsAhead(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := presim.Start(ctx, "127.0.0.1:0", presim.Config{Speed: 36000, Start: time.Now().Add(-3 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// 3 h at 36000x is 0.3 s of real time.
	caughtUp := false
	for range 400 {
		if now, real := srv.Sim.Now(), time.Now(); now.After(real) {
			t.Fatalf("simulated %v is ahead of the real %v", now, real)
		} else if real.Sub(now) < time.Second {
			caughtUp = true
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !caughtUp {
		t.Fatal("the fast clock never caught up with the real time")
	}
	// Caught up, a simulated second is a real one: Retry-After of a
	// 2-minute block says 120 s, not 120/36000.
	srv.Block(2 * time.Minute)
	resp, _ := get(t, srv.URL, presim.DefaultAPIKey, nil)
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != http.StatusTooManyRequests || ra < 110 {
		t.Fatalf("status %d Retry-After %q, want 429 and about 120", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
