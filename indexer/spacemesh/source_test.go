package spacemesh_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/indexer/spacemesh"
	"github.com/evindex/evindex/indexer/spacemesh/smsim"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

const srcName = "sm-node"

func startSim(t *testing.T, cfg smsim.Config) *smsim.Sim {
	t.Helper()
	if cfg.Seed == 0 {
		cfg.Seed = 42
	}
	if cfg.Layers == 0 {
		cfg.Layers = 60
	}
	if cfg.LayersPerEpoch == 0 {
		cfg.LayersPerEpoch = 10
	}
	sim, err := smsim.Start(context.Background(), "127.0.0.1:0", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return sim
}

// fakeClock is an injected clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Add(d time.Duration) { c.ns.Add(int64(d)) }

func sourceConfig(sim *smsim.Sim) spacemesh.Config {
	return spacemesh.Config{
		Name:           srcName,
		PublicEndpoint: sim.PublicAddr(),
		Coinbases:      sim.Coinbases(),
		Smeshers:       sim.Smeshers(),
		PollInterval:   40 * time.Millisecond,
		StreamRetry:    5 * time.Millisecond,
		StreamBackoff:  50 * time.Millisecond,
		ChunkLayers:    25,
	}
}

// runner runs one Runner over the source until stopped.
type runner struct {
	r    *indexer.Runner
	stop func() error
}

func startRunner(t *testing.T, st store.Store, cfg spacemesh.Config) *runner {
	t.Helper()
	src, err := spacemesh.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := indexer.NewRunner(st, src, indexer.RunnerConfig{
		BatchMaxDelay: 5 * time.Millisecond,
		BackoffMin:    5 * time.Millisecond,
		BackoffMax:    50 * time.Millisecond,
		Logger:        zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return &runner{r: r, stop: stop}
}

// eventually polls cond until it returns "" or the deadline passes, then
// fails with cond's last explanation.
func eventually(t *testing.T, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func allRewards(t *testing.T, st store.Store, accounts ...string) []store.Reward {
	t.Helper()
	var out []store.Reward
	q := store.RewardQuery{Source: srcName, Accounts: accounts, Limit: store.MaxLimit}
	for i := 0; i < 1000; i++ {
		p, err := st.Rewards(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out
		}
		q.Cursor = p.Next
	}
	t.Fatal("reward pages do not end")
	return nil
}

func totalsOf(t *testing.T, rs []store.Reward) smsim.Totals {
	t.Helper()
	var tt smsim.Totals
	for _, r := range rs {
		v, err := strconv.ParseUint(r.RawAmount, 10, 64)
		if err != nil {
			t.Fatalf("raw amount %q: %v", r.RawAmount, err)
		}
		tt.Count++
		tt.Sum += v
	}
	return tt
}

// truthDiff compares the stored rewards with the simulator's, per tracked
// coinbase, per tracked smesher and over everything tracked.
func truthDiff(t *testing.T, st store.Store, sim *smsim.Sim, coinbases, smeshers []string) string {
	for _, cb := range coinbases {
		if got, want := totalsOf(t, allRewards(t, st, cb)), sim.CoinbaseTotals(cb); got != want {
			return fmt.Sprintf("coinbase %s: stored %+v, node %+v", cb, got, want)
		}
	}
	for _, sm := range smeshers {
		if got, want := totalsOf(t, allRewards(t, st, sm)), sim.SmesherTotals(sm); got != want {
			return fmt.Sprintf("smesher %s: stored %+v, node %+v", sm, got, want)
		}
	}
	var want smsim.Totals
	for _, r := range sim.Rewards(0, sim.AppliedLayer()) {
		if contains(coinbases, r.Coinbase) || contains(smeshers, r.Smesher) {
			want.Count++
			want.Sum += r.Total
		}
	}
	if got := totalsOf(t, allRewards(t, st)); got != want {
		return fmt.Sprintf("all tracked rewards: stored %+v, node %+v", got, want)
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func checkpointAt(t *testing.T, st store.Store, layer uint32) string {
	cp, found, err := st.Checkpoint(context.Background(), srcName)
	if err != nil {
		t.Fatal(err)
	}
	if !found || cp.Height != uint64(layer) {
		return fmt.Sprintf("checkpoint %+v (found %v), want layer %d", cp, found, layer)
	}
	return ""
}

// caughtUp waits until the checkpoint is the node's applied layer and the
// stored rewards equal the node's.
func caughtUp(t *testing.T, st store.Store, sim *smsim.Sim, coinbases, smeshers []string) {
	t.Helper()
	eventually(t, "caught up", func() string {
		if msg := checkpointAt(t, st, sim.AppliedLayer()); msg != "" {
			return msg
		}
		return truthDiff(t, st, sim, coinbases, smeshers)
	})
}

func TestCleanRun(t *testing.T) {
	sim := startSim(t, smsim.Config{})
	st := storetest.MustOpen(t)
	cfg := sourceConfig(sim)
	startRunner(t, st, cfg)
	caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())
	sim.Advance(23)
	caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())

	ctx := context.Background()
	cov, err := st.Coverage(ctx, srcName)
	if err != nil {
		t.Fatal(err)
	}
	if len(cov) != 1 || cov[0].From != 0 || cov[0].To != uint64(sim.AppliedLayer()) {
		t.Fatalf("coverage %+v, want one range 0..%d", cov, sim.AppliedLayer())
	}
	blocks, err := st.Blocks(ctx, store.BlockQuery{Source: srcName, Limit: store.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks.Items) != int(sim.AppliedLayer())+1 {
		t.Fatalf("%d layers stored, want %d", len(blocks.Items), sim.AppliedLayer()+1)
	}
	b := blocks.Items[7]
	if b.Height != 7 || len(b.BlockID) != 64 || b.Status != "confirmed" ||
		!b.BlockTime.Equal(sim.Genesis().Add(7*sim.LayerDuration())) {
		t.Fatalf("layer 7 stored as %+v", b)
	}

	info, err := st.Source(ctx, srcName)
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != "spacemesh" || info.Epochs == nil || info.Epochs.BlocksPerEpoch != 10 ||
		info.Epochs.BlockDuration != sim.LayerDuration() || !info.Epochs.Genesis.Equal(sim.Genesis()) {
		t.Fatalf("source info %+v epochs %+v", info, info.Epochs)
	}
	for _, want := range []string{`"hrp":"sm"`, `"reward_api":"v2alpha1"`, `"layers_per_epoch":10`} {
		if !strings.Contains(string(info.Meta), want) {
			t.Fatalf("meta %s lacks %s", info.Meta, want)
		}
	}
	// group_by=epoch sums exactly what the node paid in each epoch.
	shared := sim.Coinbases()[0]
	rows, err := st.RewardSummary(ctx, store.SummaryQuery{
		RewardQuery: store.RewardQuery{Source: srcName, Accounts: []string{shared}}, GroupBy: store.GroupEpoch,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]smsim.Totals{}
	for _, r := range sim.Rewards(0, sim.AppliedLayer()) {
		if r.Coinbase == shared {
			e := uint64(r.Layer / 10)
			want[e] = smsim.Totals{Count: want[e].Count + 1, Sum: want[e].Sum + r.Total}
		}
	}
	if len(rows) != len(want) {
		t.Fatalf("%d epoch rows, want %d", len(rows), len(want))
	}
	for _, row := range rows {
		w := want[*row.Epoch]
		if row.Count != uint64(w.Count) || row.RawAmount.Uint64() != w.Sum || row.Unit != "SMH" || row.Decimals != 9 ||
			!row.BucketStart.Equal(sim.Genesis().Add(time.Duration(*row.Epoch*10)*sim.LayerDuration())) {
			t.Fatalf("epoch %d: %+v, want %+v", *row.Epoch, row, w)
		}
	}

	nodes, err := st.Nodes(ctx, srcName)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || nodes[0].Node != srcName || nodes[0].Synced == nil || nodes[0].Connected == nil ||
		!strings.Contains(string(nodes[0].Details), `"verified_layer"`) {
		t.Fatalf("nodes %+v", nodes)
	}
}

func TestRewardRecord(t *testing.T) {
	sim := startSim(t, smsim.Config{})
	st := storetest.MustOpen(t)
	startRunner(t, st, sourceConfig(sim))
	caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())

	// The shared coinbase earns twice in some layer: both are kept.
	shared := sim.Coinbases()[0]
	perLayer := map[uint64]int{}
	for _, r := range allRewards(t, st, shared) {
		perLayer[r.Height]++
	}
	var twice uint64
	for h, n := range perLayer {
		if n > 1 {
			twice = h
		}
	}
	if twice == 0 {
		t.Fatal("no layer with two rewards for the shared coinbase")
	}
	want := sim.Rewards(uint32(twice), uint32(twice))[0]
	var got *store.Reward
	for _, r := range allRewards(t, st, want.Smesher) {
		if r.Height == twice {
			got = &r
		}
	}
	if got == nil {
		t.Fatalf("reward of %s in layer %d not stored", want.Smesher, twice)
	}
	if got.Account != want.Coinbase || got.Kind != spacemesh.KindSmesherReward || got.Unit != "SMH" || got.Decimals != 9 ||
		got.ID != fmt.Sprintf("%s/%d", want.Smesher, twice) || !got.HasHeight ||
		got.RawAmount != strconv.FormatUint(want.Total, 10) ||
		len(got.Aliases) != 1 || got.Aliases[0] != want.Smesher ||
		!got.Time.Equal(sim.Genesis().Add(time.Duration(twice)*sim.LayerDuration())) {
		t.Fatalf("stored %+v, node %+v", got, want)
	}
	for _, s := range []string{`"smesher":"` + want.Smesher + `"`, `"layer_reward":"` + strconv.FormatUint(want.LayerReward, 10) + `"`, `"total":"`} {
		if !strings.Contains(string(got.Details), s) {
			t.Fatalf("details %s lack %s", got.Details, s)
		}
	}
}

func TestRestarts(t *testing.T) {
	sim := startSim(t, smsim.Config{Layers: 40})
	st := storetest.MustOpen(t)
	cfg := sourceConfig(sim)
	cfg.ChunkLayers = 4 // many batches, so stops land inside a catch-up
	cfg.PageLimit = 3   // and several reward pages per batch
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10; i++ {
		r := startRunner(t, st, cfg)
		sim.Advance(1 + rng.IntN(12))
		if rng.IntN(2) == 0 {
			// Stop once some progress was made, wherever that is.
			target := uint64(sim.AppliedLayer()) - uint64(rng.IntN(8))
			eventually(t, "progress", func() string {
				cp, found, _ := st.Checkpoint(context.Background(), srcName)
				if !found || cp.Height < target {
					return fmt.Sprintf("checkpoint %d below %d", cp.Height, target)
				}
				return ""
			})
		}
		if err := r.stop(); err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
	}
	startRunner(t, st, cfg)
	caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())
	cov, err := st.Coverage(context.Background(), srcName)
	if err != nil {
		t.Fatal(err)
	}
	if len(cov) != 1 || cov[0].From != 0 || cov[0].To != uint64(sim.AppliedLayer()) {
		t.Fatalf("coverage %+v after restarts", cov)
	}
}

func TestRevert(t *testing.T) {
	sim := startSim(t, smsim.Config{})
	st := storetest.MustOpen(t)
	cfg := sourceConfig(sim)
	r := startRunner(t, st, cfg)
	caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())
	outer := t

	t.Run("Live", func(t *testing.T) {
		before := sim.Rewards(sim.AppliedLayer()-4, sim.AppliedLayer())
		sim.Revert(5)
		if fmt.Sprint(before) == fmt.Sprint(sim.Rewards(sim.AppliedLayer()-4, sim.AppliedLayer())) {
			t.Fatal("the revert changed nothing")
		}
		caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())
	})
	t.Run("WhileStopped", func(t *testing.T) {
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		sim.Advance(3)
		sim.Revert(5)                   // two indexed layers and the three new ones change
		r = startRunner(outer, st, cfg) // it must outlive this subtest
		caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())
	})
	t.Run("Repeated", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			sim.Advance(2)
			sim.Revert(5)
		}
		caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())
	})
}

