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
	if c.stop != nil && !next.Before(c.stopAt) {
		next, stop, c.stop = c.stopAt, c.stop, nil
	}
	c.now = next
	c.mu.Unlock()
	if stop != nil {
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

// logBuffer collects every log line of a run.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
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
	st   *store.Store
	logs *logBuffer
	cfg  presearch.Config
	rcfg indexer.RunnerConfig
}

func newEnv(t *testing.T, simCfg presim.Config) *env {
	t.Helper()
	e := &env{clk: &fakeClock{now: start}, logs: &logBuffer{}}
	simCfg.Now = e.clk.Now
	e.sim = presim.New(simCfg)
	e.srv = httptest.NewServer(e.sim)
	t.Cleanup(e.srv.Close)
	s, err := store.Open(t.TempDir(), store.Options{Now: e.clk.Now})
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
		BatchMaxDelay: 5 * time.Millisecond,
		BackoffMin:    time.Second,
		BackoffMax:    10 * time.Second,
		Logger:        zerolog.New(e.logs),
		Now:           e.clk.Now,
		Sleep:         e.clk.Sleep,
	}
	return e
}

// run runs the source under the real Runner until the clock reaches until.
func (e *env) run(t *testing.T, until time.Time) (indexer.Status, error) {
	t.Helper()
	src, err := presearch.New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := e.clk.runUntil(until)
	defer cancel()
	r := indexer.NewRunner(e.st, src, e.rcfg)
	err = r.Run(ctx)
	return r.Status(), err
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

func (e *env) assertNoKey(t *testing.T, st indexer.Status, key string) {
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
	var st indexer.Status
	for _, stop := range stops {
		var err error
		if st, err = e.run(t, stop); err != nil {
			t.Fatalf("run until %s: %v", stop, err)
		}
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
		if r.Kind != store.KindPresearchPeriod || r.Unit != "PRE" || r.Decimals != 18 || r.HasHeight {
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
