package flowsim_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/onflow/flow/protobuf/go/flow/access"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/evindex/evindex/indexer/flow/flowsim"
)

// Three nodes started with one seed make one history: each serves only its
// spork's heights, and where they serve a height they agree with a node
// that serves the whole chain.
func TestSporksMakeOneHistory(t *testing.T) {
	const seed = 31
	whole, _, _ := startSim(t, flowsim.Config{Seed: seed, History: 600, RewardEvery: 50})
	sporks := []struct {
		root, last uint64
	}{{1, 199}, {200, 399}, {400, 0}}
	var sims []*flowsim.Sim
	var clients []access.AccessAPIClient
	for _, sp := range sporks {
		history := uint64(600 - sp.root)
		s, ac, _ := startSim(t, flowsim.Config{Seed: seed, RootHeight: sp.root, LastHeight: sp.last, History: history, RewardEvery: 50})
		sims = append(sims, s)
		clients = append(clients, ac)
	}
	for i, sp := range sporks {
		s, ac := sims[i], clients[i]
		info, err := ac.GetNodeVersionInfo(testCtx(t), &access.GetNodeVersionInfoRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if got := info.GetInfo().GetSporkRootBlockHeight(); got != sp.root {
			t.Errorf("spork %d: spork_root_block_height %d, want %d", i, got, sp.root)
		}
		if got := info.GetInfo().GetNodeRootBlockHeight(); got != sp.root {
			t.Errorf("spork %d: node_root_block_height %d, want %d", i, got, sp.root)
		}
		wantSealed := sp.last
		if wantSealed == 0 {
			wantSealed = 600
		}
		head, err := ac.GetLatestBlockHeader(testCtx(t), &access.GetLatestBlockHeaderRequest{IsSealed: true})
		if err != nil || head.GetBlock().GetHeight() != wantSealed {
			t.Fatalf("spork %d: sealed head %d (%v), want %d", i, head.GetBlock().GetHeight(), err, wantSealed)
		}
		if sp.last > 0 {
			s.Produce(5) // a past spork's node never moves on
			if s.SealedHeight() != sp.last {
				t.Errorf("spork %d: sealed %d after Produce, want %d", i, s.SealedHeight(), sp.last)
			}
		}
		blocks, _ := s.Events(0, 1000, flowsim.Filter{})
		if blocks[0].Height != sp.root {
			t.Fatalf("spork %d: first block %d, want %d", i, blocks[0].Height, sp.root)
		}
		for _, b := range blocks {
			w, _ := whole.Block(b.Height)
			if !bytes.Equal(b.ID, w.ID) || !b.Time.Equal(w.Time) {
				t.Fatalf("spork %d height %d: block id or time differs from the whole chain's", i, b.Height)
			}
			// A node's root block holds no events; every other block is
			// the whole chain's.
			if b.Height == sp.root {
				if len(b.Events) != 0 {
					t.Fatalf("spork %d: root block %d has %d events", i, b.Height, len(b.Events))
				}
				continue
			}
			if len(b.Events) != len(w.Events) {
				t.Fatalf("spork %d height %d: %d events, whole chain %d", i, b.Height, len(b.Events), len(w.Events))
			}
			for k := range b.Events {
				if !bytes.Equal(b.Events[k].Payload, w.Events[k].Payload) || !bytes.Equal(b.Events[k].TransactionId, w.Events[k].TransactionId) {
					t.Fatalf("spork %d height %d event %d differs", i, b.Height, k)
				}
			}
		}
	}

	deposit := flowsim.FlowTokenType("TokensDeposited")
	t.Run("BelowRootIsNotFound", func(t *testing.T) {
		_, err := clients[1].GetEventsForHeightRange(testCtx(t), &access.GetEventsForHeightRangeRequest{Type: deposit, StartHeight: 150, EndHeight: 210})
		if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "spork root") {
			t.Fatalf("got %v, want NotFound naming the spork root", err)
		}
	})
	t.Run("PastTheLastHeightIsOutOfRange", func(t *testing.T) {
		_, err := clients[1].GetEventsForHeightRange(testCtx(t), &access.GetEventsForHeightRangeRequest{Type: deposit, StartHeight: 400, EndHeight: 410})
		if status.Code(err) != codes.OutOfRange {
			t.Fatalf("got %v, want OutOfRange", err)
		}
	})
	t.Run("EndClampedToTheLastHeight", func(t *testing.T) {
		resp, err := clients[1].GetEventsForHeightRange(testCtx(t), &access.GetEventsForHeightRangeRequest{Type: deposit, StartHeight: 300, EndHeight: 549})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(resp.GetResults()); n != 100 || resp.GetResults()[n-1].GetBlockHeight() != 399 {
			t.Fatalf("got %d results, want 300-399", n)
		}
	})
}

// Payments below LegacyRewardsBelow lack epochCounter; every
// EpochTotalRewardsPaid names the epoch it pays.
func TestRewardSignatures(t *testing.T) {
	sim, _, _ := startSim(t, flowsim.Config{Seed: 4, History: 300, RewardEvery: 100, LegacyRewardsBelow: 150})
	payouts := sim.EpochTotals(0, 300)
	if len(payouts) != 3 || payouts[0].Epoch != 1 || payouts[2].Epoch != 3 {
		t.Fatalf("payouts: %+v", payouts)
	}
	for _, p := range payouts {
		if p.Total != p.FromFees+p.Minted {
			t.Errorf("epoch %d: total %d != fees %d + minted %d", p.Epoch, p.Total, p.FromFees, p.Minted)
		}
		var sum uint64
		for _, r := range sim.Rewards(p.Height, p.Height) {
			sum += r.Raw
			if r.Epoch != p.Epoch {
				t.Errorf("reward at %d: epoch %d, want %d", r.Height, r.Epoch, p.Epoch)
			}
		}
		if sum != p.Total {
			t.Errorf("epoch %d: rewards sum %d, total %d", p.Epoch, sum, p.Total)
		}
		b, _ := sim.Block(p.Height)
		for _, ev := range b.Events {
			legacy := p.Height < 150
			hasCounter := bytes.Contains(ev.Payload, []byte(`"epochCounter"`))
			switch {
			case strings.HasSuffix(ev.Type, ".EpochTotalRewardsPaid"):
				if !bytes.Contains(ev.Payload, []byte(`"epochCounterForRewards"`)) {
					t.Errorf("height %d: EpochTotalRewardsPaid without epochCounterForRewards", p.Height)
				}
			case strings.Contains(ev.Type, "RewardsPaid") && hasCounter == legacy:
				t.Errorf("height %d: %s has epochCounter %v, legacy %v", p.Height, ev.Type, hasCounter, legacy)
			}
		}
	}
}
