package presearch_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/indexer/presearch"
	"github.com/evindex/evindex/indexer/presearch/presim"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/storetest"
)

// fakeClock is the simulated time the source, the Runner and the simulator
// share. Time moves only when someone sleeps, so a week passes as fast as
// the code runs. When the clock reaches stopAt it cancels the current run,
// which is how the tests restart the source at chosen simulated times.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	stopAt time.Time
	stop   context.CancelFunc
	onStop func() // runs just before stop, while the run is still going
	slept  []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.slept = append(c.slept, d)
	next := c.now.Add(d)
	var stop context.CancelFunc
	var onStop func()
	if c.stop != nil && !next.Before(c.stopAt) {
		next, stop, c.stop, onStop, c.onStop = c.stopAt, c.stop, nil, c.onStop, nil
	}
	c.now = next
	c.mu.Unlock()
	if stop != nil {
		if onStop != nil {
			onStop()
		}
		stop()
		return context.Canceled
	}
	return nil
}

// runUntil returns a context that the clock cancels at t.
func (c *fakeClock) runUntil(t time.Time) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	c.mu.Lock()
	c.stopAt, c.stop = t, cancel
	c.mu.Unlock()
	return ctx, cancel
}

// dropTransport delivers every dropEvery-th stats request and then loses
// the answer, like a connection reset after the server counted it.
type dropTransport struct {
	mu        sync.Mutex
	dropEvery int
	stats     int
	dropped   int
}

