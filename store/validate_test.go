package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

// TestQuarantinePlausibility: what a round trip would keep but no upstream
// should send is quarantined too.
func TestQuarantinePlausibility(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for name, edit := range map[string]func(b *store.Batch){
		"FarFuture":    func(b *store.Batch) { b.Blocks[0].BlockTime = now.AddDate(5, 0, 0) },
		"Before2015":   func(b *store.Batch) { b.Rewards[0].Time = time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC) },
		"39Digits":     func(b *store.Batch) { b.Rewards[0].RawAmount = strings.Repeat("9", 39) },
		"38DigitsOK":   func(b *store.Batch) { b.Rewards[0].RawAmount = strings.Repeat("9", 38) },
		"NoTimeIsFine": func(b *store.Batch) { b.Nodes[0].Time = time.Time{} },
	} {
		t.Run(name, func(t *testing.T) {
			b := quarantineBatch(7)
			edit(&b)
			got := b.Quarantine(now)
			want := 1
			if strings.HasSuffix(name, "OK") || strings.HasSuffix(name, "Fine") {
				want = 0
			}
			if got != want {
				t.Fatalf("Quarantine moved %d records, want %d: %+v", got, want, b.Rejected)
			}
		})
	}
}

// quarantineBatch is a height of records that pass every check.
func quarantineBatch(h uint64) store.Batch {
	b := storetest.FlowBatch(h, 2)
	b.Rewards = []store.Reward{{Account: "node1", Kind: "flow_node_reward", ID: "7/0/0", Height: h, HasHeight: true,
		Time: b.Blocks[0].BlockTime, RawAmount: "100", Unit: "FLOW", Decimals: 8}}
	b.Nodes = []store.NodeStatus{{Node: "node1", Time: b.Blocks[0].BlockTime}}
	return b
}
