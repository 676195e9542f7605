package flow_test

import (
	"context"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/indexer/flow"
	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

const sporkSeed = 77

// sporkSim starts a node of spork [root, last] (last 0: the live spork,
// history sealed blocks above its root) on addr ("" for a free port).
func sporkSim(t *testing.T, addr string, root, last, history uint64, latency time.Duration) *flowsim.Sim {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	sim, err := flowsim.Start(context.Background(), addr, flowsim.Config{
		Seed: sporkSeed, RootHeight: root, LastHeight: last, History: history,
		RewardEvery: 100, LegacyRewardsBelow: 1200, CallLatency: latency,
	})
	if err != nil {
		t.Fatalf("start spork [%d, %d]: %v", root, last, err)
	}
	t.Cleanup(sim.Close)
	return sim
}

// freeAddr reserves a loopback port for a node that starts later.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

var sporkTypes = []string{rewardsPaid, delegatorReward, epochTotal, tokensDeposited}

var epochTotal = "A." + flowsim.DefaultStakingContract + ".FlowIDTableStaking.EpochTotalRewardsPaid"

func sporkSource(t *testing.T, live string, history []string, opts ...flow.Option) *flow.Source {
	t.Helper()
	cfg := flow.Config{Name: srcName, Endpoint: live, HistoryEndpoints: history, StartHeight: 1, EventTypes: sporkTypes}
	cfg.Backfill.Workers, cfg.Backfill.MaxRange, cfg.Backfill.Distance = 4, 100, 50
	opts = append([]flow.Option{flow.WithHeadPollInterval(20 * time.Millisecond), flow.WithProgressLogInterval(time.Second),
		flow.WithNodeBackoff(5*time.Millisecond, 50*time.Millisecond), flow.WithReprobeInterval(20 * time.Millisecond)}, opts...)
	src, err := flow.New(cfg, opts...)
	if err != nil {
		t.Fatalf("new source: %v", err)
	}
	return src
}

func coverage(t *testing.T, st store.Store) []store.Range {
	t.Helper()
	cov, err := st.Coverage(context.Background(), srcName)
	if err != nil {
		t.Fatal(err)
	}
	return cov
}

// Three sporks, two past and one live: a backfill from height 1 reads each
// range from its own node and equals the chain exactly, across both
// spork boundaries, then follows the live node.
func TestThreeSporks(t *testing.T) {
	past1 := sporkSim(t, "", 1, 999, 0, 0)
	past2 := sporkSim(t, "", 1000, 1999, 0, 0)
	live := sporkSim(t, "", 2000, 0, 600, 0)
	chain := flowsim.Sporks{past1, past2, live}
	st := storetest.MustOpen(t)
	// The history endpoints in no particular order: ranges come from the
	// nodes, not from the list.
	r := startRunner(t, st, sporkSource(t, live.Addr(), []string{past2.Addr(), past1.Addr()}))
	waitCheckpoint(t, st, live.SealedHeight())
	live.Produce(30)
	waitCheckpoint(t, st, live.SealedHeight())
	f := flowsim.Filter{EventTypes: sporkTypes}
	checkTruth(t, st, chain, 1, live.SealedHeight(), f, false)

	for i, s := range chain {
		stats := s.Stats()
		if stats.RangeRejected != 0 || stats.RangeOutOfRange != 0 || stats.RangeCalls == 0 {
			t.Errorf("spork %d: %d range calls, %d below its root, %d above its head: want every range from its own node", i, stats.RangeCalls, stats.RangeRejected, stats.RangeOutOfRange)
		}
	}
	if n := live.Stats().Streams; n == 0 {
		t.Error("the live node's event stream was never followed")
	}
	for _, s := range []*flowsim.Sim{past1, past2} {
		if n := s.Stats().Calls["SubscribeEventsFromStartHeight"]; n != 0 {
			t.Errorf("a past spork's node was asked for %d event streams", n)
		}
	}
	s := r.Status()
	if len(s.Gaps) != 0 {
		t.Errorf("gaps %+v, want none", s.Gaps)
	}
	want := map[string][2]uint64{past1.Addr(): {1, 999}, past2.Addr(): {1000, 1999}, live.Addr(): {2000, 0}}
	for _, ep := range s.Endpoints {
		w, ok := want[ep.Endpoint]
		if !ok || !ep.Known || ep.From != w[0] || (w[1] != 0 && ep.To != w[1]) {
			t.Errorf("endpoint %+v, want range %v", ep, w)
		}
		if (ep.Endpoint == live.Addr()) != (ep.State == store.EndpointLive) {
			t.Errorf("endpoint %s state %s", ep.Endpoint, ep.State)
		}
	}
}

// The live endpoint changed to the next spork's node after a spork ends:
// the source continues from the old spork's last height with no gap.
func TestSporkSwitchContinues(t *testing.T) {
	old := sporkSim(t, "", 1, 799, 0, 0)
	st := storetest.MustOpen(t)
	r := startRunner(t, st, sporkSource(t, old.Addr(), nil))
	waitCheckpoint(t, st, 799)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	next := sporkSim(t, "", 800, 0, 300, 0)
	startRunner(t, st, sporkSource(t, next.Addr(), nil))
	waitCheckpoint(t, st, next.SealedHeight())
	checkTruth(t, st, flowsim.Sporks{old, next}, 1, next.SealedHeight(), flowsim.Filter{EventTypes: sporkTypes}, false)
}

// One past spork's node is unreachable: the other ranges are indexed, the
// gap is reported with its reason, and when the node comes up the gap
// fills and coverage becomes one range.
func TestSporkGapFills(t *testing.T) {
	past1 := sporkSim(t, "", 1, 999, 0, 0)
	missing := freeAddr(t)
	live := sporkSim(t, "", 2000, 0, 500, 0)
	st := storetest.MustOpen(t)
	r := startRunner(t, st, sporkSource(t, live.Addr(), []string{past1.Addr(), missing}))
	waitCheckpoint(t, st, live.SealedHeight())

	eventually(t, "the gap", func() bool { return len(r.Status().Gaps) == 1 })
	s := r.Status()
	g := s.Gaps[0]
	if g.From != 1000 || g.To != 1999 || !strings.Contains(g.Reason, missing) {
		t.Fatalf("gap %+v, want 1000-1999 naming %s", g, missing)
	}
	if cov := coverage(t, st); len(cov) != 2 || cov[0] != (store.Range{From: 1, To: 999}) || cov[1].From != 2000 {
		t.Fatalf("coverage %+v, want 1-999 and 2000-", cov)
	}
	for _, ep := range s.Endpoints {
		if ep.Endpoint == missing && (ep.State != store.EndpointUnreachable || ep.Known) {
			t.Fatalf("endpoint %+v, want unreachable", ep)
		}
	}

	past2 := sporkSim(t, missing, 1000, 1999, 0, 0)
	eventually(t, "one coverage range", func() bool {
		cov := coverage(t, st)
		return len(cov) == 1 && cov[0].From == 1 && cov[0].To >= live.SealedHeight()
	})
	eventually(t, "no gap", func() bool { return len(r.Status().Gaps) == 0 })
	live.Produce(10)
	waitCheckpoint(t, st, live.SealedHeight())
	checkTruth(t, st, flowsim.Sporks{past1, past2, live}, 1, live.SealedHeight(), flowsim.Filter{EventTypes: sporkTypes}, false)
}

// Two nodes serve one past spork; one dies mid-backfill, the other
// finishes the range, and the result is exact.
func TestSporkFailover(t *testing.T) {
	a := sporkSim(t, "", 1, 2999, 0, 2*time.Millisecond)
	b := sporkSim(t, "", 1, 2999, 0, 2*time.Millisecond)
	live := sporkSim(t, "", 3000, 0, 200, 0)
	st := storetest.MustOpen(t)
	startRunner(t, st, sporkSource(t, live.Addr(), []string{a.Addr(), b.Addr()}))
	eventually(t, "a backfill under way on both nodes", func() bool {
		return checkpoint(t, st) > 300 && a.Stats().RangeCalls+b.Stats().RangeCalls > 20
	})
	// The first node in the list is the preferred one: kill whichever
	// is doing the work.
	victim, survivor := a, b
	if b.Stats().RangeCalls > a.Stats().RangeCalls {
		victim, survivor = b, a
	}
	before := survivor.Stats().RangeCalls
	victim.Close()
	if cp := checkpoint(t, st); cp >= 2999 {
		t.Fatalf("the backfill was done (checkpoint %d) before the node died", cp)
	}
	waitCheckpoint(t, st, live.SealedHeight())
	if survivor.Stats().RangeCalls == before {
		t.Fatal("the surviving node made no range call after the other died")
	}
	checkTruth(t, st, flowsim.Sporks{survivor, live}, 1, live.SealedHeight(), flowsim.Filter{EventTypes: sporkTypes}, false)
}

// Nodes whose sporks overlap contradict each other: a configuration error
// naming them, not a guess.
func TestContradictingNodes(t *testing.T) {
	a := sporkSim(t, "", 1, 1500, 0, 0)
	live := sporkSim(t, "", 1000, 0, 800, 0)
	st := storetest.MustOpen(t)
	r := startRunner(t, st, sporkSource(t, live.Addr(), []string{a.Addr()}))
	var err error
	select {
	case err = <-r.done:
		close(r.done)
	case <-time.After(20 * time.Second):
		t.Fatal("contradicting nodes did not stop the source")
	}
	if !indexer.IsPermanent(err) || !strings.Contains(err.Error(), a.Addr()) || !strings.Contains(err.Error(), live.Addr()) || !strings.Contains(err.Error(), "contradict") {
		t.Fatalf("got %v, want a permanent error naming both nodes", err)
	}
	if s := r.Status(); s.State != store.StateFailed {
		t.Fatalf("state %s, want failed", s.State)
	}
}

// Flow rewards carry their epoch: from epochCounter, or for the legacy
// signatures (below height 1200 here) from the block's
// EpochTotalRewardsPaid. A summary by epoch equals the sum of the rows it
// summarizes, and the network total of each epoch is kept.
func TestRewardEpochs(t *testing.T) {
	past := sporkSim(t, "", 1, 999, 0, 0)
	live := sporkSim(t, "", 1000, 0, 900, 0)
	chain := flowsim.Sporks{past, live}
	st := storetest.MustOpen(t)
	startRunner(t, st, sporkSource(t, live.Addr(), []string{past.Addr()}))
	head := live.SealedHeight()
	waitCheckpoint(t, st, head)
	ctx := context.Background()

	want := map[string]uint64{} // reward id -> epoch
	for _, r := range chain.Rewards(1, head) {
		want[fmt.Sprintf("%d/%d/%d", r.Height, r.TxIndex, r.EventIndex)] = r.Epoch
	}
	rows := allRewards(t, st)
	if len(rows) != len(want) || len(rows) == 0 {
		t.Fatalf("%d rewards stored, the chain paid %d", len(rows), len(want))
	}
	type key struct {
		account string
		epoch   uint64
	}
	sums := map[key]*big.Int{}
	counts := map[key]uint64{}
	legacy := 0
	for _, r := range rows {
		if !r.HasEpoch || r.Epoch != want[r.ID] {
			t.Fatalf("reward %s: epoch %d (set %v), the chain says %d", r.ID, r.Epoch, r.HasEpoch, want[r.ID])
		}
		if r.Height < 1200 {
			legacy++
		}
		k := key{r.Account, r.Epoch}
		if sums[k] == nil {
			sums[k] = new(big.Int)
		}
		amt, _ := new(big.Int).SetString(r.RawAmount, 10)
		sums[k].Add(sums[k], amt)
		counts[k]++
	}
	if legacy == 0 {
		t.Fatal("no legacy-signature reward was checked")
	}
	summary, err := st.RewardSummary(ctx, store.SummaryQuery{RewardQuery: store.RewardQuery{Source: srcName}, GroupBy: store.GroupEpoch})
	if err != nil {
		t.Fatal(err)
	}
	if len(summary) != len(sums) {
		t.Fatalf("%d summary rows, want one per account and epoch: %d", len(summary), len(sums))
	}
	for _, row := range summary {
		if row.Epoch == nil {
			t.Fatalf("row %+v has no epoch", row)
		}
		k := key{row.Account, *row.Epoch}
		if sums[k] == nil || row.RawAmount.Cmp(sums[k]) != 0 || row.Count != counts[k] {
			t.Fatalf("epoch %d account %s: summary %s (%d rows), rows sum %s (%d)", k.epoch, k.account, row.RawAmount, row.Count, sums[k], counts[k])
		}
	}

	totals, err := st.EpochTotals(ctx, store.EpochTotalQuery{Source: srcName})
	if err != nil {
		t.Fatal(err)
	}
	truth := chain.EpochTotals(1, head)
	if len(totals) != len(truth) || len(totals) == 0 {
		t.Fatalf("%d epoch totals stored, the chain paid %d", len(totals), len(truth))
	}
	for i, w := range truth {
		g := totals[i]
		if g.Epoch != w.Epoch || g.Height != w.Height || g.RawTotal != fmt.Sprint(w.Total) || g.RawFromFees != fmt.Sprint(w.FromFees) ||
			g.RawMinted != fmt.Sprint(w.Minted) || g.RawBurned != fmt.Sprint(w.Burned) || g.Unit != "FLOW" || g.Decimals != 8 {
			t.Fatalf("epoch total %d: stored %+v, chain %+v", i, g, w)
		}
	}
}

// A past spork's node too old to answer GetNodeVersionInfo: its root is
// found by bisecting GetBlockHeaderByHeight, and its range is read from
// it like any other.
func TestNodeWithoutVersionInfo(t *testing.T) {
	past, err := flowsim.Start(context.Background(), "127.0.0.1:0", flowsim.Config{
		Seed: sporkSeed, RootHeight: 300, LastHeight: 999, RewardEvery: 100, LegacyRewardsBelow: 1200, NoVersionInfo: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(past.Close)
	live := sporkSim(t, "", 1000, 0, 300, 0)
	st := storetest.MustOpen(t)
	cfg := flow.Config{Name: srcName, Endpoint: live.Addr(), HistoryEndpoints: []string{past.Addr()}, StartHeight: 300, EventTypes: sporkTypes}
	src, err := flow.New(cfg, flow.WithHeadPollInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	r := startRunner(t, st, src)
	waitCheckpoint(t, st, live.SealedHeight())
	for _, ep := range r.Status().Endpoints {
		if ep.Endpoint == past.Addr() && (!ep.Known || ep.From != 300 || ep.To != 999) {
			t.Fatalf("endpoint %+v, want 300-999 found by bisection", ep)
		}
	}
	if past.Stats().Calls["GetBlockHeaderByHeight"] == 0 {
		t.Fatal("the root was not bisected")
	}
	checkTruth(t, st, flowsim.Sporks{past, live}, 300, live.SealedHeight(), flowsim.Filter{EventTypes: sporkTypes}, false)
}

// Two nodes of the live spork: when the one the stream follows dies,
// the other takes the stream over from the checkpoint; nothing is lost or
// repeated.
func TestLiveFailover(t *testing.T) {
	a := sporkSim(t, "", 1000, 0, 200, 0)
	b := sporkSim(t, "", 1000, 0, 200, 0)
	st := storetest.MustOpen(t)
	r := startRunner(t, st, sporkSource(t, a.Addr(), []string{b.Addr()}))
	waitCheckpoint(t, st, 1200)
	eventually(t, "live on the configured endpoint", func() bool {
		for _, ep := range r.Status().Endpoints {
			if ep.Endpoint == a.Addr() && ep.State == store.EndpointLive {
				return true
			}
		}
		return false
	})
	a.Produce(20)
	b.Produce(20)
	waitCheckpoint(t, st, 1220)
	a.Close()
	b.Produce(30)
	waitCheckpoint(t, st, 1250)
	if b.Stats().Streams == 0 {
		t.Fatal("the second node's stream was never followed")
	}
	// The chain is the same on both nodes: b's truth is the truth.
	checkTruth(t, st, b, 1000, 1250, flowsim.Filter{EventTypes: sporkTypes}, false)
}
