package bolt_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

// An event stores its block id and time by reference to the block record
// when they agree; replacing the block record must not change what the
// event says.
func TestReplacedBlockKeepsEventsBlock(t *testing.T) {
	s := storetest.MustOpen(t)
	b := flowBatch(5, 4)
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	before := allEvents(t, s, store.EventQuery{Source: "flow"})
	newer := store.Batch{Source: "flow", Blocks: []store.Block{{Height: 5, BlockID: "ff", BlockTime: time.Unix(7, 0).UTC(), Status: "reverted"}}}
	if err := s.Apply(ctx, newer); err != nil {
		t.Fatal(err)
	}
	after := allEvents(t, s, store.EventQuery{Source: "flow"})
	if len(after) != len(before) {
		t.Fatalf("%d events, want %d", len(after), len(before))
	}
	for i := range after {
		if after[i].BlockID != before[i].BlockID || !after[i].BlockTime.Equal(before[i].BlockTime) {
			t.Errorf("event %d: block %s %v after the block record changed, was %s %v", i, after[i].BlockID, after[i].BlockTime, before[i].BlockID, before[i].BlockTime)
		}
	}
	// Events rewritten with the new block follow it.
	b.Blocks = newer.Blocks
	for i := range b.Events {
		b.Events[i].BlockID, b.Events[i].BlockTime = "ff", time.Unix(7, 0).UTC()
	}
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, e := range allEvents(t, s, store.EventQuery{Source: "flow"}) {
		if e.BlockID != "ff" {
			t.Errorf("event %d/%d: block %s, want ff", e.TxIndex, e.EventIndex, e.BlockID)
		}
	}
}

func TestHeightRangeWithoutSource(t *testing.T) {
	s := storetest.MustOpen(t)
	for h := uint64(1); h <= 20; h++ {
		a, b := flowBatch(h, 2), flowBatch(h, 3)
		b.Source = "flow2"
		for i := range b.Events {
			b.Events[i].Source = ""
		}
		if err := s.Apply(ctx, a, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []store.EventQuery{
		{FromHeight: u64(10), ToHeight: u64(12)},
		{FromHeight: u64(18)},
		{ToHeight: u64(2), Desc: true},
		{FromHeight: u64(10), ToHeight: u64(12), Address: "shared", Limit: 2},
		{FromHeight: u64(10), Types: []string{"A.1.Token.Withdrawn"}},
	} {
		got := allEvents(t, s, q)
		var want []store.Event
		for _, src := range []string{"flow", "flow2"} {
			q2 := q
			q2.Source, q2.Limit, q2.Cursor = src, 1000, ""
			want = append(want, allEvents(t, s, q2)...)
		}
		if len(got) != len(want) || len(got) == 0 {
			t.Fatalf("%+v: %d events, want %d (both sources)", q, len(got), len(want))
		}
		for _, e := range got {
			if q.FromHeight != nil && e.Height < *q.FromHeight || q.ToHeight != nil && e.Height > *q.ToHeight {
				t.Fatalf("%+v: event at height %d", q, e.Height)
			}
		}
	}
}

// One tx entry finds all of a transaction's events; it goes when the
// last of them stops carrying the tx id.
func TestTxEntriesFollowRewrites(t *testing.T) {
	s := storetest.MustOpen(t)
	b := flowBatch(3, 6) // three transactions of two events
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	tx1 := b.Events[2].TxID
	count := func(txID string) int { return len(allEvents(t, s, store.EventQuery{TxID: txID})) }
	if n := count(tx1); n != 2 {
		t.Fatalf("tx %s finds %d events, want 2", tx1, n)
	}
	if n := len(allEvents(t, s, store.EventQuery{TxID: tx1, Source: "other"})); n != 0 {
		t.Fatalf("another source finds %d events", n)
	}
	b.Events[2].TxID = "not-hex"
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if n, m := count(tx1), count("not-hex"); n != 1 || m != 1 {
		t.Fatalf("after one rewrite: %d and %d events, want 1 and 1", n, m)
	}
	b.Events[3].TxID = "not-hex"
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if n, m := count(tx1), count("not-hex"); n != 0 || m != 2 {
		t.Fatalf("after both rewrites: %d and %d events, want 0 and 2", n, m)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// Checkpoints and coverage of several batches in one Apply end as if
// they had been applied one by one.
func TestOneApplyManyBatchesMarks(t *testing.T) {
	s := storetest.MustOpen(t)
	var bs []store.Batch
	for _, h := range []uint64{1, 2, 3, 7, 8, 5} {
		bs = append(bs, flowBatch(h, 1))
	}
	other := flowBatch(4, 1)
	other.Source = "other"
	other.Events = nil
	bs = append(bs, other)
	if err := s.Apply(ctx, bs...); err != nil {
		t.Fatal(err)
	}
	cov, err := s.Coverage(ctx, "flow")
	if err != nil {
		t.Fatal(err)
	}
	if want := []store.Range{{From: 1, To: 3}, {From: 5, To: 5}, {From: 7, To: 8}}; fmt.Sprint(cov) != fmt.Sprint(want) {
		t.Errorf("coverage %v, want %v", cov, want)
	}
	for src, want := range map[string]uint64{"flow": 5, "other": 4} {
		cp, ok, err := s.Checkpoint(ctx, src)
		if err != nil || !ok || cp.Height != want {
			t.Errorf("%s checkpoint %d (%v, %v), want %d, the last batch's", src, cp.Height, ok, err, want)
		}
	}
}

// A contract is found however a source spells its types: those that
// start with the contract's name and those that do not, and never the
// events of a contract whose name only starts the same way.
func TestContractWhateverTheTypeSpelling(t *testing.T) {
	s := storetest.MustOpen(t)
	b := store.Batch{Source: "chain"}
	for i, ev := range []struct{ typ, contract string }{
		{"balances::Transfer", "balances"},
		{"balances::Deposit", "balances"},
		{"balancesx::Transfer", "balancesx"},
		{"Transfer", "balances"},
		{"balances", "balances"},
	} {
		b.Events = append(b.Events, store.Event{Height: 1, EventIndex: uint32(i), Type: ev.typ, Contract: ev.contract})
	}
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, q := range []store.EventQuery{{Contract: "balances"}, {Contract: "balances", Desc: true}, {Contract: "balances", Limit: 1}} {
		got := allEvents(t, s, q)
		var idx []uint32
		for _, e := range got {
			idx = append(idx, e.EventIndex)
		}
		want := []uint32{0, 1, 3, 4}
		if q.Desc {
			want = []uint32{4, 3, 1, 0}
		}
		if fmt.Sprint(idx) != fmt.Sprint(want) {
			t.Errorf("%+v: events %v, want %v", q, idx, want)
		}
	}
}