func TestBufferFullStreams(t *testing.T) {
	sim := startSim(t, smsim.Config{})
	st := storetest.MustOpen(t)
	cfg := sourceConfig(sim)
	cfg.PollInterval = time.Hour // only the streams and their reopening drive progress
	startRunner(t, st, cfg)
	caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())
	for i := 0; i < 5; i++ {
		eventually(t, "streams open", func() string {
			if n := sim.Streams(); n < 2 {
				return fmt.Sprintf("%d streams", n)
			}
			return ""
		})
		sim.Advance(3)
		sim.BufferFull()
		sim.Advance(2) // nobody listens: only the catch-up after reopening finds these
		caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())
	}
}

func TestV1Only(t *testing.T) {
	sim := startSim(t, smsim.Config{V1Only: true})
	st := storetest.MustOpen(t)
	cfg := sourceConfig(sim)
	// v1 lists rewards by coinbase only: track the smeshers whose coinbases
	// are tracked.
	smeshers := sim.Smeshers()[:2]
	cfg.Smeshers = smeshers
	cfg.PageLimit = 7 // many pages, so offsets and skip hints are exercised
	r := startRunner(t, st, cfg)
	caughtUp(t, st, sim, sim.Coinbases(), smeshers)

	sim.Advance(15)
	sim.Revert(5)
	caughtUp(t, st, sim, sim.Coinbases(), smeshers)

	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	sim.Advance(4)
	sim.Revert(3)
	startRunner(t, st, cfg)
	caughtUp(t, st, sim, sim.Coinbases(), smeshers)

	info, err := st.Source(context.Background(), srcName)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(info.Meta), `"reward_api":"v1"`) {
		t.Fatalf("meta %s", info.Meta)
	}
}

