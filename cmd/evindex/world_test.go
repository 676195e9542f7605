package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/indexer/presearch/presim"
	"github.com/evindex/evindex/indexer/spacemesh/smsim"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/postgres/pgtest"
)

// The reliability tests index a "world": one simulated upstream of each
// kind, all serving on loopback in the test process, with the config that
// points evindex at them and a comparison of a stopped data dir with the
// simulators' truth.
const (
	worldFlow = "flow-w"
	worldSM   = "sm-w"
	worldPre  = "pre-w"
)

// worldOptions size the simulated upstreams.
type worldOptions struct {
	flowHistory   uint64        // sealed Flow blocks at start
	blockInterval time.Duration // between new Flow blocks (0: none)
	layerInterval time.Duration // between new Spacemesh layers (0: none)
}

type world struct {
	flow   *flowsim.Sim
	sm     *smsim.Sim
	pre    *presim.Server
	preCfg presim.Config
}

func startWorld(t *testing.T, o worldOptions) *world {
	t.Helper()
	ctx := context.Background()
	fcfg := flowsim.DefaultConfig()
	fcfg.Seed, fcfg.History, fcfg.BlockInterval = 7, o.flowHistory, o.blockInterval
	fsim, err := flowsim.Start(ctx, "127.0.0.1:0", fcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fsim.Close)

	scfg := smsim.DefaultConfig()
	scfg.Seed, scfg.Layers, scfg.LayerInterval = 7, 120, o.layerInterval
	ssim, err := smsim.Start(ctx, "127.0.0.1:0", "127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ssim.Close)

	w := &world{flow: fsim, sm: ssim}
	// Presearch runs on real time: the binary cannot share a fake clock.
	// A one-day backfill is a handful of stats requests.
	w.preCfg = presim.Config{Seed: 7, Genesis: time.Now().Add(-30 * 24 * time.Hour).Truncate(time.Minute)}
	w.replacePresearch(t)
	return w
}

// replacePresearch starts a new Presearch API with the same nodes and
// history, and fresh request counts.
func (w *world) replacePresearch(t *testing.T) {
	t.Helper()
	psrv, err := presim.Start(context.Background(), "127.0.0.1:0", w.preCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = psrv.Close() })
	w.pre = psrv
}

// config is an evindex config file indexing the world into dataDir.
func (w *world) config(dataDir string) string {
	return fmt.Sprintf(`data_dir: %s
log: {level: info, format: json}
store: {batch_max_records: 2000, batch_max_delay: 20ms}
sources:
  - name: %s
    kind: flow
    endpoint: %s
    start_height: 1
  - name: %s
    kind: spacemesh
    public_endpoint: %s
    private_endpoint: %s
    coinbases: [%s]
    smeshers: [%s]
  - name: %s
    kind: presearch
    base_url: %s
    api_key: %s
    status_interval: 15s
    backfill_days: 1
`, dataDir,
		worldFlow, w.flow.Addr(),
		worldSM, w.sm.PublicAddr(), w.sm.PrivateAddr(), strings.Join(w.sm.Coinbases(), ", "), strings.Join(w.sm.Smeshers(), ", "),
		worldPre, w.pre.URL, w.pre.Sim.APIKey())
}

// pgConfig is config on a PostgreSQL store instead of a data dir: the
// same sources, the shared database and a short lease, so a dead owner's
// sources are taken over within a few seconds.
func (w *world) pgConfig(dsn string, leaseTTL time.Duration) string {
	c := w.config("")
	c = strings.Replace(c, "data_dir: \n", "data_dir: \"\"\n", 1)
	return strings.Replace(c, "store: {batch_max_records: 2000, batch_max_delay: 20ms}",
		fmt.Sprintf("store: {batch_max_records: 2000, batch_max_delay: 20ms, backend: postgres, postgres: {dsn: '%s', lease_ttl: %s}}", dsn, leaseTTL), 1)
}

// heads are the simulators' newest heights: what a caught-up evindex has
// checkpointed.
func (w *world) heads() map[string]uint64 {
	return map[string]uint64{worldFlow: w.flow.SealedHeight(), worldSM: uint64(w.sm.AppliedLayer())}
}

