package spacemesh_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	smv1 "github.com/spacemeshos/api/release/go/spacemesh/v1"

	"github.com/evindex/evindex/indexer/spacemesh"
	"github.com/evindex/evindex/indexer/spacemesh/smsim"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/storetest"
)

// allMissed reads every missed reward of the source, limit per page, so
// the cursors are walked too.
func allMissed(t *testing.T, st *bolt.Store, limit int) []store.MissedReward {
	t.Helper()
	var out []store.MissedReward
	q := store.MissedQuery{Source: srcName, Limit: limit}
	for i := 0; i < 10000; i++ {
		p, err := store.MissedRewards(context.Background(), st, q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out
		}
		q.Cursor = p.Next
	}
	t.Fatal("missed reward pages do not end")
	return nil
}

// missedLine is one miss as both sides can spell it.
func missedLine(smesher string, layer, epoch uint64, count uint32, reason string) string {
	return fmt.Sprintf("%s layer %d epoch %d x%d %s", smesher[:8], layer, epoch, count, reason)
}

// missedTruth is the simulator's misses of tracked own identities in the
// final layers, with the reason evindex can prove: in known epochs only,
// and "unknown" where the node's announcements were lost (gap).
func missedTruth(sim *smsim.Sim, tracked []string, known func(smesher string, epoch uint32) bool, gap *store.Range) []string {
	applied := sim.AppliedLayer()
	if applied < spacemesh.DefaultReconcileLayers {
		return nil
	}
	var out []string
	for _, m := range sim.Missed(0, applied-spacemesh.DefaultReconcileLayers) {
		if !slices.Contains(tracked, m.Smesher) || !known(m.Smesher, m.Epoch) {
			continue
		}
		reason := m.Reason
		if gap != nil && uint64(m.Layer) >= gap.From && uint64(m.Layer) <= gap.To {
			reason = store.MissedUnknownReason
		}
		out = append(out, missedLine(m.Smesher, uint64(m.Layer), uint64(m.Epoch), m.Eligibilities, reason))
	}
	return out
}

func missedDiff(t *testing.T, st *bolt.Store, sim *smsim.Sim, want []string) string {
	if msg := checkpointAt(t, st, sim.AppliedLayer()); msg != "" {
		return msg
	}
	var got []string
	for _, m := range allMissed(t, st, 7) {
		got = append(got, missedLine(m.Account, m.Height, m.Epoch, m.Eligibilities, m.Reason))
		if m.PaidTo != sim.CoinbaseOf(m.Account) {
			return fmt.Sprintf("miss %s at %d: coinbase %q, want %q", m.Account, m.Height, m.PaidTo, sim.CoinbaseOf(m.Account))
		}
	}
	if slices.Equal(got, want) {
		return ""
	}
	return fmt.Sprintf("stored %d misses, truth %d:\nstored %q\ntruth  %q", len(got), len(want), got, want)
}

// eligibilitiesSeen tells which (smesher, epoch) eligibilities are among evs.
func eligibilitiesSeen(evs []*smv1.Event) map[string]bool {
	seen := map[string]bool{}
	for _, e := range evs {
		if el := e.GetEligibilities(); el != nil {
			seen[fmt.Sprintf("%x/%d", el.GetSmesher(), el.GetEpoch())] = true
		}
	}
	return seen
}