func TestUnavailable(t *testing.T) {
	sim := startSim(t, smsim.Config{})
	st := storetest.MustOpen(t)
	r := startRunner(t, st, sourceConfig(sim))
	caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())
	sim.SetUnavailable(true)
	sim.Advance(6)
	eventually(t, "retrying while the node is down", func() string {
		if s := r.r.Status(); s.State != store.StateRetrying || s.LastError == "" {
			return fmt.Sprintf("state %s, last error %q", s.State, s.LastError)
		}
		return ""
	})
	sim.SetUnavailable(false)
	caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())
	eventually(t, "live again", func() string {
		if s := r.r.Status(); s.State != store.StateLive {
			return fmt.Sprintf("state %s", s.State)
		}
		return ""
	})
}

func TestNodeStatusEveryTenSeconds(t *testing.T) {
	sim := startSim(t, smsim.Config{})
	st := storetest.MustOpen(t)
	clock := newFakeClock()
	cfg := sourceConfig(sim)
	cfg.Now = clock.Now
	r := startRunner(t, st, cfg)
	caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())

	history := func() []store.NodeStatus {
		p, err := st.NodeHistory(context.Background(), store.NodeHistoryQuery{Source: srcName, Node: srcName, Limit: store.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		return p.Items
	}
	if n := len(history()); n != 1 {
		t.Fatalf("%d snapshots at start, want 1", n)
	}
	sim.Advance(5) // the status changes, but within 10 s of the last snapshot
	caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())
	if n := len(history()); n != 1 {
		t.Fatalf("%d snapshots within 10 s, want 1", n)
	}
	stored := func(n int) func() string {
		return func() string {
			h := history()
			if len(h) != n {
				return fmt.Sprintf("%d snapshots, want %d", len(h), n)
			}
			if want := fmt.Sprintf(`"verified_layer":%d`, sim.AppliedLayer()); !strings.Contains(string(h[len(h)-1].Details), want) {
				return fmt.Sprintf("latest %s lacks %s", h[len(h)-1].Details, want)
			}
			return ""
		}
	}
	clock.Add(10 * time.Second)
	eventually(t, "the pending change stored", stored(2))

	// A restart remembers when the last snapshot was stored.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	sim.Advance(1)
	startRunner(t, st, cfg)
	caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())
	if n := len(history()); n != 2 {
		t.Fatalf("%d snapshots after a restart within 10 s, want 2", n)
	}
	clock.Add(10 * time.Second)
	eventually(t, "the change after the restart stored", stored(3))
}