func (d *dropTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || !strings.Contains(req.URL.RawQuery, "stats=true") {
		return resp, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats++
	if d.dropEvery > 0 && d.stats%d.dropEvery == 0 {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d.dropped++
		return nil, errors.New("connection reset by peer")
	}
	return resp, nil
}

// start is a Sunday morning, off any window boundary.
var start = time.Date(2026, 11, 1, 10, 17, 23, 0, time.UTC)

type env struct {
	clk  *fakeClock
	sim  *presim.Sim
	srv  *httptest.Server
	st   store.Store
	logs *storetest.LogBuffer
	cfg  presearch.Config
	rcfg indexer.RunnerConfig
}

func newEnv(t *testing.T, simCfg presim.Config) *env {
	t.Helper()
	e := &env{clk: &fakeClock{now: start}, logs: &storetest.LogBuffer{}}
	simCfg.Now = e.clk.Now
	e.sim = presim.New(simCfg)
	e.srv = httptest.NewServer(e.sim)
	t.Cleanup(e.srv.Close)
	s, err := bolt.Open(t.TempDir(), bolt.Options{Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(context.Background()); err != nil {
			t.Errorf("store integrity: %v", err)
		}
		s.Close()
	})
	e.st = s
	e.cfg = presearch.DefaultConfig()
	e.cfg.Name = "pre"
	e.cfg.BaseURL = e.srv.URL
	e.cfg.APIKey = e.sim.APIKey()
	e.cfg.Now = e.clk.Now
	e.cfg.Sleep = e.clk.Sleep
	e.rcfg = indexer.RunnerConfig{
		// Results then commit with the next request's saved history, as
		// fast as the fake clock runs; production keeps the default.
		BatchMaxDelay: time.Second,
		BackoffMin:    time.Second,
		BackoffMax:    10 * time.Second,
		Logger:        zerolog.New(e.logs),
		Now:           e.clk.Now,
		Sleep:         e.clk.Sleep,
	}
	return e
}

// run runs the source under the real Runner until the clock reaches until.
// It returns the Runner's status at that moment (before the stop) and the
// Runner's error.
func (e *env) run(t *testing.T, until time.Time) (store.SourceStatus, error) {
	t.Helper()
	src, err := presearch.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := e.clk.runUntil(until)
	defer cancel()
	r := indexer.NewRunner(e.st, src, e.rcfg)
	var atStop store.SourceStatus
	e.clk.mu.Lock()
	e.clk.onStop = func() { atStop = r.Status() }
	e.clk.mu.Unlock()
	err = r.Run(ctx)
	if atStop.Name == "" {
		atStop = r.Status() // it ended on its own (a permanent failure)
	}
	return atStop, err
}

func (e *env) rewards(t *testing.T) []store.Reward {
	t.Helper()
	var out []store.Reward
	q := store.RewardQuery{Source: e.cfg.Name, Limit: store.MaxLimit}
	for i := 0; i < 1000; i++ {
		p, err := e.st.Rewards(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out
		}
		q.Cursor = p.Next
	}
	t.Fatal("rewards never ended")
	return nil
}

func (e *env) assertNoKey(t *testing.T, st store.SourceStatus, key string) {
	t.Helper()
	for what, text := range map[string]string{"logs": e.logs.String(), "last error": st.LastError, "endpoint": st.Endpoint} {
		if strings.Contains(text, key) {
			t.Errorf("the API key appears in the %s", what)
		}
	}
}

// TestWeekMatchesTruth is the acceptance test: a simulated week with ten
// restarts in the busiest hour and lost responses stores exactly the
// simulator's truth for every window, without one limit violation.
func TestWeekMatchesTruth(t *testing.T) {
	e := newEnv(t, presim.Config{Seed: 3})
	drops := &dropTransport{dropEvery: 7}
	e.cfg.HTTPClient = &http.Client{Transport: drops}
	e.cfg.StatusInterval = 5 * time.Minute

	end := start.AddDate(0, 0, 7).Add(40 * time.Minute)
	stops := []time.Time{}
	for i := 1; i <= 10; i++ {
		stops = append(stops, start.Add(time.Duration(i)*7*time.Minute))
	}
	stops = append(stops, end)
	var st store.SourceStatus
	for i, stop := range stops {
		var err error
		if st, err = e.run(t, stop); err != nil {
			t.Fatalf("run until %s: %v", stop, err)
		}
		e.assertNoKey(t, st, e.sim.APIKey())
		if i == 0 && (st.State != store.StateBackfilling || st.Progress == nil || st.Progress.Done >= st.Progress.Total) {
			t.Fatalf("after 7 minutes: state %s progress %+v, want backfilling with progress", st.State, st.Progress)
		}
	}
	if st.State != store.StateLive || st.Lag > uint64(time.Hour/time.Second) {
		t.Fatalf("after a week: state %s lag %d s, want live and at most an hour behind", st.State, st.Lag)
	}
	if drops.dropped == 0 {
		t.Fatal("no response was lost; the test would not notice a history saved too late")
	}

	if v := e.sim.Violations(); v != 0 {
		t.Fatalf("%d rate limit violations", v)
	}
	origin := start.Truncate(24*time.Hour).AddDate(0, 0, -presearch.DefaultBackfillDays)
	// The last window readable at end: 11:00 ends at 11:00 + stats delay.
	wantCP := end.Add(-presearch.DefaultStatsDelay).Truncate(time.Hour)
	cp, ok, err := e.st.Checkpoint(context.Background(), e.cfg.Name)
	if err != nil || !ok {
		t.Fatalf("checkpoint: %v %v", ok, err)
	}
	if cp.Height != uint64(wantCP.Unix()) || !cp.Time.Equal(wantCP) {
		t.Fatalf("checkpoint %d (%s), want %d (%s)", cp.Height, cp.Time, wantCP.Unix(), wantCP)
	}
	cov, err := e.st.Coverage(context.Background(), e.cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(cov) != 1 || cov[0].From != uint64(origin.Unix())+1 || cov[0].To != cp.Height {
		t.Fatalf("coverage %v, want one range %d..%d", cov, origin.Unix()+1, cp.Height)
	}

	rewards := e.rewards(t)
	perNode := map[string]*big.Int{}
	covered := map[string]time.Duration{}
	for _, r := range rewards {
		if r.Kind != presearch.KindPeriod || r.Unit != "PRE" || r.Decimals != 18 || r.HasHeight {
			t.Fatalf("reward %+v has the wrong kind, unit or height", r)
		}
		if !r.Time.Equal(r.PeriodStart) || r.ID != r.PeriodStart.Format(time.RFC3339) {
			t.Fatalf("reward %s: time %s id %s", r.Account, r.Time, r.ID)
		}
		want := e.sim.Earned(r.Account, r.PeriodStart, r.PeriodEnd)
		if r.RawAmount != want.String() {
			t.Errorf("node %s window %s..%s: stored %s, truth %s", r.Account, r.PeriodStart, r.PeriodEnd, r.RawAmount, want)
		}
		if _, ok := perNode[r.Account]; !ok {
			perNode[r.Account] = new(big.Int)
		}
		v, _ := new(big.Int).SetString(r.RawAmount, 10)
		perNode[r.Account].Add(perNode[r.Account], v)
		covered[r.Account] += r.PeriodEnd.Sub(r.PeriodStart)
	}
	for _, k := range e.sim.NodeKeys() {
		want := e.sim.Earned(k, origin, wantCP)
		if got := perNode[k]; got == nil || got.Cmp(want) != 0 {
			t.Errorf("node %s: stored total %v, truth %s", k, got, want)
		}
		if covered[k] != wantCP.Sub(origin) {
			t.Errorf("node %s: windows cover %s, want %s (a gap or an overlap)", k, covered[k], wantCP.Sub(origin))
		}
	}

	// Status: the latest snapshot of each node, and connection events that
	// agree with the simulator's history.
	nodes, err := e.st.Nodes(context.Background(), e.cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != len(e.sim.NodeKeys()) {
		t.Fatalf("%d nodes stored, want %d", len(nodes), len(e.sim.NodeKeys()))
	}
	events, err := e.st.Events(context.Background(), store.EventQuery{Source: e.cfg.Name, Limit: store.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Items) == 0 {
		t.Fatal("no connection events in a week")
	}
	for _, ev := range events.Items {
		node := ev.Addresses[0]
		connected := ev.Type == presearch.EventConnected
		if e.sim.Connected(node, ev.BlockTime) != connected || e.sim.Connected(node, ev.BlockTime.Add(-time.Minute)) == connected {
			t.Errorf("event %s for %s at %s does not match the simulator", ev.Type, node, ev.BlockTime)
		}
	}
	e.assertNoKey(t, st, e.sim.APIKey())
	if !strings.Contains(e.logs.String(), "backfill progress") {
		t.Error("no backfill progress was logged")
	}
	t.Logf("%d rewards, %d events, %d lost responses", len(rewards), len(events.Items), drops.dropped)
}

// countRequests counts the requests that reach h.
type countRequests struct {
	mu sync.Mutex
	n  int
	h  http.Handler
}

func (c *countRequests) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	c.h.ServeHTTP(w, r)
}

func (c *countRequests) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func TestRateLimitedWaitsForTheBlock(t *testing.T) {
	e := newEnv(t, presim.Config{Seed: 5})
	e.cfg.BackfillDays = 1
	// Another client of the same key tripped the limit just before we start.
	const block = 40 * time.Minute
	e.sim.Block(block)
	until := start.Add(6 * time.Hour)
	st, err := e.run(t, until)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.sim.Rejected(); got != 1 {
		t.Fatalf("%d requests refused while blocked, want exactly 1 (no hammering)", got)
	}
	if v := e.sim.Violations(); v != 0 {
		t.Fatalf("%d limit violations", v)
	}
	// The Runner honoured Retry-After: one wait covered the whole block.
	waited := false
	e.clk.mu.Lock()
	for _, d := range e.clk.slept {
		waited = waited || d >= block
	}
	e.clk.mu.Unlock()
	if !waited {
		t.Fatal("no wait as long as Retry-After")
	}
	if st.Reconnects != 1 || !strings.Contains(st.LastError, "rate limited") {
		t.Fatalf("reconnects %d, last error %q", st.Reconnects, st.LastError)
	}
	// Every window, including the one refused, was read once the block
	// lifted, and matches the truth.
	origin := start.Truncate(24*time.Hour).AddDate(0, 0, -1)
	wantCP := until.Add(-presearch.DefaultStatsDelay).Truncate(time.Hour)
	for _, k := range e.sim.NodeKeys() {
		sum := new(big.Int)
		for _, r := range e.rewards(t) {
			if r.Account == k {
				v, _ := new(big.Int).SetString(r.RawAmount, 10)
				sum.Add(sum, v)
			}
		}
		if want := e.sim.Earned(k, origin, wantCP); sum.Cmp(want) != 0 {
			t.Errorf("node %s: stored %s, truth %s", k, sum, want)
		}
	}
	e.assertNoKey(t, st, e.sim.APIKey())
}

// TestKeyRejectedFailsWithoutHammering runs a day with a wrong key: the
// source shows failed with the reason, and asks again only every
// KeyRetryInterval.
func TestKeyRejectedFailsWithoutHammering(t *testing.T) {
	e := newEnv(t, presim.Config{})
	counter := &countRequests{h: e.sim}
	e.srv.Config.Handler = counter
	const wrong = "wrong-key-5f1e09c2"
	e.cfg.APIKey = wrong
	st, err := e.run(t, start.Add(24*time.Hour))
	if err != nil {
		t.Fatalf("run error %v, want none: a rejected key is tried again later", err)
	}
	if st.State != store.StateFailed || !strings.Contains(st.LastError, "API key rejected") {
		t.Fatalf("state %s, last error %q", st.State, st.LastError)
	}
	if n, most := counter.count(), 1+int(24*time.Hour/presearch.KeyRetryInterval); n < 2 || n > most {
		t.Fatalf("%d requests with a rejected key in a day, want 2 to %d", n, most)
	}
	if strings.Contains(st.LastError, wrong) {
		t.Fatal("the key appears in the last error")
	}
	e.assertNoKey(t, st, wrong)
	if !strings.Contains(e.logs.String(), "API key rejected") {
		t.Fatal("the failure was not logged")
	}
}

// TestKeyRejectedRecoversByItself rejects the key once (disabled for a
// while on the Presearch dashboard): the source shows failed, tries again
// after KeyRetryInterval, not sooner, and is live again without a restart.
func TestKeyRejectedRecoversByItself(t *testing.T) {
	e := newEnv(t, presim.Config{Seed: 3})
	e.cfg.BackfillDays = 1
	if _, err := e.run(t, start.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	times := &requestTimes{h: e.sim, now: e.clk.Now}
	e.srv.Config.Handler = times
	e.sim.FailNext(1, http.StatusUnauthorized)
	// One run throughout: a restart would retry at once and prove nothing.
	st, err := e.run(t, start.Add(2*time.Hour+2*presearch.KeyRetryInterval))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != store.StateLive {
		t.Fatalf("state %s (%q) after the key was accepted again, want live", st.State, st.LastError)
	}
	got := times.all()
	if len(got) < 2 || got[1].Sub(got[0]) < presearch.KeyRetryInterval {
		t.Fatalf("requests at %v: the retry after a 401 must wait %v", got, presearch.KeyRetryInterval)
	}
	// The error stays, with its time, which is before the source went
	// live again.
	if !strings.Contains(st.LastError, "API key rejected") || !st.LastErrorAt.Equal(got[0]) || !st.LiveSince.After(st.LastErrorAt) {
		t.Fatalf("last error %q at %v, live since %v; want the 401 at %v, before live", st.LastError, st.LastErrorAt, st.LiveSince, got[0])
	}
}

// requestTimes records when (on the test clock) each request arrived.
type requestTimes struct {
	mu  sync.Mutex
	at  []time.Time
	h   http.Handler
	now func() time.Time
}

func (c *requestTimes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.at = append(c.at, c.now())
	c.mu.Unlock()
	c.h.ServeHTTP(w, r)
}

func (c *requestTimes) all() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.at...)
}

func TestPublicKeysSelectNodes(t *testing.T) {
	e := newEnv(t, presim.Config{Seed: 11})
	keys := e.sim.NodeKeys()
	plus := -1
	for i, k := range keys {
		if strings.Contains(k, "+") {
			plus = i
		}
	}
	if plus < 0 {
		t.Fatal("no simulated key contains '+'; the test would not check query escaping")
	}
	e.cfg.PublicKeys = []string{keys[plus]}
	e.cfg.BackfillDays = 1
	until := start.Add(3 * time.Hour)
	if _, err := e.run(t, until); err != nil {
		t.Fatal(err)
	}
	rewards := e.rewards(t)
	if len(rewards) == 0 {
		t.Fatal("no rewards for the selected node")
	}
	for _, r := range rewards {
		if r.Account != keys[plus] {
			t.Fatalf("reward for unselected node %s", r.Account)
		}
	}
	nodes, err := e.st.Nodes(context.Background(), e.cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || nodes[0].Node != keys[plus] {
		t.Fatalf("nodes %v, want only the selected one", nodes)
	}
}

func TestSnapshotsOnChangeAndHourly(t *testing.T) {
	e := newEnv(t, presim.Config{Seed: 2})
	e.cfg.BackfillDays = 0
	e.cfg.StatusInterval = time.Minute
	until := start.Add(12 * time.Hour)
	if _, err := e.run(t, until); err != nil {
		t.Fatal(err)
	}
	status, _ := e.sim.Served()
	for _, k := range e.sim.NodeKeys() {
		p, err := e.st.NodeHistory(context.Background(), store.NodeHistoryQuery{Source: e.cfg.Name, Node: k, Limit: store.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		snaps := p.Items
		if len(snaps) < 12 || len(snaps) >= status {
			t.Fatalf("node %s: %d snapshots from %d polls, want at least hourly and not every poll", k, len(snaps), status)
		}
		for i, s := range snaps {
			if s.Connected == nil || *s.Connected != e.sim.Connected(k, s.Time) {
				t.Fatalf("node %s at %s: snapshot connected %v disagrees with the simulator", k, s.Time, s.Connected)
			}
			if i > 0 && s.Time.Sub(snaps[i-1].Time) > time.Hour+e.cfg.StatusInterval {
				t.Fatalf("node %s: %s without a snapshot", k, s.Time.Sub(snaps[i-1].Time))
			}
			if !bytes.Contains(s.Details, []byte(`"meta":{`)) || !bytes.Contains(s.Details, []byte(`"in_current_state_since"`)) {
				t.Fatalf("details %s lack meta or status", s.Details)
			}
		}
		// Every change of state shows up in a snapshot within one interval.
		for m := start.Truncate(time.Minute).Add(time.Minute); m.Before(until.Add(-2 * time.Minute)); m = m.Add(time.Minute) {
			if e.sim.Connected(k, m) == e.sim.Connected(k, m.Add(-time.Minute)) {
				continue
			}
			found := false
			for _, s := range snaps {
				if !s.Time.Before(m) && s.Time.Sub(m) <= e.cfg.StatusInterval+time.Minute {
					found = found || *s.Connected == e.sim.Connected(k, m)
				}
			}
			if !found {
				t.Fatalf("node %s: the change at %s has no snapshot", k, m)
			}
		}
	}
}

// fixedAPI answers with canned bodies, to check what the source keeps.
func fixedAPI(status, stats string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("stats") == "true" {
			io.WriteString(w, stats)
			return
		}
		io.WriteString(w, status)
	})
}

func TestResponsesKeptAsSent(t *testing.T) {
	const statusBody = `{"success":true,"nodes":{
		"K1":{"meta":{"description":null,"url":null,"gateway_pool":"production","remote_addr":null,"version":"1.0.7","is_provisioned":true},
		      "status":{"connected":true,"blocked":false,"in_current_state_since":"2026-11-01T09:00:00Z","minutes_in_current_state":77}},
		"K2":{"meta":{"description":"b"},"status":{"connected":null,"blocked":null,"in_current_state_since":null,"minutes_in_current_state":null}}}}`
	tests := []struct {
		name       string
		stats      string
		wantK1     string // raw amount; "" means no reward
		wantDetail string
	}{
		{"ExactAmountAndNulls",
			`{"success":true,"nodes":{"K1":{"meta":{},"status":{},"period":{"total_pre_earned":0.123456789012345678,"avg_latency_ms":null,"total_requests":3}},
			  "K2":{"meta":{},"status":{},"period":{"total_pre_earned":null,"avg_latency_ms":null}}}}`,
			"123456789012345678", `"avg_latency_ms":null`},
		{"ScientificNotation",
			`{"success":true,"nodes":{"K1":{"meta":{},"status":{},"period":{"total_pre_earned":1.5e-7}}}}`,
			"150000000000", `"total_pre_earned":1.5e-7`},
		{"QuotedAmount",
			`{"success":true,"nodes":{"K1":{"meta":{},"status":{},"period":{"total_pre_earned":"2.000000000000000001"}}}}`,
			"2000000000000000001", `"total_pre_earned":"2.000000000000000001"`},
		{"EmptyNodesArray", `{"success":true,"nodes":[]}`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, presim.Config{})
			e.srv.Config.Handler = fixedAPI(statusBody, tt.stats)
			e.cfg.BackfillDays = 0
			until := start.Add(2 * time.Hour)
			if _, err := e.run(t, until); err != nil {
				t.Fatal(err)
			}
			cp, _, _ := e.st.Checkpoint(context.Background(), e.cfg.Name)
			if want := until.Add(-presearch.DefaultStatsDelay).Truncate(time.Hour); cp.Height != uint64(want.Unix()) {
				t.Fatalf("checkpoint %s, want %s", cp.Time, want)
			}
			var k1 []store.Reward
			for _, r := range e.rewards(t) {
				if r.Account == "K2" {
					t.Fatalf("reward %s for a null total_pre_earned", r.RawAmount)
				}
				k1 = append(k1, r)
			}
			if tt.wantK1 == "" {
				if len(k1) != 0 {
					t.Fatalf("%d rewards, want none", len(k1))
				}
			} else {
				if len(k1) == 0 {
					t.Fatal("no rewards")
				}
				for _, r := range k1 {
					if r.RawAmount != tt.wantK1 || !bytes.Contains(r.Details, []byte(tt.wantDetail)) {
						t.Fatalf("reward %s details %s, want %s with %s", r.RawAmount, r.Details, tt.wantK1, tt.wantDetail)
					}
				}
			}
			nodes, err := e.st.Nodes(context.Background(), e.cfg.Name)
			if err != nil || len(nodes) != 2 {
				t.Fatalf("nodes %v %v", nodes, err)
			}
			if !bytes.Contains(nodes[0].Details, []byte(`"url":null`)) || nodes[0].Connected == nil || !*nodes[0].Connected {
				t.Fatalf("K1 details %s connected %v", nodes[0].Details, nodes[0].Connected)
			}
			if nodes[1].Connected != nil || !bytes.Contains(nodes[1].Details, []byte(`"connected":null`)) {
				t.Fatalf("K2 connected %v details %s: null must stay null", nodes[1].Connected, nodes[1].Details)
			}
		})
	}
}

// TestFastClockDemo wires the source the way the demo does: a simulator on
// its own listener with a fast clock, shared with the source, so earnings
// appear within moments of real time.
func TestFastClockDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim, err := presim.Start(ctx, "127.0.0.1:0", presim.Config{Speed: 600, Start: time.Now().Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	cfg := presearch.DefaultConfig()
	cfg.Name = "presearch-demo"
	cfg.BaseURL = sim.URL
	cfg.APIKey = presim.DefaultAPIKey
	cfg.BackfillDays = 1
	cfg.Now, cfg.Sleep = sim.Now, sim.Sleep
	src, err := presearch.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.MustOpen(t)
	r := indexer.NewRunner(st, src, indexer.RunnerConfig{Logger: zerolog.Nop(), BatchMaxDelay: 5 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	// The first stats requests go out at once and each brings a day or
	// more for three nodes. The fast clock stays slow enough that real
	// request latency stays far inside the limiter's one-minute margin.
	var p store.Page[store.Reward]
	for i := 0; i < 600; i++ {
		p, err = st.Rewards(ctx, store.RewardQuery{Source: cfg.Name, Limit: store.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) >= 3*3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(p.Items) < 3*3 {
		t.Fatalf("%d rewards; the fast clock did not bring earnings", len(p.Items))
	}
	for _, rw := range p.Items {
		if want := sim.Earned(rw.Account, rw.PeriodStart, rw.PeriodEnd); rw.RawAmount != want.String() {
			t.Fatalf("node %s window %s: stored %s, truth %s", rw.Account, rw.PeriodStart, rw.RawAmount, want)
		}
	}
	if v := sim.Violations(); v != 0 {
		t.Fatalf("%d limit violations", v)
	}
}
