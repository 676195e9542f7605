package indexer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/indexer/flow"
	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/indexer/presearch"
	"github.com/evindex/evindex/indexer/presearch/presim"
	"github.com/evindex/evindex/indexer/spacemesh"
	"github.com/evindex/evindex/indexer/spacemesh/smsim"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/storetest"
)

// The fault matrix runs every source against every fault its simulator
// can inject. Each case first indexes a clean history, then injects the
// fault while more history arrives, and asserts what a user would see:
// the source recovers (or stops as failed with a message that says why),
// and every record stored before the fault is still there, unchanged and
// once, next to exactly the upstream's truth.

// running is a Runner being run in the background.
type running struct {
	r    *indexer.Runner
	stop func() error
}

func runInBackground(t *testing.T, st store.Store, src indexer.Source, cfg indexer.RunnerConfig) *running {
	t.Helper()
	r := indexer.NewRunner(st, src, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return &running{r: r, stop: stop}
}

// within polls cond until it is true, failing with what's last answer.
func within(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", what, why)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fastRunner(logs *storetest.LogBuffer) indexer.RunnerConfig {
	return indexer.RunnerConfig{
		BatchMaxDelay: 5 * time.Millisecond,
		BackoffMin:    5 * time.Millisecond,
		BackoffMax:    50 * time.Millisecond,
		Logger:        zerolog.New(logs),
	}
}

// records is every stored record of a source, by identity, with a digest
// of its content.
func records(t *testing.T, st store.Store, source string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	add := func(k, v string) {
		if _, dup := out[k]; dup {
			t.Fatalf("%s listed twice", k)
		}
		sum := sha256.Sum256([]byte(v))
		out[k] = hex.EncodeToString(sum[:8])
	}
	for q := (store.EventQuery{Source: source, Limit: store.MaxLimit}); ; {
		p, err := st.Events(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Items {
			add(fmt.Sprintf("event %d/%d/%d", e.Height, e.TxIndex, e.EventIndex), e.TxID+e.Type+string(e.Payload))
		}
		if q.Cursor = p.Next; q.Cursor == "" {
			break
		}
	}
	for q := (store.BlockQuery{Source: source, Limit: store.MaxLimit}); ; {
		p, err := st.Blocks(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range p.Items {
			add(fmt.Sprintf("block %d", b.Height), b.BlockID+b.Status)
		}
		if q.Cursor = p.Next; q.Cursor == "" {
			break
		}
	}
	for q := (store.RewardQuery{Source: source, Limit: store.MaxLimit}); ; {
		p, err := st.Rewards(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Items {
			add(fmt.Sprintf("reward %s %s", r.Account, r.ID), r.RawAmount+r.Kind+fmt.Sprint(r.Height))
		}
		if q.Cursor = p.Next; q.Cursor == "" {
			break
		}
	}
	return out
}

// keptAll checks that every record of before is still stored unchanged,
// except those keep says may change.
func keptAll(t *testing.T, before, after map[string]string, mayChange func(key string) bool) {
	t.Helper()
	lost, changed := 0, 0
	for k, v := range before {
		switch w, ok := after[k]; {
		case mayChange != nil && mayChange(k):
		case !ok:
			if lost++; lost <= 3 {
				t.Errorf("%s was stored before the fault and is gone", k)
			}
		case w != v:
			if changed++; changed <= 3 {
				t.Errorf("%s was stored before the fault and changed", k)
			}
		}
	}
	if lost+changed > 0 {
		t.Fatalf("%d records lost and %d changed of %d stored before the fault", lost, changed, len(before))
	}
}

func checkpointOf(st store.Store, source string) (uint64, bool) {
	cp, found, err := st.Checkpoint(context.Background(), source)
	return cp.Height, found && err == nil
}

func oneRange(t *testing.T, st store.Store, source string, to uint64) {
	t.Helper()
	cov, err := st.Coverage(context.Background(), source)
	if err != nil {
		t.Fatal(err)
	}
	if len(cov) != 1 || cov[0].To != to {
		t.Fatalf("coverage %+v, want one range ending at %d", cov, to)
	}
}

// ---- Flow ----

const flowName = "flow-f"

var flowTypes = []string{
	"A." + flowsim.DefaultStakingContract + ".FlowIDTableStaking.RewardsPaid",
	"A." + flowsim.DefaultStakingContract + ".FlowIDTableStaking.DelegatorRewardsPaid",
	flowsim.FlowTokenType("TokensDeposited"),
}

// flowTruth compares the stored Flow records with the chain: the same
// event identities (tx id and type each), a block per height, the same
// reward totals per node. Heights whose payloads were spoiled are
// reported, not compared by payload, and their rewards are left out.
func flowTruth(t *testing.T, st store.Store, sim *flowsim.Sim, filter flowsim.Filter, cp uint64) (spoiled map[string]bool) {
	t.Helper()
	truth, err := sim.Events(1, cp, filter)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, b := range truth {
		for _, e := range b.Events {
			want[fmt.Sprintf("%d/%d/%d", b.Height, e.TransactionIndex, e.EventIndex)] = hex.EncodeToString(e.TransactionId) + " " + e.Type
		}
	}
	spoiled = map[string]bool{}
	got := 0
	for q := (store.EventQuery{Source: flowName, Limit: store.MaxLimit}); ; {
		p, err := st.Events(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Items {
			k := fmt.Sprintf("%d/%d/%d", e.Height, e.TxIndex, e.EventIndex)
			if w, ok := want[k]; !ok || w != e.TxID+" "+e.Type {
				t.Fatalf("event %s: stored %s %s, chain %q", k, e.TxID, e.Type, w)
			}
			if bytes.HasPrefix(e.Payload, []byte(`"`)) {
				spoiled[k] = true
			}
			got++
		}
		if q.Cursor = p.Next; q.Cursor == "" {
			break
		}
	}
	if got != len(want) {
		t.Fatalf("%d events stored for heights 1..%d, the chain has %d", got, cp, len(want))
	}
	info, err := st.Source(context.Background(), flowName)
	if err != nil || info.Blocks != cp {
		t.Fatalf("%d blocks stored (%v), want %d", info.Blocks, err, cp)
	}
	wantRewards := map[string]flowsim.RewardTotal{}
	for _, r := range sim.Rewards(1, cp) {
		if spoiled[fmt.Sprintf("%d/%d/%d", r.Height, r.TxIndex, r.EventIndex)] {
			continue // not readable, so not a reward (the event is kept)
		}
		tt := wantRewards[r.NodeID]
		tt.Count++
		tt.Raw += r.Raw
		wantRewards[r.NodeID] = tt
	}
	gotRewards := map[string]flowsim.RewardTotal{}
	for q := (store.RewardQuery{Source: flowName, Limit: store.MaxLimit}); ; {
		p, err := st.Rewards(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Items {
			v, _ := strconv.ParseUint(r.RawAmount, 10, 64)
			tt := gotRewards[r.Account]
			tt.Count++
			tt.Raw += v
			gotRewards[r.Account] = tt
		}
		if q.Cursor = p.Next; q.Cursor == "" {
			break
		}
	}
	if fmt.Sprint(gotRewards) != fmt.Sprint(wantRewards) {
		t.Fatalf("rewards per node: stored %v, chain %v", gotRewards, wantRewards)
	}
	return spoiled
}

type flowCase struct {
	name     string
	backfill bool // index with event types, so far-behind history is fetched by range calls
	inject   func(*flowsim.Sim)
	heal     func(*flowsim.Sim) // ends a fault that does not end by itself, once it was seen
	seen     string             // in last_error once the fault hit
	garbage  bool
}

func TestFaultMatrixFlow(t *testing.T) {
	cases := []flowCase{
		{name: "StreamCuts", inject: func(s *flowsim.Sim) { s.CutStreams(3, 40) }, seen: "stream closed by the access node"},
		{name: "MessageIndexGaps", inject: func(s *flowsim.Sim) { s.SkipMessageIndex(2, 25) }, seen: "message_index"},
		{name: "UnavailableStorm", inject: func(s *flowsim.Sim) { s.FailFor(300 * time.Millisecond) }, seen: "Unavailable"},
		{name: "UnavailableCalls", inject: func(s *flowsim.Sim) { s.FailCalls(10) }, seen: "Unavailable"},
		{name: "ResourceExhausted", inject: func(s *flowsim.Sim) { s.ExhaustStreams(4) }, seen: "ResourceExhausted"},
		{name: "SlowStreamPastStallTimeout", inject: func(s *flowsim.Sim) { s.SlowStreams(2, time.Minute) }, seen: "event stream stalled"},
		{name: "SlowRangeCallsPastCallTimeout", backfill: true, inject: func(s *flowsim.Sim) { s.SetCallLatency(time.Minute) },
			heal: func(s *flowsim.Sim) { s.SetCallLatency(0) }, seen: "DeadlineExceeded"},
		{name: "UnavailableDuringBackfill", backfill: true, inject: func(s *flowsim.Sim) { s.FailCalls(6) }, seen: "Unavailable"},
		{name: "GarbagePayloads", inject: func(s *flowsim.Sim) { s.GarbagePayloads(4) }, garbage: true},
		{name: "GarbagePayloadsInBackfill", backfill: true, inject: func(s *flowsim.Sim) { s.GarbagePayloads(2) }, garbage: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim, err := flowsim.Start(context.Background(), "127.0.0.1:0", flowsim.Config{Seed: 11, History: 200, RewardEvery: 20})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(sim.Close)
			st := storetest.MustOpen(t)
			cfg := flow.Config{Name: flowName, Endpoint: sim.Addr(), StartHeight: 1}
			var filter flowsim.Filter
			if c.backfill {
				cfg.EventTypes, cfg.Backfill.Distance, cfg.Backfill.MaxRange = flowTypes, 50, 40
				filter.EventTypes = flowTypes
			}
			src, err := flow.New(cfg, flow.WithHeadPollInterval(20*time.Millisecond),
				flow.WithStallTimeout(300*time.Millisecond), flow.WithCallTimeout(300*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			logs := &storetest.LogBuffer{}
			caughtUp := func(r *running) func() (bool, string) {
				return func() (bool, string) {
					cp, _ := checkpointOf(st, flowName)
					s := r.r.Status()
					return cp == sim.SealedHeight() && s.State == store.StateLive, fmt.Sprintf("checkpoint %d of %d, %+v", cp, sim.SealedHeight(), s)
				}
			}

			// A clean history first.
			r := runInBackground(t, st, src, fastRunner(logs))
			within(t, "the clean history", caughtUp(r))
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			before := records(t, st, flowName)

			// The stopped run's stream may linger on the node for a moment;
			// a fault injected now could be spent on it instead of the
			// restarted source.
			within(t, "the old stream to close", func() (bool, string) {
				n := sim.Stats().OpenStreams
				return n == 0, fmt.Sprintf("%d streams open", n)
			})
			// The fault meets the source as it restarts far behind.
			c.inject(sim)
			sim.Produce(200)
			faulted := sim.Stats().Faulted
			r = runInBackground(t, st, src, fastRunner(logs))
			var hit store.SourceStatus
			if c.seen != "" {
				within(t, "the fault to show", func() (bool, string) {
					hit = r.r.Status()
					return strings.Contains(hit.LastError, c.seen), fmt.Sprintf("%+v", hit)
				})
				if c.heal != nil {
					c.heal(sim)
				}
			}
			within(t, "recovery", caughtUp(r))
			final := r.r.Status()
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			if c.seen == "" && sim.Stats().Faulted == faulted {
				t.Fatal("the simulator injected nothing: the case tests nothing")
			}
			cp, _ := checkpointOf(st, flowName)
			oneRange(t, st, flowName, cp)
			spoiled := flowTruth(t, st, sim, filter, cp)
			keptAll(t, before, records(t, st, flowName), nil)
			if c.garbage {
				if len(spoiled) == 0 || !strings.Contains(logs.String(), "not JSON-CDC") {
					t.Fatalf("garbage payloads: %d events stored verbatim, warning logged: %v", len(spoiled), strings.Contains(logs.String(), "not JSON-CDC"))
				}
				t.Logf("garbage payloads kept verbatim in %d events; reward events among them logged as unreadable: %v", len(spoiled),
					strings.Contains(logs.String(), "reward event unreadable"))
			} else if len(spoiled) > 0 {
				t.Fatalf("%d payloads stored as text", len(spoiled))
			}
			t.Logf("%s: fault shown as %q (state %s, %d reconnects); recovered to %d, %d records kept", c.name,
				firstLine(hit.LastError), hit.State, final.Reconnects, cp, len(before))
		})
	}
}

// retryErrors lists, once each and in order, the errors the Runner logged
// before retrying: what a user reading the log sees of the fault.
func retryErrors(logs string) []string {
	var out []string
	seen := map[string]bool{}
	for _, line := range strings.Split(logs, "\n") {
		var l struct {
			Message string `json:"message"`
			Error   string `json:"error"`
		}
		if json.Unmarshal([]byte(line), &l) != nil || l.Error == "" || seen[l.Error] {
			continue
		}
		seen[l.Error] = true
		out = append(out, firstLine(l.Error))
	}
	return out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	if len(line) > 160 {
		line = line[:160] + "…"
	}
	return line
}

// ---- Spacemesh ----

const smName = "sm-f"

func smTruth(st store.Store, sim *smsim.Sim) string {
	tracked := map[string]bool{}
	for _, a := range append(sim.Coinbases(), sim.Smeshers()...) {
		tracked[a] = true
	}
	want := map[string]smsim.Totals{}
	for _, r := range sim.Rewards(0, sim.AppliedLayer()) {
		if tracked[r.Coinbase] || tracked[r.Smesher] {
			tt := want[r.Coinbase]
			tt.Count++
			tt.Sum += r.Total
			want[r.Coinbase] = tt
		}
	}
	got := map[string]smsim.Totals{}
	for q := (store.RewardQuery{Source: smName, Limit: store.MaxLimit}); ; {
		p, err := st.Rewards(context.Background(), q)
		if err != nil {
			return err.Error()
		}
		for _, r := range p.Items {
			v, _ := strconv.ParseUint(r.RawAmount, 10, 64)
			tt := got[r.Account]
			tt.Count++
			tt.Sum += v
			got[r.Account] = tt
		}
		if q.Cursor = p.Next; q.Cursor == "" {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		return fmt.Sprintf("rewards per coinbase: stored %v, node %v", got, want)
	}
	return ""
}

type smCase struct {
	name string
	// fault injects the fault while the source runs and returns the
	// layers at and above which stored rewards may rightly change.
	fault func(t *testing.T, sim *smsim.Sim, r *running) (changedFrom uint32)
	seen  string
}

func TestFaultMatrixSpacemesh(t *testing.T) {
	cases := []smCase{
		{name: "BufferFullCloses", fault: func(t *testing.T, sim *smsim.Sim, r *running) uint32 {
			for i := 0; i < 3; i++ {
				within(t, "live streams", func() (bool, string) { return sim.Streams() > 0, "no stream" })
				sim.BufferFull()
				sim.Advance(7)
			}
			return ^uint32(0)
		}},
		{name: "RevertWithinHdist", fault: func(t *testing.T, sim *smsim.Sim, r *running) uint32 {
			from := sim.AppliedLayer() - 5
			sim.Revert(6)
			sim.Advance(3)
			return from
		}},
		{name: "UnavailableStorm", seen: "Unavailable", fault: func(t *testing.T, sim *smsim.Sim, r *running) uint32 {
			sim.SetUnavailable(true)
			sim.Advance(10)
			within(t, "the outage to show", func() (bool, string) {
				s := r.r.Status()
				return s.State == store.StateRetrying && strings.Contains(s.LastError, "Unavailable"), fmt.Sprintf("%+v", s)
			})
			sim.SetUnavailable(false)
			return ^uint32(0)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim, err := smsim.Start(context.Background(), "127.0.0.1:0", "127.0.0.1:0",
				smsim.Config{Seed: 11, Layers: 60, LayersPerEpoch: 10})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(sim.Close)
			st := storetest.MustOpen(t)
			src, err := spacemesh.New(spacemesh.Config{
				Name: smName, PublicEndpoint: sim.PublicAddr(), PrivateEndpoint: sim.PrivateAddr(),
				Coinbases: sim.Coinbases(), Smeshers: sim.Smeshers(),
				PollInterval: 40 * time.Millisecond, StreamRetry: 5 * time.Millisecond, StreamBackoff: 50 * time.Millisecond, ChunkLayers: 25,
			})
			if err != nil {
				t.Fatal(err)
			}
			logs := &storetest.LogBuffer{}
			r := runInBackground(t, st, src, fastRunner(logs))
			caughtUp := func() (bool, string) {
				cp, _ := checkpointOf(st, smName)
				if cp != uint64(sim.AppliedLayer()) {
					return false, fmt.Sprintf("checkpoint %d, node at %d; %+v", cp, sim.AppliedLayer(), r.r.Status())
				}
				d := smTruth(st, sim)
				return d == "", d
			}
			within(t, "the clean history", caughtUp)
			before := records(t, st, smName)

			from := c.fault(t, sim, r)
			sim.Advance(12)
			within(t, "recovery", caughtUp)
			final := r.r.Status()
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			cp, _ := checkpointOf(st, smName)
			oneRange(t, st, smName, cp)
			keptAll(t, before, records(t, st, smName), func(k string) bool {
				var layer uint32
				if _, err := fmt.Sscanf(k, "block %d", &layer); err == nil {
					return layer >= from
				}
				if i := strings.LastIndexByte(k, '/'); strings.HasPrefix(k, "reward ") && i > 0 {
					l, _ := strconv.ParseUint(k[i+1:], 10, 32)
					return uint32(l) >= from
				}
				return false
			})
			if c.seen != "" && !strings.Contains(final.LastError+logs.String(), c.seen) {
				t.Fatalf("the fault never showed: %+v", final)
			}
			t.Logf("%s: recovered to layer %d, %d reconnects, last error %q, %d records kept", c.name, cp, final.Reconnects, firstLine(final.LastError), len(before))
		})
	}
}

// ---- Presearch ----

const preName = "pre-f"

// simClock is simulated time shared by the simulator, the source and the
// Runner: it moves only when one of them sleeps, and a sleep that reaches
// the end of the current phase cancels the run.
type simClock struct {
	mu     sync.Mutex
	now    time.Time
	stopAt time.Time
	stop   context.CancelFunc
	onStop func() // runs just before stop, while the run still goes
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *simClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
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
	// Real requests run between simulated sleeps: let them.
	time.Sleep(time.Millisecond)
	return nil
}

// runUntil runs the source under a Runner until the clock reaches end,
// or until the Runner gives up, and returns the status it had then.
func (c *simClock) runUntil(st store.Store, src indexer.Source, cfg indexer.RunnerConfig, end time.Time) (store.SourceStatus, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := indexer.NewRunner(st, src, cfg)
	var status store.SourceStatus
	c.mu.Lock()
	c.stopAt, c.stop = end, cancel
	c.onStop = func() { status = r.Status() }
	c.mu.Unlock()
	err := r.Run(ctx)
	if status.Name == "" {
		status = r.Status() // it ended on its own
	}
	return status, err
}

type preCase struct {
	name   string
	inject func(sim *presim.Sim, cfg *presearch.Config)
	fails  bool
	seen   string
}

func TestFaultMatrixPresearch(t *testing.T) {
	cases := []preCase{
		{name: "RateLimited429", inject: func(s *presim.Sim, _ *presearch.Config) { s.Block(40 * time.Minute) }, seen: "rate limited"},
		{name: "ServerErrors5xx", inject: func(s *presim.Sim, _ *presearch.Config) { s.FailNext(3, http.StatusServiceUnavailable) }, seen: "HTTP 503"},
		{name: "BadGateway502", inject: func(s *presim.Sim, _ *presearch.Config) { s.FailNext(2, http.StatusBadGateway) }, seen: "HTTP 502"},
		{name: "GarbageBodies", inject: func(s *presim.Sim, _ *presearch.Config) { s.GarbageNext(5) }, seen: "decode"},
		{name: "SlowPastRequestTimeout", inject: func(s *presim.Sim, _ *presearch.Config) { s.SlowNext(2, time.Minute) }, seen: "deadline exceeded"},
		{name: "KeyRejected401", inject: func(_ *presim.Sim, c *presearch.Config) { c.APIKey = "a-key-with-a-typo" }, fails: true, seen: "API key rejected (HTTP 401)"},
	}
	start := time.Date(2026, 11, 1, 10, 17, 23, 0, time.UTC)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := &simClock{now: start}
			sim := presim.New(presim.Config{Now: clk.Now, Seed: 11})
			srv := httptest.NewServer(sim)
			t.Cleanup(srv.Close)
			st, err := bolt.Open(t.TempDir(), bolt.Options{Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := st.Check(context.Background()); err != nil {
					t.Errorf("store integrity: %v", err)
				}
				st.Close()
			})
			cfg := presearch.DefaultConfig()
			cfg.Name, cfg.BaseURL, cfg.APIKey, cfg.BackfillDays = preName, srv.URL, sim.APIKey(), 1
			cfg.Now, cfg.Sleep, cfg.RequestTimeout = clk.Now, clk.Sleep, 200*time.Millisecond
			cfg.StatusInterval = 10 * time.Minute
			logs := &storetest.LogBuffer{}
			rcfg := indexer.RunnerConfig{BatchMaxDelay: time.Second, BackoffMin: time.Second, BackoffMax: 30 * time.Second,
				Logger: zerolog.New(logs), Now: clk.Now, Sleep: clk.Sleep}
			run := func(end time.Time) (store.SourceStatus, error) {
				src, err := presearch.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				return clk.runUntil(st, src, rcfg, end)
			}

			if _, err := run(start.Add(90 * time.Minute)); err != nil {
				t.Fatal(err)
			}
			before := records(t, st, preName)
			cpBefore, _ := checkpointOf(st, preName)

			c.inject(sim, &cfg)
			end := start.Add(6 * time.Hour)
			status, err := run(end)
			cp, _ := checkpointOf(st, preName)
			if c.fails {
				// A rejected key fails the source; it tries the key again
				// rarely, so the run ends with the clock, not an error.
				if err != nil || status.State != store.StateFailed || !strings.Contains(status.LastError, c.seen) {
					t.Fatalf("run: %v, status %+v; want failed with %q", err, status, c.seen)
				}
				if cp != cpBefore {
					t.Fatalf("checkpoint moved from %d to %d on a rejected key", cpBefore, cp)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(logs.String(), c.seen) {
					t.Fatalf("the fault never showed (%q):\n%s", c.seen, logs.String())
				}
				if want := end.Add(-presearch.DefaultStatsDelay).Truncate(time.Hour); cp != uint64(want.Unix()) || status.State != store.StateLive {
					t.Fatalf("checkpoint %s, state %s; want live at %s", time.Unix(int64(cp), 0).UTC(), status.State, want)
				}
			}
			if v := sim.Violations(); v != 0 {
				t.Fatalf("%d requests exceeded the API's limits", v)
			}
			if strings.Contains(logs.String()+status.LastError, sim.APIKey()) || strings.Contains(logs.String()+status.LastError, "a-key-with-a-typo") {
				t.Fatal("the API key reached a log line or the status")
			}
			oneRange(t, st, preName, cp)
			after := records(t, st, preName)
			keptAll(t, before, after, nil)
			preTruth(t, st, sim, cp)
			t.Logf("%s: state %s, last error %q; checkpoint %s, %d records kept, %d after", c.name, status.State,
				firstLine(status.LastError), time.Unix(int64(cp), 0).UTC().Format(time.RFC3339), len(before), len(after))
			for _, e := range retryErrors(logs.String()) {
				t.Logf("  logged: %s", e)
			}
		})
	}
}

// preTruth checks every stored window against what the node earned, and
// that per node the windows sum to the earnings over the whole coverage.
func preTruth(t *testing.T, st store.Store, sim *presim.Sim, cp uint64) {
	t.Helper()
	cov, err := st.Coverage(context.Background(), preName)
	if err != nil || len(cov) != 1 {
		t.Fatalf("coverage %v (%v)", cov, err)
	}
	origin, end := time.Unix(int64(cov[0].From)-1, 0).UTC(), time.Unix(int64(cp), 0).UTC()
	sums := map[string]*big.Int{}
	for q := (store.RewardQuery{Source: preName, Limit: store.MaxLimit}); ; {
		p, err := st.Rewards(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Items {
			if want := sim.Earned(r.Account, r.PeriodStart, r.PeriodEnd); want.String() != r.RawAmount {
				t.Fatalf("%s %s..%s: stored %s, earned %s", r.Account, r.PeriodStart, r.PeriodEnd, r.RawAmount, want)
			}
			v, _ := new(big.Int).SetString(r.RawAmount, 10)
			if sums[r.Account] == nil {
				sums[r.Account] = new(big.Int)
			}
			sums[r.Account].Add(sums[r.Account], v)
		}
		if q.Cursor = p.Next; q.Cursor == "" {
			break
		}
	}
	for _, n := range sim.NodeKeys() {
		want := sim.Earned(n, origin, end)
		if got := sums[n]; (got == nil && want.Sign() != 0) || (got != nil && got.Cmp(want) != 0) {
			t.Fatalf("node %s: windows sum to %v, earned %s over %s..%s", n, got, want, origin, end)
		}
	}
}

// damagedFrom is a real store whose commits fail for damage from height
// on, as when the page a restarted source's next events go to is damaged.
type damagedFrom struct {
	store.Store
	height uint64
}

func (d damagedFrom) Apply(ctx context.Context, batches ...store.Batch) error {
	for _, b := range batches {
		if b.Checkpoint != nil && b.Checkpoint.Height >= d.height {
			return fmt.Errorf("write /data/evindex.db: %w: page 41 is unreadable", store.ErrCorrupt)
		}
	}
	return d.Store.Apply(ctx, batches...)
}

// TestFlowAtTheHeadFailsOnAFailedCommit: a Flow source reads the node's
// sealed heights from its event stream and then waits at the head, where a
// node that seals nothing sends nothing more. The commit of the last
// heights fails; the source must fail with that error, not sit live at its
// old checkpoint (as the daemon did on a damaged file whenever its last
// Emit had returned before the commit failed).
func TestFlowAtTheHeadFailsOnAFailedCommit(t *testing.T) {
	sim, err := flowsim.Start(context.Background(), "127.0.0.1:0", flowsim.Config{Seed: 11, History: 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	st := damagedFrom{Store: storetest.MustOpen(t), height: sim.SealedHeight()}
	src, err := flow.New(flow.Config{Name: flowName, Endpoint: sim.Addr(), StartHeight: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := runInBackground(t, st, src, fastRunner(&storetest.LogBuffer{}))
	within(t, "the source failed", func() (bool, string) {
		s := r.r.Status()
		return s.State == store.StateFailed, fmt.Sprintf("%+v", s)
	})
	if s := r.r.Status(); !strings.Contains(s.LastError, "database file is corrupt") || !strings.Contains(s.LastError, "evindex check") {
		t.Fatalf("last error %q: want the damage and what to do", s.LastError)
	}
	if cp, _ := checkpointOf(st, flowName); cp >= sim.SealedHeight() {
		t.Fatalf("checkpoint %d: the failing commit was stored", cp)
	}
	if n := sim.Stats().Streams; n != 1 {
		t.Fatalf("%d streams: a source that failed for damage resubscribed", n)
	}
}