func TestAdminEventsExactlyOnce(t *testing.T) {
	sim := startSim(t, smsim.Config{Layers: 30})
	st := storetest.MustOpen(t)
	cfg := sourceConfig(sim)
	cfg.PrivateEndpoint = sim.PrivateAddr()
	r := startRunner(t, st, cfg)

	stored := func() []store.Event {
		var out []store.Event
		q := store.EventQuery{Source: srcName, Limit: store.MaxLimit}
		for i := 0; i < 100; i++ {
			p, err := st.Events(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p.Items...)
			if p.Next == "" {
				break
			}
			q.Cursor = p.Next
		}
		return out
	}
	same := func() string {
		want := map[string]int{}
		for _, e := range sim.AdminEvents() {
			want[e.Timestamp.AsTime().UTC().Format(time.RFC3339Nano)]++
		}
		got := map[string]int{}
		evs := stored()
		for _, e := range evs {
			if !strings.HasPrefix(e.Type, "spacemesh.") {
				return "unexpected type " + e.Type
			}
			got[e.BlockTime.UTC().Format(time.RFC3339Nano)]++
		}
		if len(evs) != len(sim.AdminEvents()) || fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Sprintf("%d events stored, node emitted %d", len(evs), len(sim.AdminEvents()))
		}
		return ""
	}
	eventually(t, "history events", same)
	for i := 0; i < 5; i++ {
		eventually(t, "event stream open", func() string {
			if sim.EventStreams() != 1 {
				return "no event stream"
			}
			return ""
		})
		sim.Advance(4)
		sim.BufferFull() // the reconnect replays the last events
		eventually(t, fmt.Sprintf("events after reconnect %d", i+1), same)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	sim.Advance(3)
	startRunner(t, st, cfg)
	eventually(t, "events after a restart", same)

	var kinds []string
	for _, e := range stored() {
		if !contains(kinds, e.Type) {
			kinds = append(kinds, e.Type)
		}
	}
	for _, want := range []string{"spacemesh.beacon", "spacemesh.eligibilities", "spacemesh.atx_published", "spacemesh.proposal", "spacemesh.poet_wait_round", "spacemesh.init_failed"} {
		if !contains(kinds, want) {
			t.Fatalf("no %s among %v", want, kinds)
		}
	}
}

