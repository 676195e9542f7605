package flow_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/indexer/flow"
	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

const srcName = "flow-test"

var (
	rewardsPaid     = "A." + flowsim.DefaultStakingContract + ".FlowIDTableStaking.RewardsPaid"
	delegatorReward = "A." + flowsim.DefaultStakingContract + ".FlowIDTableStaking.DelegatorRewardsPaid"
	tokensDeposited = flowsim.FlowTokenType("TokensDeposited")
)

func startSim(t *testing.T, cfg flowsim.Config) *flowsim.Sim {
	t.Helper()
	sim, err := flowsim.Start(context.Background(), "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("start flowsim: %v", err)
	}
	t.Cleanup(sim.Close)
	return sim
}

func newSource(t *testing.T, sim *flowsim.Sim, mutate func(*flow.Config)) *flow.Source {
	t.Helper()
	cfg := flow.Config{Name: srcName, Endpoint: sim.Addr(), StartHeight: sim.RootHeight() + 1}
	if mutate != nil {
		mutate(&cfg)
	}
	src, err := flow.New(cfg, flow.WithHeadPollInterval(50*time.Millisecond), flow.WithProgressLogInterval(time.Millisecond))
	if err != nil {
		t.Fatalf("new source: %v", err)
	}
	return src
}

// runner runs a source on a store until stop is called.
type runner struct {
	*indexer.Runner
	cancel context.CancelFunc
	done   chan error
}

func startRunner(t *testing.T, st store.Store, src indexer.Source) *runner {
	t.Helper()
	r := indexer.NewRunner(st, src, indexer.RunnerConfig{
		BatchMaxRecords: 500,
		BatchMaxDelay:   2 * time.Millisecond,
		BackoffMin:      time.Millisecond,
		BackoffMax:      10 * time.Millisecond,
		Logger:          zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	ctx, cancel := context.WithCancel(context.Background())
	rr := &runner{Runner: r, cancel: cancel, done: make(chan error, 1)}
	go func() { rr.done <- r.Run(ctx) }()
	t.Cleanup(func() { rr.stop(t) })
	return rr
}

// stop cancels the run and waits for it; a run that ended on its own
// returns its error.
func (r *runner) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("runner did not stop")
		return nil
	}
}

// eventually polls cond until it holds, failing the test after a bounded
// number of tries.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 6000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func checkpoint(t *testing.T, st store.Store) uint64 {
	t.Helper()
	cp, found, err := st.Checkpoint(context.Background(), srcName)
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	if !found {
		return 0
	}
	return cp.Height
}

func waitCheckpoint(t *testing.T, st store.Store, height uint64) {
	t.Helper()
	eventually(t, "checkpoint "+itoa(height), func() bool { return checkpoint(t, st) >= height })
}

func itoa(v uint64) string { return big.NewInt(0).SetUint64(v).String() }

func allEvents(t *testing.T, st store.Store) []store.Event {
	t.Helper()
	var out []store.Event
	q := store.EventQuery{Source: srcName, Limit: store.MaxLimit}
	for {
		p, err := st.Events(context.Background(), q)
		if err != nil {
			t.Fatalf("events: %v", err)
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out
		}
		q.Cursor = p.Next
	}
}

func allBlocks(t *testing.T, st store.Store) []store.Block {
	t.Helper()
	var out []store.Block
	q := store.BlockQuery{Source: srcName, Limit: store.MaxLimit}
	for {
		p, err := st.Blocks(context.Background(), q)
		if err != nil {
			t.Fatalf("blocks: %v", err)
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out
		}
		q.Cursor = p.Next
	}
}

func allRewards(t *testing.T, st store.Store) []store.Reward {
	t.Helper()
	var out []store.Reward
	q := store.RewardQuery{Source: srcName, Limit: store.MaxLimit}
	for {
		p, err := st.Rewards(context.Background(), q)
		if err != nil {
			t.Fatalf("rewards: %v", err)
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out
		}
		q.Cursor = p.Next
	}
}

func compact(t *testing.T, p []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, p); err != nil {
		t.Fatalf("compact %q: %v", p, err)
	}
	return b.String()
}

