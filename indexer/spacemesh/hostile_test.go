package spacemesh_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/evindex/evindex/indexer/spacemesh/smsim"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

func rejectedOf(t *testing.T, st store.Store) []store.Rejected {
	return storetest.AllRejected(t, st, store.RejectedQuery{Source: srcName, Limit: store.MaxLimit})
}

// TestImplausibleHeadIsNotBelieved: a node that claims verified layer
// 2^32-1 used to make the source index (and checkpoint) layers nobody
// has. The claim is not believed; the checkpoint stays at what the node
// really serves, and the source goes on once the node tells the truth.
func TestImplausibleHeadIsNotBelieved(t *testing.T) {
	sim := startSim(t, smsim.Config{})
	st := storetest.MustOpen(t)
	run := startRunner(t, st, sourceConfig(sim))
	caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())
	sim.SetHostile(smsim.Hostile{VerifiedLayer: 1<<32 - 1})
	sim.Advance(3)
	eventually(t, "three disbelieved claims, or a checkpoint past the node's layers", func() string {
		cp, _, _ := st.Checkpoint(context.Background(), srcName)
		if w := run.r.Status().Warnings; w < 3 && cp.Height <= uint64(sim.AppliedLayer()) {
			return fmt.Sprintf("%d warnings, checkpoint %d", w, cp.Height)
		}
		return ""
	})
	if msg := checkpointAt(t, st, sim.AppliedLayer()-3); msg != "" {
		t.Fatalf("while the node lied: %s", msg)
	}
	if h := run.r.Status().HeadHeight; h >= 1<<32-1 {
		t.Fatalf("head height %d believed", h)
	}
	sim.SetHostile(smsim.Hostile{})
	caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())
}

// TestBadCoinbasesAreQuarantined: rewards whose coinbase is not a bech32
// address of the network used to be stored under it (an account text a
// spreadsheet would run). Each is quarantined; every other reward is
// stored exactly.
func TestBadCoinbasesAreQuarantined(t *testing.T) {
	sim := startSim(t, smsim.Config{})
	sim.SetHostile(smsim.Hostile{BadCoinbaseEvery: 3})
	st := storetest.MustOpen(t)
	cfg := sourceConfig(sim)
	cfg.Smeshers = nil // each reward reaches the source once, through its coinbase
	run := startRunner(t, st, cfg)
	var want int
	for _, r := range sim.Rewards(0, sim.AppliedLayer()) {
		if contains(sim.Coinbases(), r.Coinbase) {
			want++
		}
	}
	eventually(t, "every reward stored or quarantined", func() string {
		if msg := checkpointAt(t, st, sim.AppliedLayer()); msg != "" {
			return msg
		}
		stored, bad := allRewards(t, st), 0
		for _, r := range rejectedOf(t, st) {
			if r.Field == "coinbase" {
				bad++
			}
		}
		if bad == 0 || len(stored)+bad != want {
			return fmt.Sprintf("%d stored + %d quarantined, want %d in all", len(stored), bad, want)
		}
		for _, r := range stored {
			if !contains(sim.Coinbases(), r.Account) {
				return "stored under " + r.Account
			}
		}
		return ""
	})
	if run.r.Status().LastError != "" {
		t.Fatalf("last error %q", run.r.Status().LastError)
	}
}

// TestEndlessPagingStops: a reward list whose pages are always full (the
// same rewards again) used to be paged a million times per range. Paging
// stops at the first page without new rewards, the rewards are exact and
// a rejected record says the list did not end.
func TestEndlessPagingStops(t *testing.T) {
	sim := startSim(t, smsim.Config{})
	sim.SetHostile(smsim.Hostile{EndlessPages: true})
	st := storetest.MustOpen(t)
	startRunner(t, st, sourceConfig(sim))
	caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())
	found := false
	for _, r := range rejectedOf(t, st) {
		found = found || strings.HasPrefix(r.Key, "reward list of ")
	}
	if !found {
		t.Fatal("no rejected record says the reward list did not end")
	}
}

// TestAdminEventFloodIsBounded: a node that emits thousands of admin
// events per layer used to have every one stored. At most 1000 distinct
// events per layer are, and a rejected record counts the rest.
func TestAdminEventFloodIsBounded(t *testing.T) {
	// The node's own stream buffer drops most of a flood; a replay as long
	// as the flood brings all of it to the source.
	sim := startSim(t, smsim.Config{EventReplay: 10000})
	st := storetest.MustOpen(t)
	cfg := sourceConfig(sim)
	cfg.PrivateEndpoint = sim.PrivateAddr()
	startRunner(t, st, cfg)
	caughtUp(t, st, sim, sim.Coinbases(), sim.Smeshers())
	sim.SetHostile(smsim.Hostile{EventFlood: 1500})
	sim.Advance(2)
	eventually(t, "the flood's rejected records", func() string {
		n := 0
		for _, r := range rejectedOf(t, st) {
			if r.Key == "admin events beyond the bound" {
				n++
			}
		}
		if n < 2 {
			return fmt.Sprintf("%d layers with a bound record", n)
		}
		return ""
	})
	perLayer := map[uint64]int{}
	q := store.EventQuery{Source: srcName, Limit: store.MaxLimit}
	for i := 0; i < 1000; i++ {
		p, err := st.Events(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Items {
			perLayer[e.Height]++
		}
		if q.Cursor = p.Next; q.Cursor == "" {
			break
		}
	}
	for h, n := range perLayer {
		if n > 1000 {
			t.Fatalf("layer %d: %d admin events stored", h, n)
		}
	}
}
