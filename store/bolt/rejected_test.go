package bolt_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

// TestApplyRefusesWhatCannotReadBack covers values that used to be stored
// and then read back as something else, or stop a source for good: each
// is refused by Apply naming the field, and Quarantine moves it aside so
// the rest of the batch and its checkpoint commit.
func TestApplyRefusesWhatCannotReadBack(t *testing.T) {
	deep := strings.Repeat("[", store.MaxJSONDepth+1) + strings.Repeat("]", store.MaxJSONDepth+1)
	cases := []struct {
		name  string
		field string
		edit  func(b *store.Batch)
	}{
		{"Year9999", "block_time", func(b *store.Batch) { b.Blocks[0].BlockTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC) }},
		{"Year1600", "block_time", func(b *store.Batch) { b.Events[0].BlockTime = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"TypeWithNUL", "type", func(b *store.Batch) { b.Events[0].Type = "A.1.Token\x00Deposited" }},
		{"LongType", "type", func(b *store.Batch) { b.Events[0].Type = strings.Repeat("T", 64<<10) }},
		{"LongTxID", "tx_id", func(b *store.Batch) { b.Events[0].TxID = strings.Repeat("ab", 20<<10) }},
		{"InvalidUTF8Payload", "payload", func(b *store.Batch) { b.Events[0].Payload = json.RawMessage("{\"a\":\"\xff\xfe\"}") }},
		{"DeepPayload", "payload", func(b *store.Batch) { b.Events[0].Payload = json.RawMessage(deep) }},
		{"NegativeAmount", "raw_amount", func(b *store.Batch) { b.Rewards[0].RawAmount = "-5" }},
		{"NodeWithNUL", "node", func(b *store.Batch) { b.Nodes[0].Node = "key\x00" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := storetest.MustOpen(t)
			b := rejectBatch(7)
			c.edit(&b)
			err := s.Apply(ctx, b)
			var fe *store.FieldError
			if !errors.Is(err, store.ErrInvalid) || !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("Apply = %v, want ErrInvalid naming %s", err, c.field)
			}
			if n := b.Quarantine(time.Now()); n == 0 {
				t.Fatal("Quarantine moved nothing")
			}
			if err := s.Apply(ctx, b); err != nil {
				t.Fatalf("Apply after Quarantine: %v", err)
			}
			if cp, _, _ := s.Checkpoint(ctx, "flow"); cp.Height != 7 {
				t.Fatalf("checkpoint %d, want 7: a bad record must not hold it back", cp.Height)
			}
			p, err := s.Rejected(ctx, store.RejectedQuery{Source: "flow"})
			if err != nil || len(p.Items) == 0 {
				t.Fatalf("rejected: %v, %d items", err, len(p.Items))
			}
			at := uint64(7) // records without a height are placed at their time's Unix second
			if c.field == "node" {
				at = uint64(b.Blocks[0].BlockTime.Unix())
			}
			if r := p.Items[0]; r.Field != c.field || r.Height != at || r.Reason == "" || r.RawSize == 0 || r.Time.IsZero() {
				t.Fatalf("rejected record %+v", r)
			}
			if in, _ := s.Source(ctx, "flow"); in.Rejected != uint64(len(p.Items)) {
				t.Fatalf("source counts %d rejected, %d listed", in.Rejected, len(p.Items))
			}
		})
	}
}

func rejectBatch(h uint64) store.Batch {
	b := flowBatch(h, 2)
	b.Rewards = []store.Reward{{Account: "node1", Kind: "flow_node_reward", ID: "7/0/0", Height: h, HasHeight: true,
		Time: b.Blocks[0].BlockTime, RawAmount: "100", Unit: "FLOW", Decimals: 8}}
	b.Nodes = []store.NodeStatus{{Node: "node1", Time: b.Blocks[0].BlockTime}}
	return b
}

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
			b := rejectBatch(7)
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

// TestRejectedList pages through quarantined records with cursors, in
// both orders, and replays do not count them twice.
func TestRejectedList(t *testing.T) {
	s := storetest.MustOpen(t)
	for h := uint64(1); h <= 25; h++ {
		b := flowBatch(h, 1)
		b.Rejected = []store.Rejected{store.NewRejected(store.RecordEvent, h, "tx 0 event 9", "type", "contains a NUL byte", []byte("A.x\x00"))}
		for range 2 { // a replay rewrites the same record
			if err := s.Apply(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, desc := range []bool{false, true} {
		q := store.RejectedQuery{Source: "flow", FromHeight: u64(3), ToHeight: u64(22), Limit: 7, Desc: desc}
		var heights []uint64
		for i := 0; i < 10; i++ {
			p, err := s.Rejected(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range p.Items {
				heights = append(heights, r.Height)
				if string(r.Raw) != "A.x\x00" || r.Key != "tx 0 event 9" {
					t.Fatalf("record %+v", r)
				}
			}
			if q.Cursor = p.Next; q.Cursor == "" {
				break
			}
		}
		if len(heights) != 20 || (heights[0] == 3) == desc {
			t.Fatalf("desc=%v: heights %v", desc, heights)
		}
	}
	if in, _ := s.Source(ctx, "flow"); in.Rejected != 25 {
		t.Fatalf("rejected count %d, want 25", in.Rejected)
	}
	if _, err := s.Rejected(ctx, store.RejectedQuery{Cursor: "ZXZlbnQ"}); !errors.Is(err, store.ErrCursorInvalid) {
		t.Fatalf("an events cursor on the rejected list: %v", err)
	}
}