// checkTruth compares the store with what the simulated chain holds in
// [from, to] for filter f: the same events (identity, ids, payload), a block
// for every height when everyHeight is set, the same rewards per node, and
// one contiguous coverage range starting at from.
// chainTruth is what a test compares the store with: one simulator, or
// several that serve one chain's sporks.
type chainTruth interface {
	Events(from, to uint64, f flowsim.Filter) ([]flowsim.Block, error)
	RewardTotals(from, to uint64) map[string]flowsim.RewardTotal
}

func checkTruth(t *testing.T, st store.Store, sim chainTruth, from, to uint64, f flowsim.Filter, everyHeight bool) {
	t.Helper()
	truth, err := sim.Events(from, to, f)
	if err != nil {
		t.Fatal(err)
	}
	var want []store.Event
	for _, b := range truth {
		for _, ev := range b.Events {
			want = append(want, store.Event{
				Height: b.Height, BlockID: hex.EncodeToString(b.ID), BlockTime: b.Time,
				TxID: hex.EncodeToString(ev.TransactionId), TxIndex: ev.TransactionIndex, EventIndex: ev.EventIndex,
				Type: ev.Type, Payload: ev.Payload,
			})
		}
	}
	// The runner goes on committing while this reads: what lies past to
	// was committed after to was read, and is compared by a later check.
	var got []store.Event
	for _, e := range allEvents(t, st) {
		if e.Height <= to {
			got = append(got, e)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("stored %d events, the chain holds %d in %d..%d", len(got), len(want), from, to)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Height != w.Height || g.TxIndex != w.TxIndex || g.EventIndex != w.EventIndex || g.Type != w.Type ||
			g.BlockID != w.BlockID || !g.BlockTime.Equal(w.BlockTime) || g.TxID != w.TxID ||
			compact(t, g.Payload) != compact(t, w.Payload) {
			t.Fatalf("event %d:\n got %d/%d/%d %s %s\nwant %d/%d/%d %s %s", i,
				g.Height, g.TxIndex, g.EventIndex, g.Type, g.Payload, w.Height, w.TxIndex, w.EventIndex, w.Type, w.Payload)
		}
		if !strings.HasPrefix(g.Type, g.Contract+".") {
			t.Fatalf("event %d: contract %q for type %q", i, g.Contract, g.Type)
		}
	}

	// Blocks past to were committed after to was read; the checkpoint
	// read after them covers every block stored with it, since a block
	// and the checkpoint that proves it are written in one transaction.
	blocks := allBlocks(t, st)
	last := max(to, checkpoint(t, st))
	byHeight := map[uint64]store.Block{}
	for _, b := range blocks {
		if b.Height <= to || b.Height > last {
			byHeight[b.Height] = b
		}
	}
	for _, b := range truth {
		sb, ok := byHeight[b.Height]
		if !ok {
			if everyHeight {
				t.Fatalf("no block stored for height %d", b.Height)
			}
			continue
		}
		if sb.BlockID != hex.EncodeToString(b.ID) || !sb.BlockTime.Equal(b.Time) || int(sb.EventCount) != len(b.Events) {
			t.Fatalf("block %d: stored %+v, chain id %x with %d events", b.Height, sb, b.ID, len(b.Events))
		}
	}
	for h := range byHeight {
		if h < from || h > last {
			t.Fatalf("block %d stored outside %d..%d (the checkpoint)", h, from, last)
		}
	}

	wantRewards := sim.RewardTotals(from, to)
	gotRewards := map[string]flowsim.RewardTotal{}
	for _, r := range allRewards(t, st) {
		if r.HasHeight && r.Height > to {
			continue // committed after to was read
		}
		raw, ok := new(big.Int).SetString(r.RawAmount, 10)
		if !ok || !raw.IsUint64() {
			t.Fatalf("reward %s: raw amount %q", r.ID, r.RawAmount)
		}
		tot := gotRewards[r.Account]
		tot.Count++
		tot.Raw += raw.Uint64()
		gotRewards[r.Account] = tot
	}
	if len(f.EventTypes) == 0 || containsAll(f.EventTypes, rewardsPaid, delegatorReward) {
		if len(gotRewards) != len(wantRewards) {
			t.Fatalf("rewards for %d nodes, want %d", len(gotRewards), len(wantRewards))
		}
		for node, w := range wantRewards {
			if g := gotRewards[node]; g != w {
				t.Fatalf("node %s: %d rewards summing to %d, want %d summing to %d", node, g.Count, g.Raw, w.Count, w.Raw)
			}
		}
	}

	cov, err := st.Coverage(context.Background(), srcName)
	if err != nil {
		t.Fatal(err)
	}
	if len(cov) != 1 || cov[0].From != from || cov[0].To < to {
		t.Fatalf("coverage %+v, want one range from %d to at least %d", cov, from, to)
	}
}

func containsAll(list []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, l := range list {
			found = found || l == w
		}
		if !found {
			return false
		}
	}
	return true
}