// all pages through a list query.
func all[T any](t *testing.T, what string, fetch func(cursor string) (store.Page[T], error)) []T {
	t.Helper()
	var out []T
	cursor := ""
	for i := 0; i < 100_000; i++ {
		p, err := fetch(cursor)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out
		}
		cursor = p.Next
	}
	t.Fatalf("%s: pages do not end", what)
	return nil
}

// totals is an exact count and sum of rewards.
type totals struct {
	count int
	sum   string
}

func sumRewards(t *testing.T, rs []store.Reward) map[string]totals {
	t.Helper()
	sums := map[string]*big.Int{}
	counts := map[string]int{}
	ids := map[string]bool{}
	for _, r := range rs {
		id := r.Account + "|" + r.ID
		if ids[id] {
			t.Fatalf("reward %s stored twice", id)
		}
		ids[id] = true
		v, ok := new(big.Int).SetString(r.RawAmount, 10)
		if !ok {
			t.Fatalf("reward %s: raw amount %q", id, r.RawAmount)
		}
		if sums[r.Account] == nil {
			sums[r.Account] = new(big.Int)
		}
		sums[r.Account].Add(sums[r.Account], v)
		counts[r.Account]++
	}
	out := map[string]totals{}
	for a, s := range sums {
		out[a] = totals{counts[a], s.String()}
	}
	return out
}

