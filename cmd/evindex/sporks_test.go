package main

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/store/bolt"
)

// TestSporkCrashLoop backfills a chain of three sporks (two past nodes and
// a live one) from height 1 with the real binary, SIGKILLs it five times
// during the backfill, and checks that the store equals the simulators'
// truth exactly: every range read, nothing twice, coverage one range.
func TestSporkCrashLoop(t *testing.T) {
	bin := evindexBinary(t)
	const seed = 41
	start := func(root, last, history uint64) *flowsim.Sim {
		sim, err := flowsim.Start(context.Background(), "127.0.0.1:0", flowsim.Config{
			Seed: seed, RootHeight: root, LastHeight: last, History: history, RewardEvery: 100,
			// No new blocks: the chain the final checks compare with holds
			// still.
			LegacyRewardsBelow: 3000, CallLatency: 2 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(sim.Close)
		return sim
	}
	past1, past2, live := start(1, 3999, 0), start(4000, 7999, 0), start(8000, 0, 2000)
	chain := flowsim.Sporks{past1, past2, live}
	types := []string{
		"A." + flowsim.DefaultStakingContract + ".FlowIDTableStaking.RewardsPaid",
		"A." + flowsim.DefaultStakingContract + ".FlowIDTableStaking.DelegatorRewardsPaid",
		"A." + flowsim.DefaultStakingContract + ".FlowIDTableStaking.EpochTotalRewardsPaid",
		flowsim.FlowTokenType("TokensDeposited"),
	}
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	cfg := writeConfig(t, dir, fmt.Sprintf(`data_dir: %s
log: {level: info, format: json}
store: {batch_max_records: 2000, batch_max_delay: 20ms}
sources:
  - name: flow-sporks
    kind: flow
    endpoint: %s
    history_endpoints: [%s, %s]
    start_height: 1
    event_types: [%s]
    backfill: {workers: 4, max_range: 100, requests_per_second: 150}
`, dataDir, live.Addr(), past2.Addr(), past1.Addr(), strings.Join(types, ", ")))
	args := []string{"run", "--config", cfg, "--http-listen", "127.0.0.1:0"}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var last uint64
	for i := 1; i <= 5; i++ {
		p := startProcess(t, bin, args...)
		after := time.Duration(150+rng.Int64N(400)) * time.Millisecond
		select {
		case <-p.done:
			t.Fatalf("run %d: evindex exited on its own (%v):\n%s", i, p.err, p.logs.String())
		case <-time.After(after):
		}
		p.kill()
		last = inspectSporks(t, dataDir, last)
		t.Logf("kill %d after %dms: checkpoint %d", i, after.Milliseconds(), last)
	}
	// About 400 range calls at 150 a second: every kill lands in the
	// backfill.
	if last >= live.RootHeight() {
		t.Fatalf("the backfill was over (checkpoint %d) before the last kill", last)
	}

	p := startProcess(t, bin, args...)
	addr := p.waitServing()
	head := live.SealedHeight()
	deadline := time.Now().Add(90 * time.Second)
	for {
		srcs, err := sourcesOf(addr)
		if s := srcs["flow-sporks"]; err == nil && s.Checkpoint != nil && s.Checkpoint.Height >= head {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no catch-up to %d: %+v (%v)\n%s", head, srcs, err, p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The network payout of every epoch and the summary by epoch are
	// served; the summary's rows add up to the stored rewards below.
	var summary struct {
		Items []struct {
			Epoch     *uint64 `json:"epoch"`
			RawAmount string  `json:"raw_amount"`
		} `json:"items"`
	}
	if err := getJSON("http://"+addr+"/v1/rewards/summary?group_by=epoch&source=flow-sporks", &summary); err != nil {
		t.Fatal(err)
	}
	var epochs struct {
		Items []struct {
			Epoch    uint64 `json:"epoch"`
			RawTotal string `json:"raw_total"`
		} `json:"items"`
	}
	if err := getJSON("http://"+addr+"/v1/rewards/epochs?source=flow-sporks", &epochs); err != nil {
		t.Fatal(err)
	}
	p.stop()
	code, out, errOut := runBinary(t, bin, "check", "--data", dataDir)
	if code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("evindex check: exit %d\n%s%s", code, out, errOut)
	}
	st, err := bolt.Open(dataDir, bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cp, _, _ := st.Checkpoint(context.Background(), "flow-sporks")
	cov, _ := st.Coverage(context.Background(), "flow-sporks")
	if len(cov) != 1 || cov[0].From != 1 || cov[0].To != cp.Height {
		t.Fatalf("coverage %+v, want one range 1..%d", cov, cp.Height)
	}
	verifyFlowOf(t, st, "flow-sporks", chain, flowsim.Filter{EventTypes: types}, cp.Height)
	truth := chain.EpochTotals(1, head)
	if len(epochs.Items) < len(truth) || len(truth) == 0 {
		t.Fatalf("/v1/rewards/epochs served %d epochs, the chain paid %d up to %d", len(epochs.Items), len(truth), head)
	}
	for i, w := range truth {
		if g := epochs.Items[i]; g.Epoch != w.Epoch || g.RawTotal != fmt.Sprint(w.Total) {
			t.Fatalf("epoch %d: served %+v, the chain paid %d", w.Epoch, g, w.Total)
		}
	}
	served := new(big.Int)
	for _, row := range summary.Items {
		if row.Epoch == nil {
			t.Fatalf("summary row without an epoch: %+v", row)
		}
		v, _ := new(big.Int).SetString(row.RawAmount, 10)
		served.Add(served, v)
	}
	stored := new(big.Int)
	for _, tt := range chain.RewardTotals(1, cp.Height) {
		stored.Add(stored, new(big.Int).SetUint64(tt.Raw))
	}
	if served.Cmp(stored) != 0 || served.Sign() == 0 {
		t.Fatalf("the epoch summary sums to %s, the rewards up to %d to %s", served, cp.Height, stored)
	}
	for i, s := range chain {
		if st := s.Stats(); st.RangeRejected != 0 || st.RangeOutOfRange != 0 {
			t.Errorf("spork %d: %d range calls below its root, %d above its head", i, st.RangeRejected, st.RangeOutOfRange)
		}
	}
}

// inspectSporks checks a killed run's file: it opens and is sound, the
// checkpoint did not go back, and coverage is one range from height 1 up
// to the checkpoint.
func inspectSporks(t *testing.T, dataDir string, prev uint64) uint64 {
	t.Helper()
	st, err := bolt.Open(dataDir, bolt.Options{ReadOnly: true})
	if err != nil {
		return prev // killed before the store was created
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.Check(ctx); err != nil {
		t.Fatalf("after a crash: %v", err)
	}
	cp, found, err := st.Checkpoint(ctx, "flow-sporks")
	if err != nil || !found {
		return prev
	}
	if cp.Height < prev {
		t.Fatalf("checkpoint went back from %d to %d", prev, cp.Height)
	}
	cov, _ := st.Coverage(ctx, "flow-sporks")
	if len(cov) != 1 || cov[0].From != 1 || cov[0].To != cp.Height {
		t.Fatalf("coverage %+v with checkpoint %d after a crash", cov, cp.Height)
	}
	return cp.Height
}