func TestCleanRun(t *testing.T) {
	tests := []struct {
		name        string
		mutate      func(*flow.Config)
		filter      flowsim.Filter
		everyHeight bool
	}{
		{name: "AllEvents", everyHeight: true},
		{
			name: "RewardsWithHeartbeat7",
			mutate: func(c *flow.Config) {
				c.EventTypes = []string{rewardsPaid, delegatorReward}
				c.HeartbeatInterval = 7
				c.Backfill.Distance = 1 << 40 // the stream walks the history
			},
			filter: flowsim.Filter{EventTypes: []string{rewardsPaid, delegatorReward}},
		},
		{
			name: "ContractAndAddress",
			mutate: func(c *flow.Config) {
				c.Contracts = []string{"A." + flowsim.FlowTokenContract + ".FlowToken"}
				c.Addresses = []string{"0x" + flowsim.DefaultStakingContract}
			},
			filter:      flowsim.Filter{Contracts: []string{"A." + flowsim.FlowTokenContract + ".FlowToken"}, Addresses: []string{flowsim.DefaultStakingContract}},
			everyHeight: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := startSim(t, flowsim.Config{Seed: 11, History: 700, RootHeight: 100, RewardEvery: 40})
			src := newSource(t, sim, tt.mutate)
			st := storetest.MustOpen(t)
			r := startRunner(t, st, src)
			// With a heartbeat interval above 1 the last heights are proven
			// only by the next response.
			hb := src.Config().HeartbeatInterval
			waitCheckpoint(t, st, sim.SealedHeight()-hb+1)
			checkTruth(t, st, sim, 101, checkpoint(t, st), tt.filter, tt.everyHeight)

			// New blocks arrive on the open stream.
			sim.Produce(45)
			waitCheckpoint(t, st, sim.SealedHeight()-hb+1)
			eventually(t, "live state", func() bool { return r.Status().State == store.StateLive })
			if err := r.stop(t); err != nil {
				t.Fatalf("run: %v", err)
			}
			checkTruth(t, st, sim, 101, checkpoint(t, st), tt.filter, tt.everyHeight)
			if s := sim.Stats(); s.Streams != 1 || s.RangeCalls != 0 {
				t.Fatalf("%d streams and %d range calls, want one stream and no range call", s.Streams, s.RangeCalls)
			}
		})
	}
}

func TestFirstStartAtSealedHead(t *testing.T) {
	sim := startSim(t, flowsim.Config{Seed: 2, History: 300})
	st := storetest.MustOpen(t)
	startRunner(t, st, newSource(t, sim, func(c *flow.Config) { c.StartHeight = 0 }))
	eventually(t, "subscription", func() bool { return sim.Stats().Streams == 1 })
	if start := sim.Stats().StreamStarts[0]; start != 300 {
		t.Fatalf("stream started at %d, want the sealed head 300", start)
	}
	sim.Produce(20)
	waitCheckpoint(t, st, 320)
	checkTruth(t, st, sim, 300, 320, flowsim.Filter{}, true)
}