func diffTotals(got, want map[string]totals) string {
	var diffs []string
	for a, w := range want {
		if got[a] != w {
			diffs = append(diffs, fmt.Sprintf("%s: stored %+v, truth %+v", a, got[a], w))
		}
	}
	for a, g := range got {
		if _, ok := want[a]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: stored %+v, truth has none", a, g))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "; ")
}

// verifyWorld opens the stopped data dir read-only and compares every
// source's records with the simulators' truth up to the stored checkpoint:
// no record missing, none duplicated, none that the upstream never had,
// coverage one contiguous range. It returns the checkpoints.
func verifyWorld(t *testing.T, w *world, dataDir string) map[string]uint64 {
	t.Helper()
	ctx := context.Background()
	st, err := bolt.Open(dataDir, bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(ctx); err != nil {
		t.Fatalf("integrity: %v", err)
	}
	return verifyWorldIn(t, w, st)
}

// verifyWorldIn is verifyWorld on an open store of either backend.
func verifyWorldIn(t *testing.T, w *world, st store.Store) map[string]uint64 {
	t.Helper()
	ctx := context.Background()
	cps := map[string]uint64{}
	for _, name := range []string{worldFlow, worldSM, worldPre} {
		cp, found, err := st.Checkpoint(ctx, name)
		if err != nil || !found {
			t.Fatalf("%s: no checkpoint (%v)", name, err)
		}
		cps[name] = cp.Height
		cov, err := st.Coverage(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(cov) != 1 || cov[0].To != cp.Height {
			t.Fatalf("%s: coverage %+v, want one range ending at the checkpoint %d", name, cov, cp.Height)
		}
	}
	verifyFlow(t, st, w.flow, cps[worldFlow])
	verifySpacemesh(t, st, w.sm, cps[worldSM])
	verifyPresearch(t, st, w.pre.Sim, cps[worldPre])
	return cps
}

// flowTruth is a simulated chain: one node, or the nodes of its sporks.
type flowTruth interface {
	Events(from, to uint64, f flowsim.Filter) ([]flowsim.Block, error)
	RewardTotals(from, to uint64) map[string]flowsim.RewardTotal
}

func verifyFlow(t *testing.T, st store.Store, sim *flowsim.Sim, cp uint64) {
	t.Helper()
	verifyFlowOf(t, st, worldFlow, sim, flowsim.Filter{}, cp)
}

// verifyFlowOf compares source's events (those f selects), blocks and
// rewards up to cp with the chain's.
func verifyFlowOf(t *testing.T, st store.Store, source string, sim flowTruth, f flowsim.Filter, cp uint64) {
	t.Helper()
	ctx := context.Background()
	cov, _ := st.Coverage(ctx, source)
	if cov[0].From != 1 {
		t.Fatalf("flow coverage %+v, want it to start at height 1", cov)
	}
	truth, err := sim.Events(1, cp, f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	blockIDs := map[uint64]string{}
	for _, b := range truth {
		blockIDs[b.Height] = hex.EncodeToString(b.ID)
		for _, e := range b.Events {
			want[eventKey(b.Height, e.TransactionIndex, e.EventIndex)] = hex.EncodeToString(e.TransactionId) + " " + e.Type
		}
	}
	events := all(t, "flow events", func(c string) (store.Page[store.Event], error) {
		return st.Events(ctx, store.EventQuery{Source: source, Limit: store.MaxLimit, Cursor: c})
	})
	got := map[string]bool{}
	for _, e := range events {
		k := eventKey(e.Height, e.TxIndex, e.EventIndex)
		switch tx, ok := want[k]; {
		case got[k]:
			t.Fatalf("flow event %s stored twice", k)
		case e.Height > cp:
			t.Fatalf("flow event %s is above the checkpoint %d", k, cp)
		case !ok:
			t.Fatalf("flow event %s is not on the chain", k)
		case tx != e.TxID+" "+e.Type:
			t.Fatalf("flow event %s: stored %s %s, chain says %s", k, e.TxID, e.Type, tx)
		}
		got[k] = true
	}
	if len(got) != len(want) {
		t.Fatalf("flow: %d events stored for heights 1..%d, the chain has %d", len(got), cp, len(want))
	}
	blocks := all(t, "flow blocks", func(c string) (store.Page[store.Block], error) {
		return st.Blocks(ctx, store.BlockQuery{Source: source, Limit: store.MaxLimit, Cursor: c})
	})
	if uint64(len(blocks)) != cp {
		t.Fatalf("flow: %d blocks stored, want every height 1..%d", len(blocks), cp)
	}
	for i, b := range blocks {
		if b.Height != uint64(i)+1 || b.BlockID != blockIDs[b.Height] {
			t.Fatalf("flow block #%d: height %d id %s, chain has id %s", i, b.Height, b.BlockID, blockIDs[b.Height])
		}
	}
	rewards := all(t, "flow rewards", func(c string) (store.Page[store.Reward], error) {
		return st.Rewards(ctx, store.RewardQuery{Source: source, Limit: store.MaxLimit, Cursor: c})
	})
	wantRewards := map[string]totals{}
	for node, tt := range sim.RewardTotals(1, cp) {
		wantRewards[node] = totals{tt.Count, fmt.Sprint(tt.Raw)}
	}
	if d := diffTotals(sumRewards(t, rewards), wantRewards); d != "" {
		t.Fatalf("flow rewards up to height %d: %s", cp, d)
	}
	t.Logf("flow: heights 1..%d: %d events, %d blocks, %d rewards match the chain", cp, len(got), len(blocks), len(rewards))
}

func verifySpacemesh(t *testing.T, st store.Store, sim *smsim.Sim, cp uint64) {
	t.Helper()
	ctx := context.Background()
	tracked := map[string]bool{}
	for _, a := range append(sim.Coinbases(), sim.Smeshers()...) {
		tracked[a] = true
	}
	want := map[string]totals{}
	sums := map[string]uint64{}
	for _, r := range sim.Rewards(0, uint32(cp)) {
		if tracked[r.Coinbase] || tracked[r.Smesher] {
			tt := want[r.Coinbase]
			tt.count++
			sums[r.Coinbase] += r.Total
			tt.sum = fmt.Sprint(sums[r.Coinbase])
			want[r.Coinbase] = tt
		}
	}
	rewards := all(t, "spacemesh rewards", func(c string) (store.Page[store.Reward], error) {
		return st.Rewards(ctx, store.RewardQuery{Source: worldSM, Limit: store.MaxLimit, Cursor: c})
	})
	if d := diffTotals(sumRewards(t, rewards), want); d != "" {
		t.Fatalf("spacemesh rewards up to layer %d: %s", cp, d)
	}
	blocks := all(t, "spacemesh layers", func(c string) (store.Page[store.Block], error) {
		return st.Blocks(ctx, store.BlockQuery{Source: worldSM, Limit: store.MaxLimit, Cursor: c})
	})
	for i, b := range blocks {
		if b.Height != uint64(i) {
			t.Fatalf("spacemesh layer #%d stored as height %d", i, b.Height)
		}
	}
	if uint64(len(blocks)) != cp+1 {
		t.Fatalf("spacemesh: %d layers stored, want 0..%d", len(blocks), cp)
	}

	// Admin events: every stored one was emitted, none twice, and none is
	// missing between the first and the last stored unless evindex marked
	// its layer as a gap. The node replays only its last ~100 events to a
	// new subscriber: a restart that takes longer than those (a slow start
	// on a loaded machine, several kills before a stream opens) loses the
	// ones in between, and evindex must say so rather than pass over them.
	truth := sim.AdminEvents()
	ids := make([]uint64, len(truth))
	pos := map[uint64]int{}
	for i, e := range truth {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		ids[i] = binary.BigEndian.Uint64(sum[:8])
		pos[ids[i]] = i
	}
	events := all(t, "spacemesh events", func(c string) (store.Page[store.Event], error) {
		return st.Events(ctx, store.EventQuery{Source: worldSM, Limit: store.MaxLimit, Cursor: c})
	})
	first, last := len(truth), -1
	stored := map[uint64]bool{}
	for _, e := range events {
		id := uint64(e.TxIndex)<<32 | uint64(e.EventIndex)
		i, ok := pos[id]
		if !ok {
			t.Fatalf("spacemesh event %s at layer %d was never emitted", e.Type, e.Height)
		}
		if stored[id] {
			t.Fatalf("spacemesh event %s at layer %d stored twice", e.Type, e.Height)
		}
		stored[id] = true
		first, last = min(first, i), max(last, i)
	}
	gaps, err := st.ProposalGaps(ctx, worldSM)
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for i := first; i <= last; i++ {
		if stored[ids[i]] {
			continue
		}
		layer := uint64(truth[i].GetTimestamp().AsTime().Sub(sim.Genesis()) / sim.LayerDuration())
		if !slices.ContainsFunc(gaps, func(g store.Range) bool { return g.From <= layer && layer <= g.To }) {
			t.Fatalf("spacemesh admin event #%d (%s) of layer %d is missing between stored events #%d and #%d, and no gap covers it (gaps %+v)",
				i, truth[i].GetHelp(), layer, first, last, gaps)
		}
		lost++
	}
	t.Logf("spacemesh: layers 0..%d: %d rewards and %d layers match the node; admin events #%d..#%d of %d stored once, %d of them lost inside the gaps %+v",
		cp, len(rewards), len(blocks), first, last, len(truth), lost, gaps)
}

func verifyPresearch(t *testing.T, st store.Store, sim *presim.Sim, cp uint64) {
	t.Helper()
	ctx := context.Background()
	cov, _ := st.Coverage(ctx, worldPre)
	origin := time.Unix(int64(cov[0].From)-1, 0).UTC()
	end := time.Unix(int64(cp), 0).UTC()
	rewards := all(t, "presearch rewards", func(c string) (store.Page[store.Reward], error) {
		return st.Rewards(ctx, store.RewardQuery{Source: worldPre, Limit: store.MaxLimit, Cursor: c})
	})
	for _, r := range rewards {
		if want := sim.Earned(r.Account, r.PeriodStart, r.PeriodEnd); want.String() != r.RawAmount {
			t.Fatalf("presearch %s window %s..%s: stored %s, earned %s", r.Account, r.PeriodStart, r.PeriodEnd, r.RawAmount, want)
		}
		if r.PeriodStart.Before(origin) || r.PeriodEnd.After(end) {
			t.Fatalf("presearch window %s..%s is outside the coverage %s..%s", r.PeriodStart, r.PeriodEnd, origin, end)
		}
	}
	// Aligned windows never overlap, so per node they sum to exactly what
	// the node earned over the covered time: a missing or repeated window
	// shows here.
	want := map[string]totals{}
	got := sumRewards(t, rewards)
	for _, n := range sim.NodeKeys() {
		if e := sim.Earned(n, origin, end); e.Sign() > 0 || got[n].count > 0 {
			want[n] = totals{got[n].count, e.String()}
		}
	}
	if d := diffTotals(got, want); d != "" {
		t.Fatalf("presearch earnings %s..%s: %s", origin, end, d)
	}
	if v := sim.Violations(); v != 0 {
		t.Fatalf("presearch: %d requests exceeded the API's per-node limits", v)
	}
	t.Logf("presearch: %s..%s: %d windows match the earnings, no limit exceeded", origin.Format(time.RFC3339), end.Format(time.RFC3339), len(rewards))
}

// The tests that need a real process (SIGKILL, a corrupt file that could
// crash it) run the evindex binary, built once per test run.
var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func evindexBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "evindex-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "evindex")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}