func TestMissedRewardsEqualTruth(t *testing.T) {
	sim := startSim(t, smsim.Config{Layers: 60})
	st := storetest.MustOpen(t)
	cfg := sourceConfig(sim)
	cfg.PrivateEndpoint = sim.PrivateAddr()
	// Both own identities by smesher id (s1 only through them), and s3,
	// s4, which the node does not run and has no eligibilities for.
	cfg.Smeshers = append(sim.OwnSmeshers(), sim.Smeshers()[1:]...)
	tracked := sim.OwnSmeshers()
	allKnown := func(string, uint32) bool { return true }
	r := startRunner(t, st, cfg)
	outer := t // runners started in a subtest must outlive it

	reasons := map[string]int{}
	for _, m := range sim.Missed(0, sim.AppliedLayer()) {
		reasons[m.Reason]++
	}
	if reasons[smsim.MissedNoProposal] == 0 || reasons[smsim.MissedNotIncluded] == 0 {
		t.Fatalf("the simulator misses %v; both reasons are needed", reasons)
	}

	eventually(t, "misses of the history", func() string { return missedDiff(t, st, sim, missedTruth(sim, tracked, allKnown, nil)) })
	if n := len(missedTruth(sim, tracked, allKnown, nil)); n < 5 {
		t.Fatalf("only %d final misses in the history", n)
	}

	t.Run("Revert", func(t *testing.T) {
		before := sim.Missed(sim.AppliedLayer()-8, sim.AppliedLayer())
		sim.Revert(9)
		sim.Advance(3)
		sim.Revert(6)
		if fmt.Sprint(before) == fmt.Sprint(sim.Missed(sim.AppliedLayer()-11, sim.AppliedLayer()-3)) {
			t.Fatal("the reverts changed no miss")
		}
		eventually(t, "misses after reverts", func() string { return missedDiff(t, st, sim, missedTruth(sim, tracked, allKnown, nil)) })
		sim.Advance(spacemesh.DefaultReconcileLayers) // the reverted layers become final
		eventually(t, "reverted layers final", func() string { return missedDiff(t, st, sim, missedTruth(sim, tracked, allKnown, nil)) })
	})

	t.Run("Restarts", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			sim.Advance(7)
			sim.Revert(4)
			r = startRunner(outer, st, cfg)
			eventually(t, fmt.Sprintf("misses after restart %d", i+1), func() string {
				return missedDiff(t, st, sim, missedTruth(sim, tracked, allKnown, nil))
			})
		}
	})

	t.Run("LostEligibilitiesAreUnknown", func(t *testing.T) {
		// Down longer than the node's replay of 100 events: an epoch's
		// eligibilities and some proposals are never seen.
		storedFrom := func(from int) func() string {
			return func() string {
				q := store.EventQuery{Source: srcName, Limit: store.MaxLimit}
				n := 0
				have := map[time.Time]bool{}
				for i := 0; i < 100; i++ {
					p, err := st.Events(context.Background(), q)
					if err != nil {
						t.Fatal(err)
					}
					n += len(p.Items)
					for _, e := range p.Items {
						have[e.BlockTime] = true
					}
					if q.Cursor = p.Next; p.Next == "" {
						break
					}
				}
				var missing []string
				for i, e := range sim.AdminEvents()[from:] {
					if ts := e.GetTimestamp().AsTime().UTC(); !have[ts] {
						missing = append(missing, fmt.Sprintf("#%d %s", from+i, ts.Format(time.RFC3339Nano)))
					}
				}
				if len(missing) > 0 {
					return fmt.Sprintf("%d events stored; missing %v", n, missing)
				}
				return ""
			}
		}
		eventually(t, "every event stored", storedFrom(0))
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		before := len(sim.AdminEvents())
		sim.Advance(200)
		evs := sim.AdminEvents()
		replay := len(evs) - sim.Config().EventReplay
		if replay <= before {
			t.Fatalf("only %d events while stopped; the replay holds %d", len(evs)-before, sim.Config().EventReplay)
		}
		seen := eligibilitiesSeen(append(evs[:before:before], evs[replay:]...))
		known := func(smesher string, epoch uint32) bool { return seen[fmt.Sprintf("%s/%d", smesher, epoch)] }
		layerOf := func(ts time.Time) uint64 { return uint64(ts.Sub(sim.Genesis()) / sim.LayerDuration()) }
		gap := &store.Range{
			From: layerOf(evs[before-1].GetTimestamp().AsTime()),
			To:   layerOf(evs[replay].GetTimestamp().AsTime().Add(-time.Nanosecond)),
		}
		r = startRunner(outer, st, cfg)
		eventually(t, "misses after a long outage", func() string {
			return missedDiff(t, st, sim, missedTruth(sim, tracked, known, gap))
		})

		eventually(t, "every replayed event stored", storedFrom(replay))
		cov, err := store.MissedCoverage(context.Background(), st, srcName, nil)
		if err != nil {
			t.Fatal(err)
		}
		unknown := 0
		for _, c := range cov {
			if c.Known != known(c.Account, uint32(c.Epoch)) {
				t.Fatalf("epoch %d of %s: known %v, but the node's eligibilities were seen: %v", c.Epoch, c.Account[:8], c.Known, !c.Known)
			}
			if !c.Known {
				unknown++
			}
			if !slices.Contains(tracked, c.Account) {
				t.Fatalf("coverage of %s, which the node does not run", c.Account)
			}
		}
		t.Logf("%d misses, %d unknown epochs, announcements lost in layers %d..%d", len(missedTruth(sim, tracked, known, gap)), unknown, gap.From, gap.To)
		if unknown == 0 {
			t.Fatalf("no unknown epoch after the outage: %+v", cov)
		}
	})
}