func TestRestartsResumeExactly(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*flow.Config)
		filter flowsim.Filter
	}{
		{name: "Stream"},
		{
			name: "Backfill",
			mutate: func(c *flow.Config) {
				c.EventTypes = []string{rewardsPaid, delegatorReward, tokensDeposited}
				c.Backfill = flow.BackfillConfig{Workers: 3, MaxRange: 37, RequestsPerSecond: 5000, Distance: 60}
			},
			filter: flowsim.Filter{EventTypes: []string{rewardsPaid, delegatorReward, tokensDeposited}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := startSim(t, flowsim.Config{Seed: 5, History: 2000, RootHeight: 10, RewardEvery: 50})
			st := storetest.MustOpen(t)
			src := newSource(t, sim, tt.mutate)
			for i := range 10 {
				// Stop at varying points, some while the chain grows.
				target := min(checkpoint(t, st)+1+uint64(i*i*7%90), sim.SealedHeight())
				r := startRunner(t, st, src)
				if i%3 == 1 {
					sim.Produce(uint64(5 + i))
				}
				waitCheckpoint(t, st, target)
				if err := r.stop(t); err != nil {
					t.Fatalf("restart %d: %v", i, err)
				}
				cov, err := st.Coverage(context.Background(), srcName)
				if err != nil || len(cov) != 1 || cov[0].From != 11 || cov[0].To != checkpoint(t, st) {
					t.Fatalf("restart %d: coverage %+v (checkpoint %d), %v", i, cov, checkpoint(t, st), err)
				}
			}
			startRunner(t, st, src)
			waitCheckpoint(t, st, sim.SealedHeight())
			checkTruth(t, st, sim, 11, sim.SealedHeight(), tt.filter, tt.filter.EventTypes == nil)
		})
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name   string
		inject func(*flowsim.Sim)
		check  func(*testing.T, flowsim.Stats, store.SourceStatus)
	}{
		{
			name:   "StreamCut",
			inject: func(s *flowsim.Sim) { s.CutStreams(4, 90) },
			check: func(t *testing.T, s flowsim.Stats, _ store.SourceStatus) {
				if s.Streams != 5 {
					t.Fatalf("%d streams, want 5 (4 cut, then one to the end)", s.Streams)
				}
			},
		},
		{
			name:   "MessageIndexGap",
			inject: func(s *flowsim.Sim) { s.SkipMessageIndex(2, 33) },
			check: func(t *testing.T, s flowsim.Stats, st store.SourceStatus) {
				// Each gap ends a stream; the next resumes at the checkpoint,
				// which is before the lost response.
				if s.Streams != 3 || s.StreamStarts[1] > 101+33 || s.StreamStarts[2] > s.StreamStarts[1]+33 {
					t.Fatalf("stream starts %v", s.StreamStarts)
				}
				if st.Reconnects != 2 || !strings.Contains(st.LastError, "message_index") {
					t.Fatalf("status: %d reconnects, last error %q", st.Reconnects, st.LastError)
				}
			},
		},
		{
			name:   "UnavailableCalls",
			inject: func(s *flowsim.Sim) { s.FailCalls(6) },
			check: func(t *testing.T, s flowsim.Stats, st store.SourceStatus) {
				if s.Faulted != 6 || st.Reconnects < 1 {
					t.Fatalf("%d faulted calls, %d reconnects", s.Faulted, st.Reconnects)
				}
			},
		},
		{
			name:   "UnavailableForAWhile",
			inject: func(s *flowsim.Sim) { s.FailFor(150 * time.Millisecond) },
			check: func(t *testing.T, s flowsim.Stats, st store.SourceStatus) {
				if s.Faulted == 0 || st.Reconnects == 0 || !strings.Contains(st.LastError, "Unavailable") {
					t.Fatalf("%d faulted calls, %d reconnects, last error %q", s.Faulted, st.Reconnects, st.LastError)
				}
			},
		},
		{
			name:   "ResourceExhausted",
			inject: func(s *flowsim.Sim) { s.ExhaustStreams(3) },
			check: func(t *testing.T, s flowsim.Stats, st store.SourceStatus) {
				if s.Streams != 1 || s.Faulted != 3 || !strings.Contains(st.LastError, "ResourceExhausted") {
					t.Fatalf("%d streams, %d faulted, last error %q", s.Streams, s.Faulted, st.LastError)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := startSim(t, flowsim.Config{Seed: 9, History: 500, RootHeight: 100})
			tt.inject(sim)
			st := storetest.MustOpen(t)
			r := startRunner(t, st, newSource(t, sim, nil))
			waitCheckpoint(t, st, sim.SealedHeight())
			eventually(t, "live state", func() bool { return r.Status().State == store.StateLive })
			status := r.Status()
			if err := r.stop(t); err != nil {
				t.Fatalf("run: %v", err)
			}
			checkTruth(t, st, sim, 101, sim.SealedHeight(), flowsim.Filter{}, true)
			tt.check(t, sim.Stats(), status)
		})
	}
}