func TestNetworkMismatchIsPermanent(t *testing.T) {
	sim := startSim(t, smsim.Config{HRP: "stest"})
	st := storetest.MustOpen(t)
	ref := startSim(t, smsim.Config{}) // a mainnet-prefixed coinbase
	cfg := sourceConfig(sim)
	cfg.Coinbases = ref.Coinbases()[:1]
	cfg.Smeshers = nil
	r := startRunner(t, st, cfg)
	eventually(t, "failed", func() string {
		if s := r.r.Status(); s.State != store.StateFailed || !strings.Contains(s.LastError, "coinbases[0]") {
			return fmt.Sprintf("state %s, last error %q", s.State, s.LastError)
		}
		return ""
	})
	if err := r.stop(); err == nil || !strings.Contains(err.Error(), `"stest"`) {
		t.Fatalf("Run = %v", err)
	}
}

func TestStartLayer(t *testing.T) {
	sim := startSim(t, smsim.Config{})
	st := storetest.MustOpen(t)
	cfg := sourceConfig(sim)
	cfg.StartLayer = 40
	startRunner(t, st, cfg)
	sim.Advance(5)
	eventually(t, "caught up from layer 40", func() string {
		if msg := checkpointAt(t, st, sim.AppliedLayer()); msg != "" {
			return msg
		}
		var want smsim.Totals
		for _, r := range sim.Rewards(40, sim.AppliedLayer()) {
			if contains(cfg.Coinbases, r.Coinbase) || contains(cfg.Smeshers, r.Smesher) {
				want.Count++
				want.Sum += r.Total
			}
		}
		if got := totalsOf(t, allRewards(t, st)); got != want {
			return fmt.Sprintf("stored %+v, node %+v", got, want)
		}
		return ""
	})
	cov, err := st.Coverage(context.Background(), srcName)
	if err != nil {
		t.Fatal(err)
	}
	if len(cov) != 1 || cov[0].From != 40 || cov[0].To != uint64(sim.AppliedLayer()) {
		t.Fatalf("coverage %+v, want 40..%d", cov, sim.AppliedLayer())
	}
}
