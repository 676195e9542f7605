package flow_test

import (
	"context"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/access"
	"github.com/onflow/flow/protobuf/go/flow/entities"
	"github.com/onflow/flow/protobuf/go/flow/executiondata"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/evindex/evindex/indexer/flow"
	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

var hostileGenesis = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func startHostile(t *testing.T, n *flowsim.HostileNode) *flowsim.HostileNode {
	t.Helper()
	n, err := flowsim.StartHostile("127.0.0.1:0", n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func hostileSource(t *testing.T, addr string, start uint64) *flow.Source {
	t.Helper()
	src, err := flow.New(flow.Config{Name: srcName, Endpoint: addr, StartHeight: start},
		flow.WithHeadPollInterval(20*time.Millisecond), flow.WithCallTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// honest is a response for height h: a heartbeat, or the given events.
func honest(h, index uint64, events ...*entities.Event) *executiondata.SubscribeEventsResponse {
	return &executiondata.SubscribeEventsResponse{
		BlockId: []byte{byte(h >> 8), byte(h), 0xb1}, BlockHeight: h, MessageIndex: index,
		BlockTimestamp: timestamppb.New(hostileGenesis.Add(time.Duration(h) * time.Second)), Events: events,
	}
}

func heights(from, to uint64) []*executiondata.SubscribeEventsResponse {
	var out []*executiondata.SubscribeEventsResponse
	for h := from; h <= to; h++ {
		out = append(out, honest(h, h-from))
	}
	return out
}

// TestHeightsNeverWrap: a node claimed sealed height 2^64-1 and then sent
// heights 2^64-1, 0, 1, 2...; next = h+1 wrapped to 0 and all of it was
// stored, with head 2^64-1 and a checkpoint a restart would resume at 0
// from. The claim is not believed, the stream is dropped, and once the
// node tells the truth exactly its heights are stored.
func TestHeightsNeverWrap(t *testing.T) {
	node := startHostile(t, &flowsim.HostileNode{
		Head: func(call int) uint64 {
			if call < 2 {
				return math.MaxUint64
			}
			return 300
		},
		Stream: func(n int, start uint64) []*executiondata.SubscribeEventsResponse {
			if n < 2 {
				return append([]*executiondata.SubscribeEventsResponse{honest(math.MaxUint64, 0)}, heights(0, 40)...)
			}
			return heights(start, 320)
		},
	})
	st := storetest.MustOpen(t)
	r := startRunner(t, st, hostileSource(t, node.Addr(), 0))
	var last uint64
	eventually(t, "checkpoint 320", func() bool {
		cp := checkpoint(t, st)
		if cp < last || cp > 320 {
			t.Fatalf("checkpoint went from %d to %d", last, cp)
		}
		last = cp
		return cp == 320
	})
	blocks := allBlocks(t, st)
	if len(blocks) != 21 || blocks[0].Height != 300 || blocks[20].Height != 320 {
		t.Fatalf("%d blocks stored, %d..%d; want 300..320", len(blocks), blocks[0].Height, blocks[len(blocks)-1].Height)
	}
	if h := r.Status().HeadHeight; h > 320 {
		t.Fatalf("head height %d believed", h)
	}
}

// TestStreamLiesAreDropped: heights behind the checkpoint, the same
// height again and again (a heartbeat that never advances), a
// message_index gap and a jump past the heartbeat interval each drop the
// stream; nothing of them is stored and the checkpoint never goes back.
func TestStreamLiesAreDropped(t *testing.T) {
	lies := [][]*executiondata.SubscribeEventsResponse{
		{honest(100, 0), honest(101, 1), honest(99, 2)},                  // behind
		{honest(102, 0), honest(102, 1), honest(102, 2), honest(102, 3)}, // not advancing
		{honest(102, 0), honest(103, 2)},                                 // message_index gap
		{honest(102, 0), honest(5000, 1)},                                // jump
	}
	node := startHostile(t, &flowsim.HostileNode{
		Head: func(int) uint64 { return 110 },
		Stream: func(n int, start uint64) []*executiondata.SubscribeEventsResponse {
			if n < len(lies) {
				return lies[n]
			}
			return heights(start, 110)
		},
	})
	st := storetest.MustOpen(t)
	startRunner(t, st, hostileSource(t, node.Addr(), 100))
	var last uint64
	eventually(t, "checkpoint 110", func() bool {
		cp := checkpoint(t, st)
		if cp < last {
			t.Fatalf("checkpoint went back from %d to %d", last, cp)
		}
		last = cp
		return cp == 110
	})
	for _, b := range allBlocks(t, st) {
		if b.Height < 100 || b.Height > 110 {
			t.Fatalf("block %d stored", b.Height)
		}
	}
}

// TestBlockTimesAreValidated: block times of 9999-12-31, 2300, 1600 and
// year 1 read back as other dates (times are int64 nanoseconds), and an
// invalid {seconds: 1, nanos: -5} was accepted. Such a time is not
// stored: the block keeps an unknown time and a rejected record flags
// it; good times read back exactly and the checkpoint passes them all.
func TestBlockTimesAreValidated(t *testing.T) {
	bad := []*timestamppb.Timestamp{
		timestamppb.New(time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)),
		timestamppb.New(time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)),
		timestamppb.New(time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)),
		{Seconds: -62135596800},
		{Seconds: 1, Nanos: -5},
		timestamppb.New(time.Now().AddDate(3, 0, 0)),
	}
	node := startHostile(t, &flowsim.HostileNode{
		Head: func(int) uint64 { return 20 },
		Stream: func(_ int, start uint64) []*executiondata.SubscribeEventsResponse {
			out := heights(start, 20)
			for i := range out {
				if h := out[i].BlockHeight; h%2 == 0 && int(h/2) < len(bad) {
					out[i].BlockTimestamp = bad[h/2]
				}
			}
			return out
		},
	})
	st := storetest.MustOpen(t)
	startRunner(t, st, hostileSource(t, node.Addr(), 1))
	waitCheckpoint(t, st, 20)
	for _, b := range allBlocks(t, st) {
		want := hostileGenesis.Add(time.Duration(b.Height) * time.Second)
		if b.Height%2 == 0 && int(b.Height/2) < len(bad) {
			want = time.Time{}
		}
		if !b.BlockTime.Equal(want) {
			t.Errorf("block %d time %s, want %s", b.Height, b.BlockTime, want)
		}
	}
	p, err := st.Rejected(context.Background(), store.RejectedQuery{Source: srcName})
	if err != nil {
		t.Fatal(err)
	}
	flagged := 0
	for _, r := range p.Items {
		if r.Field == "block_time" {
			flagged++
		}
	}
	if flagged != len(bad)-1 { // height 0 is below the start
		t.Fatalf("%d block times flagged, want %d: %+v", flagged, len(bad)-1, p.Items)
	}
}

// TestPoisonEventsAreQuarantined: an event type with a NUL, a 64 KB type,
// a 40 KB transaction id, a payload with invalid UTF-8 or nested 9,999
// deep, a RewardsPaid with a 300-digit amount: each used to stop the
// source for good (key too large, a NUL in an index key) or reach clients
// as bytes they cannot read. Each is quarantined with its payload, and the
// good events of the same blocks are stored exactly.
func TestPoisonEventsAreQuarantined(t *testing.T) {
	deep := strings.Repeat("[", 9999) + strings.Repeat("]", 9999)
	good := `{"type":"Event","value":{"id":"A.1.C.E","fields":[]}}`
	rewardsPaid := "A." + flowsim.DefaultStakingContract + ".FlowIDTableStaking.RewardsPaid"
	poison := []*entities.Event{
		{Type: "A.1.C.E\x00", Payload: []byte(good)},
		{Type: "A.1.C." + strings.Repeat("E", 64<<10), Payload: []byte(good)},
		{Type: "A.1.C.E", TransactionId: []byte(strings.Repeat("\xab", 20<<10)), Payload: []byte(good)},
		{Type: "A.1.C.E", Payload: []byte("{\"type\":\"String\",\"value\":\"\xff\xfe\"}")},
		{Type: "A.1.C.E", Payload: []byte(deep)},
		{Type: rewardsPaid, Payload: []byte(`{"type":"Event","value":{"id":"` + rewardsPaid + `","fields":[{"name":"nodeID","value":{"type":"String","value":"ab"}},{"name":"amount","value":{"type":"UFix64","value":"` + strings.Repeat("9", 300) + `.0"}}]}}`)},
	}
	node := startHostile(t, &flowsim.HostileNode{
		Head: func(int) uint64 { return 10 },
		Stream: func(_ int, start uint64) []*executiondata.SubscribeEventsResponse {
			out := heights(start, 10)
			for i := range out {
				for j, p := range poison {
					ev := *p
					ev.TransactionIndex, ev.EventIndex = 0, uint32(2*j)
					out[i].Events = append(out[i].Events, &ev,
						&entities.Event{Type: "A.1.C.E", TransactionIndex: 0, EventIndex: uint32(2*j + 1), Payload: []byte(good)})
				}
			}
			return out
		},
	})
	st := storetest.MustOpen(t)
	r := startRunner(t, st, hostileSource(t, node.Addr(), 1))
	waitCheckpoint(t, st, 10)
	evs := allEvents(t, st)
	goodN, rewardEvents := 0, 0
	for _, e := range evs {
		switch {
		case e.EventIndex%2 == 1 && string(e.Payload) == good:
			goodN++
		case e.Type == rewardsPaid:
			rewardEvents++
		default:
			t.Fatalf("a poison event was stored: type %.80q tx %.80q payload %.80q", e.Type, e.TxID, e.Payload)
		}
	}
	if goodN != 10*len(poison) || rewardEvents != 10 {
		t.Fatalf("%d good and %d reward events stored, want %d and 10", goodN, rewardEvents, 10*len(poison))
	}
	q := store.RejectedQuery{Source: srcName, Limit: store.MaxLimit}
	p, err := st.Rejected(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	// Five poison events and the unreadable reward, per height.
	if len(p.Items) != 10*len(poison) {
		t.Fatalf("%d rejected records, want %d", len(p.Items), 10*len(poison))
	}
	if r.Status().LastError != "" {
		t.Fatalf("last error %q", r.Status().LastError)
	}
}

// TestRangeAnswersOutsideTheAskedRange: GetEventsForHeightRange answers
// with heights outside the asked range, or the same block twice, are
// refused (the chunk is retried, nothing of it stored), and the backfill
// completes once the node answers right.
func TestRangeAnswersOutsideTheAskedRange(t *testing.T) {
	var callCount atomic.Int64 // the backfill's workers call at once
	node := startHostile(t, &flowsim.HostileNode{
		Head:   func(int) uint64 { return 2000 },
		Stream: func(_ int, start uint64) []*executiondata.SubscribeEventsResponse { return heights(start, 2000) },
		Range: func(req *access.GetEventsForHeightRangeRequest) (*access.EventsResponse, error) {
			calls := callCount.Add(1)
			var out []*access.EventsResponse_Result
			for h := req.StartHeight; h <= req.EndHeight; h++ {
				out = append(out, &access.EventsResponse_Result{BlockId: []byte{byte(h)}, BlockHeight: h,
					BlockTimestamp: timestamppb.New(hostileGenesis.Add(time.Duration(h) * time.Second))})
			}
			switch calls {
			case 1:
				out[1].BlockHeight = req.EndHeight + 7 // outside
			case 2:
				out[2] = out[1] // the same block twice
			case 3:
				return nil, status.Error(codes.Internal, "odd")
			}
			return &access.EventsResponse{Results: out}, nil
		},
	})
	st := storetest.MustOpen(t)
	src, err := flow.New(flow.Config{Name: srcName, Endpoint: node.Addr(), StartHeight: 1, EventTypes: []string{"A.1.C.E"},
		Backfill: flow.BackfillConfig{Workers: 1, MaxRange: 100, RequestsPerSecond: 1000, Distance: 10}},
		flow.WithHeadPollInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	startRunner(t, st, src)
	waitCheckpoint(t, st, 2000)
	for i, b := range allBlocks(t, st) {
		if b.Height != uint64(i+1) {
			t.Fatalf("block %d at position %d", b.Height, i)
		}
	}
}

// TestDuplicateKeysTakeTheLastValue documents the decision for JSON-CDC
// objects with a key twice: the payload is stored with both, as sent, and
// what is indexed from it (a reward's amount, addresses) is the last
// value, which is what encoding/json, Python's json and JavaScript's
// JSON.parse read from the stored payload too.
func TestDuplicateKeysTakeTheLastValue(t *testing.T) {
	rewardsPaid := "A." + flowsim.DefaultStakingContract + ".FlowIDTableStaking.RewardsPaid"
	payload := `{"type":"Event","value":{"id":"` + rewardsPaid + `","fields":[{"name":"nodeID","value":{"type":"String","value":"ab"}},{"name":"amount","value":{"type":"UFix64","value":"1.00000000","value":"2.00000000"}}]}}`
	node := startHostile(t, &flowsim.HostileNode{
		Head: func(int) uint64 { return 3 },
		Stream: func(_ int, start uint64) []*executiondata.SubscribeEventsResponse {
			out := heights(start, 3)
			out[0].Events = []*entities.Event{{Type: rewardsPaid, Payload: []byte(payload)}}
			return out
		},
	})
	st := storetest.MustOpen(t)
	startRunner(t, st, hostileSource(t, node.Addr(), 1))
	waitCheckpoint(t, st, 3)
	evs := allEvents(t, st)
	if len(evs) != 1 || string(evs[0].Payload) != payload {
		t.Fatalf("events %+v", evs)
	}
	p, err := st.Rewards(context.Background(), store.RewardQuery{Source: srcName})
	if err != nil || len(p.Items) != 1 || p.Items[0].RawAmount != "200000000" {
		t.Fatalf("rewards %+v (%v), want one of 2.00000000 FLOW", p.Items, err)
	}
}

// TestSealedBlockThatChangesIsNotFollowed: a node that, on reconnect,
// names another block at the checkpoint's height (a reorg of sealed
// history, or another chain) used to be followed from there. The source
// refuses it, and the checkpoint stays.
func TestSealedBlockThatChangesIsNotFollowed(t *testing.T) {
	var forked atomic.Bool
	node := startHostile(t, &flowsim.HostileNode{
		Head: func(int) uint64 {
			if forked.Load() {
				return 20
			}
			return 5
		},
		Stream: func(_ int, start uint64) []*executiondata.SubscribeEventsResponse {
			if forked.Load() {
				return heights(start, 20)
			}
			return heights(start, 5)
		},
		BlockID: func(h uint64) []byte {
			id := honest(h, 0).BlockId
			if forked.Load() {
				id = append([]byte{0xff}, id...)
			}
			return id
		},
	})
	st := storetest.MustOpen(t)
	first := startRunner(t, st, hostileSource(t, node.Addr(), 1))
	waitCheckpoint(t, st, 5)
	first.stop(t)
	forked.Store(true)
	second := startRunner(t, st, hostileSource(t, node.Addr(), 1))
	eventually(t, "the fork refused", func() bool {
		return strings.Contains(second.Status().LastError, "a sealed block never changes")
	})
	if cp := checkpoint(t, st); cp != 5 {
		t.Fatalf("checkpoint %d, want 5: the forked node was followed", cp)
	}
}