// A start below the node's root used to be a permanent failure; the heights
// below the root are now a gap no configured node serves: reported, passed
// over, and nothing is asked of the node below its root.
func TestStartBelowRootIsAGap(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*flow.Config)
		filter flowsim.Filter
	}{
		{name: "Stream", mutate: func(c *flow.Config) { c.StartHeight = 40 }},
		{name: "Backfill", mutate: func(c *flow.Config) {
			c.StartHeight = 40
			c.EventTypes = []string{rewardsPaid}
		}, filter: flowsim.Filter{EventTypes: []string{rewardsPaid}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := startSim(t, flowsim.Config{Seed: 9, History: 1000, RootHeight: 100})
			st := storetest.MustOpen(t)
			r := startRunner(t, st, newSource(t, sim, tt.mutate))
			waitCheckpoint(t, st, sim.SealedHeight())
			s := r.Status()
			if len(s.Gaps) != 1 || s.Gaps[0].From != 40 || s.Gaps[0].To != 99 || !strings.Contains(s.Gaps[0].Reason, "no configured access node serves") {
				t.Fatalf("gaps %+v, want 40-99 that no configured node serves", s.Gaps)
			}
			if len(s.Endpoints) != 1 || s.Endpoints[0].From != 100 || s.Endpoints[0].State != store.EndpointLive {
				t.Fatalf("endpoints %+v, want the node serving from 100, live", s.Endpoints)
			}
			cov, _ := st.Coverage(context.Background(), srcName)
			if len(cov) != 1 || cov[0].From != 100 || cov[0].To != sim.SealedHeight() {
				t.Fatalf("coverage %+v, want 100-%d", cov, sim.SealedHeight())
			}
			if rej := sim.Stats().RangeRejected; rej != 0 {
				t.Fatalf("%d range calls rejected: the node was asked below its root", rej)
			}
			checkTruth(t, st, sim, 100, sim.SealedHeight(), tt.filter, false)
		})
	}
}

func TestBackfillThenLive(t *testing.T) {
	types := []string{rewardsPaid, delegatorReward, tokensDeposited}
	const root, history = 1000, 6000
	sim := startSim(t, flowsim.Config{Seed: 21, History: history, RootHeight: root, RewardEvery: 100, CallLatency: 3 * time.Millisecond})
	st := storetest.MustOpen(t)
	r := startRunner(t, st, newSource(t, sim, func(c *flow.Config) {
		c.EventTypes = types
		c.Backfill = flow.BackfillConfig{Workers: 4, MaxRange: 250, RequestsPerSecond: 2000, Distance: 100}
	}))
	var sawBackfill bool
	eventually(t, "backfill done", func() bool {
		s := r.Status()
		sawBackfill = sawBackfill || s.State == store.StateBackfilling
		return checkpoint(t, st) >= root+history
	})
	// The live stream picks up new blocks after the backfilled range (fewer
	// than Distance, so they do not start another backfill).
	sim.Produce(60)
	waitCheckpoint(t, st, sim.SealedHeight())
	eventually(t, "live state", func() bool { return r.Status().State == store.StateLive })
	if err := r.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	checkTruth(t, st, sim, root+1, sim.SealedHeight(), flowsim.Filter{EventTypes: types}, false)

	s := sim.Stats()
	chunks := (history + 249) / 250
	if s.RangeCalls != chunks*len(types) || s.RangeRejected != 0 || s.RangeMaxSpan > 250 {
		t.Fatalf("range calls %d (want %d), rejected %d, widest %d", s.RangeCalls, chunks*len(types), s.RangeRejected, s.RangeMaxSpan)
	}
	if s.RangeMaxInFlight < 2 {
		t.Fatalf("at most %d range calls in flight; the workers did not overlap", s.RangeMaxInFlight)
	}
	// Each worker calls through a connection of its own: on a shared one
	// every answer passes through one reader and one flow-control window.
	if s.RangeConnections != 4 {
		t.Fatalf("range calls came over %d connections, want one per worker (4)", s.RangeConnections)
	}
	// No gap and no overlap: the stream starts right after the backfill.
	if len(s.StreamStarts) != 1 || s.StreamStarts[0] != root+history+1 {
		t.Fatalf("stream starts %v, want [%d]", s.StreamStarts, root+history+1)
	}
	if !sawBackfill {
		t.Fatal("state never showed backfilling")
	}
	// Backfilled heights without a matching event still have their block.
	blocks := allBlocks(t, st)
	if uint64(len(blocks)) < history {
		t.Fatalf("%d blocks stored for %d backfilled heights", len(blocks), history)
	}
}
