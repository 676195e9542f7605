package flowsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/access"
	"github.com/onflow/flow/protobuf/go/flow/entities"
	"github.com/onflow/flow/protobuf/go/flow/executiondata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/evindex/evindex/indexer/flow/flowsim"
)

func startSim(t *testing.T, cfg flowsim.Config) (*flowsim.Sim, access.AccessAPIClient, executiondata.ExecutionDataAPIClient) {
	t.Helper()
	sim, err := flowsim.Start(context.Background(), "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(sim.Close)
	conn, err := grpc.NewClient(sim.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return sim, access.NewAccessAPIClient(conn), executiondata.NewExecutionDataAPIClient(conn)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestChainIsDeterministic(t *testing.T) {
	cfg := flowsim.Config{Seed: 7, History: 200, RootHeight: 1000}
	a, _, _ := startSim(t, cfg)
	b, _, _ := startSim(t, cfg)
	c, _, _ := startSim(t, flowsim.Config{Seed: 8, History: 200, RootHeight: 1000})

	ea, err := a.Events(0, 2000, flowsim.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	eb, _ := b.Events(0, 2000, flowsim.Filter{})
	ec, _ := c.Events(0, 2000, flowsim.Filter{})
	if len(ea) != 201 || ea[0].Height != 1000 || ea[200].Height != 1200 {
		t.Fatalf("heights: got %d blocks from %d", len(ea), ea[0].Height)
	}
	var events, empty int
	for i := range ea {
		if !bytes.Equal(ea[i].ID, eb[i].ID) || !ea[i].Time.Equal(eb[i].Time) || len(ea[i].Events) != len(eb[i].Events) {
			t.Fatalf("height %d differs between two sims with the same seed", ea[i].Height)
		}
		if bytes.Equal(ea[i].ID, ec[i].ID) {
			t.Fatalf("height %d: same block id for different seeds", ea[i].Height)
		}
		if i > 0 && !bytes.Equal(ea[i].ParentID, ea[i-1].ID) {
			t.Fatalf("height %d: parent id is not the previous block's id", ea[i].Height)
		}
		if i > 0 && !ea[i].Time.After(ea[i-1].Time) {
			t.Fatalf("height %d: time does not increase", ea[i].Height)
		}
		for j, ev := range ea[i].Events {
			if !bytes.Equal(ev.Payload, eb[i].Events[j].Payload) {
				t.Fatalf("height %d event %d: payload differs", ea[i].Height, j)
			}
		}
		events += len(ea[i].Events)
		if len(ea[i].Events) == 0 {
			empty++
		}
	}
	if events == 0 || empty < 2 {
		t.Fatalf("want a mix of empty and busy blocks, got %d events and %d empty blocks", events, empty)
	}
}

func TestPayloadsAreJSONCadence(t *testing.T) {
	sim, _, _ := startSim(t, flowsim.Config{Seed: 1, History: 300})
	blocks, _ := sim.Events(0, 300, flowsim.Filter{})
	types := map[string]int{}
	for _, b := range blocks {
		for _, ev := range b.Events {
			var v struct {
				Type  string `json:"type"`
				Value struct {
					ID     string `json:"id"`
					Fields []struct {
						Name  string          `json:"name"`
						Value json.RawMessage `json:"value"`
					} `json:"fields"`
				} `json:"value"`
			}
			if err := json.Unmarshal(ev.Payload, &v); err != nil {
				t.Fatalf("height %d: payload is not JSON: %v", b.Height, err)
			}
			if v.Type != "Event" || v.Value.ID != ev.Type || len(v.Value.Fields) == 0 {
				t.Fatalf("height %d: unexpected payload %s", b.Height, ev.Payload)
			}
			types[ev.Type]++
		}
	}
	for _, want := range []string{
		"A.8624b52f9ddcd04a.FlowIDTableStaking.RewardsPaid",
		"A.8624b52f9ddcd04a.FlowIDTableStaking.DelegatorRewardsPaid",
		"A.8624b52f9ddcd04a.FlowIDTableStaking.EpochTotalRewardsPaid",
		flowsim.FlowTokenType("TokensDeposited"),
		flowsim.FlowTokenType("TokensWithdrawn"),
	} {
		if types[want] == 0 {
			t.Errorf("no %s event in 300 blocks", want)
		}
	}
	totals := sim.RewardTotals(0, 300)
	if len(totals) != len(flowsim.NodeIDs()) {
		t.Fatalf("rewards for %d nodes, want %d", len(totals), len(flowsim.NodeIDs()))
	}
	for node, tot := range totals {
		if tot.Count < 5 || tot.Raw == 0 {
			t.Errorf("node %s: %d rewards summing to %d", node, tot.Count, tot.Raw)
		}
	}
}

func TestGetEventsForHeightRange(t *testing.T) {
	const root, history = 100, 1000
	sim, ac, _ := startSim(t, flowsim.Config{Seed: 3, History: history, RootHeight: root})
	sealed := uint64(root + history)
	deposit := flowsim.FlowTokenType("TokensDeposited")
	tests := []struct {
		name       string
		typ        string
		start, end uint64
		code       codes.Code
		wantFrom   uint64
		wantTo     uint64
	}{
		{name: "Full", typ: deposit, start: 200, end: 449, wantFrom: 200, wantTo: 449},
		{name: "OneHeight", typ: deposit, start: 300, end: 300, wantFrom: 300, wantTo: 300},
		{name: "SpanOf250", typ: deposit, start: 200, end: 450, code: codes.InvalidArgument},
		{name: "EndBeforeStart", typ: deposit, start: 300, end: 299, code: codes.InvalidArgument},
		{name: "NoType", typ: "", start: 200, end: 210, code: codes.InvalidArgument},
		// flow-go resolves a height it never had to NotFound (naming the
		// spork root), not InvalidArgument.
		{name: "BelowRoot", typ: deposit, start: 50, end: 60, code: codes.NotFound},
		{name: "AboveSealed", typ: deposit, start: sealed + 1, end: sealed + 5, code: codes.OutOfRange},
		{name: "EndClamped", typ: deposit, start: sealed - 9, end: sealed + 100, wantFrom: sealed - 9, wantTo: sealed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := ac.GetEventsForHeightRange(testCtx(t), &access.GetEventsForHeightRangeRequest{
				Type: tt.typ, StartHeight: tt.start, EndHeight: tt.end,
			})
			if status.Code(err) != tt.code {
				t.Fatalf("code: got %v (%v), want %v", status.Code(err), err, tt.code)
			}
			if tt.code != codes.OK {
				return
			}
			truth, _ := sim.Events(tt.wantFrom, tt.wantTo, flowsim.Filter{EventTypes: []string{tt.typ}})
			if len(resp.Results) != len(truth) {
				t.Fatalf("got %d results, want %d", len(resp.Results), len(truth))
			}
			for i, r := range resp.Results {
				if r.BlockHeight != tt.wantFrom+uint64(i) || !bytes.Equal(r.BlockId, truth[i].ID) || len(r.Events) != len(truth[i].Events) {
					t.Fatalf("result %d: height %d with %d events, want %d with %d", i, r.BlockHeight, len(r.Events), truth[i].Height, len(truth[i].Events))
				}
			}
		})
	}
	if st := sim.Stats(); st.RangeRejected != 4 || st.RangeMaxSpan != 251 {
		t.Fatalf("stats: %d rejected, max span %d", st.RangeRejected, st.RangeMaxSpan)
	}
}

func TestLatestBlockHeader(t *testing.T) {
	sim, ac, _ := startSim(t, flowsim.Config{Seed: 3, History: 50, RootHeight: 10})
	ctx := testCtx(t)
	sealed, err := ac.GetLatestBlockHeader(ctx, &access.GetLatestBlockHeaderRequest{IsSealed: true})
	if err != nil {
		t.Fatal(err)
	}
	final, err := ac.GetLatestBlockHeader(ctx, &access.GetLatestBlockHeaderRequest{IsSealed: false})
	if err != nil {
		t.Fatal(err)
	}
	if sealed.Block.Height != 60 || sealed.BlockStatus != entities.BlockStatus_BLOCK_SEALED {
		t.Fatalf("sealed head: %d %v", sealed.Block.Height, sealed.BlockStatus)
	}
	if final.Block.Height <= 60 || final.BlockStatus != entities.BlockStatus_BLOCK_FINALIZED {
		t.Fatalf("finalized head: %d %v", final.Block.Height, final.BlockStatus)
	}
	byID, err := ac.GetBlockHeaderByID(ctx, &access.GetBlockHeaderByIDRequest{Id: sealed.Block.Id})
	if err != nil || byID.Block.Height != 60 {
		t.Fatalf("by id: %v %v", byID, err)
	}
	sim.Produce(3)
	h, err := ac.GetBlockHeaderByHeight(ctx, &access.GetBlockHeaderByHeightRequest{Height: 63})
	if err != nil || h.BlockStatus != entities.BlockStatus_BLOCK_SEALED {
		t.Fatalf("by height after produce: %v %v", h, err)
	}
	if _, err := ac.GetBlockHeaderByHeight(ctx, &access.GetBlockHeaderByHeightRequest{Height: 500}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown height: %v", err)
	}
	np, err := ac.GetNetworkParameters(ctx, &access.GetNetworkParametersRequest{})
	if err != nil || np.ChainId != "flow-sim" {
		t.Fatalf("network parameters: %v %v", np, err)
	}
}

// recvAll reads n responses and checks message_index is contiguous from 0.
func recvAll(t *testing.T, stream executiondata.ExecutionDataAPI_SubscribeEventsFromStartHeightClient, n int) []*executiondata.SubscribeEventsResponse {
	t.Helper()
	var out []*executiondata.SubscribeEventsResponse
	for len(out) < n {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("recv after %d responses: %v", len(out), err)
		}
		if resp.MessageIndex != uint64(len(out)) {
			t.Fatalf("message index %d, want %d", resp.MessageIndex, len(out))
		}
		out = append(out, resp)
	}
	return out
}

func TestSubscribeEveryHeight(t *testing.T) {
	sim, _, ec := startSim(t, flowsim.Config{Seed: 5, History: 120, RootHeight: 10})
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	// Starting at the root skips the root block, as flow-go does.
	stream, err := ec.SubscribeEventsFromStartHeight(ctx, &executiondata.SubscribeEventsFromStartHeightRequest{StartBlockHeight: 10})
	if err != nil {
		t.Fatal(err)
	}
	got := recvAll(t, stream, 120)
	truth, _ := sim.Events(11, 130, flowsim.Filter{})
	for i, r := range got {
		if r.BlockHeight != truth[i].Height || !bytes.Equal(r.BlockId, truth[i].ID) || len(r.Events) != len(truth[i].Events) {
			t.Fatalf("response %d: height %d with %d events, want %d with %d", i, r.BlockHeight, len(r.Events), truth[i].Height, len(truth[i].Events))
		}
	}
	// At the head the stream waits for the next sealed block.
	sim.Produce(1)
	resp, err := stream.Recv()
	if err != nil || resp.BlockHeight != 131 || resp.MessageIndex != 120 {
		t.Fatalf("after produce: %v %v", resp, err)
	}
}

func TestSubscribeHeartbeatAndFilter(t *testing.T) {
	sim, _, ec := startSim(t, flowsim.Config{Seed: 5, History: 600, RewardEvery: 60})
	rewardsPaid := "A." + flowsim.DefaultStakingContract + ".FlowIDTableStaking.RewardsPaid"
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	stream, err := ec.SubscribeEventsFromStartHeight(ctx, &executiondata.SubscribeEventsFromStartHeightRequest{
		StartBlockHeight:  1,
		Filter:            &executiondata.EventFilter{EventType: []string{rewardsPaid}},
		HeartbeatInterval: 25,
	})
	if err != nil {
		t.Fatal(err)
	}
	var prev uint64
	var rewards int
	var idx uint64
	for prev < 600 {
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if r.MessageIndex != idx {
			t.Fatalf("message index %d, want %d", r.MessageIndex, idx)
		}
		idx++
		if r.BlockHeight <= prev || r.BlockHeight-prev > 25 {
			t.Fatalf("height %d after %d: more than the heartbeat interval apart", r.BlockHeight, prev)
		}
		truth, _ := sim.Events(prev+1, r.BlockHeight, flowsim.Filter{EventTypes: []string{rewardsPaid}})
		for _, b := range truth[:len(truth)-1] {
			if len(b.Events) != 0 {
				t.Fatalf("height %d has matching events but got no response", b.Height)
			}
		}
		if len(r.Events) != len(truth[len(truth)-1].Events) {
			t.Fatalf("height %d: %d events, want %d", r.BlockHeight, len(r.Events), len(truth[len(truth)-1].Events))
		}
		rewards += len(r.Events)
		prev = r.BlockHeight
	}
	if want := 10 * len(flowsim.NodeIDs()); rewards != want {
		t.Fatalf("got %d RewardsPaid events, want %d", rewards, want)
	}
}

func TestSubscribeErrors(t *testing.T) {
	_, _, ec := startSim(t, flowsim.Config{Seed: 5, History: 100, RootHeight: 1000})
	tests := []struct {
		name string
		req  *executiondata.SubscribeEventsFromStartHeightRequest
		code codes.Code
	}{
		{"BelowRoot", &executiondata.SubscribeEventsFromStartHeightRequest{StartBlockHeight: 999}, codes.InvalidArgument},
		{"NotFinalized", &executiondata.SubscribeEventsFromStartHeightRequest{StartBlockHeight: 1200}, codes.NotFound},
		{"BadFilter", &executiondata.SubscribeEventsFromStartHeightRequest{StartBlockHeight: 1001, Filter: &executiondata.EventFilter{EventType: []string{"nope"}}}, codes.InvalidArgument},
		{"CCF", &executiondata.SubscribeEventsFromStartHeightRequest{StartBlockHeight: 1001, EventEncodingVersion: entities.EventEncodingVersion_CCF_V0}, codes.Unimplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream, err := ec.SubscribeEventsFromStartHeight(testCtx(t), tt.req)
			if err == nil {
				_, err = stream.Recv()
			}
			if status.Code(err) != tt.code {
				t.Fatalf("got %v, want %v", err, tt.code)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	sim, ac, ec := startSim(t, flowsim.Config{Seed: 5, History: 100})
	subscribe := func(ctx context.Context) (executiondata.ExecutionDataAPI_SubscribeEventsFromStartHeightClient, error) {
		return ec.SubscribeEventsFromStartHeight(ctx, &executiondata.SubscribeEventsFromStartHeightRequest{StartBlockHeight: 1})
	}

	t.Run("CutStreams", func(t *testing.T) {
		sim.CutStreams(1, 3)
		stream, err := subscribe(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		recvAll(t, stream, 3)
		if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
			t.Fatalf("fourth recv: %v", err)
		}
	})
	t.Run("SkipMessageIndex", func(t *testing.T) {
		sim.SkipMessageIndex(1, 2)
		stream, err := subscribe(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		var idx []uint64
		for range 3 {
			r, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			idx = append(idx, r.MessageIndex)
		}
		if idx[0] != 0 || idx[1] != 1 || idx[2] != 3 {
			t.Fatalf("indexes %v, want [0 1 3]", idx)
		}
	})
	t.Run("FailCalls", func(t *testing.T) {
		sim.FailCalls(2)
		for i := range 3 {
			_, err := ac.Ping(testCtx(t), &access.PingRequest{})
			if want := i == 2; (err == nil) != want {
				t.Fatalf("call %d: %v", i, err)
			}
		}
	})
	t.Run("FailFor", func(t *testing.T) {
		sim.FailFor(time.Hour)
		if _, err := ac.Ping(testCtx(t), &access.PingRequest{}); status.Code(err) != codes.Unavailable {
			t.Fatalf("during outage: %v", err)
		}
		sim.ClearFaults()
		if _, err := ac.Ping(testCtx(t), &access.PingRequest{}); err != nil {
			t.Fatalf("after outage: %v", err)
		}
	})
	t.Run("ExhaustStreams", func(t *testing.T) {
		sim.ExhaustStreams(1)
		stream, err := subscribe(testCtx(t))
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("got %v", err)
		}
		// Unary calls are not affected, the next stream works.
		stream, err = subscribe(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		recvAll(t, stream, 1)
	})
	t.Run("CloseEndsStreams", func(t *testing.T) {
		stream, err := subscribe(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		recvAll(t, stream, 100)
		sim.Close()
		_, err = stream.Recv()
		if err == nil || err == io.EOF {
			t.Fatalf("recv after close: %v", err)
		}
	})
}

func TestSubscribeFromLatestAndBlockID(t *testing.T) {
	sim, _, ec := startSim(t, flowsim.Config{Seed: 4, History: 80, RootHeight: 20})
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()

	latest, err := ec.SubscribeEventsFromLatest(ctx, &executiondata.SubscribeEventsFromLatestRequest{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := latest.Recv()
	if err != nil || r.BlockHeight != 100 || r.MessageIndex != 0 {
		t.Fatalf("from latest: %v %v", r, err)
	}

	b, _ := sim.Block(50)
	byID, err := ec.SubscribeEventsFromStartBlockID(ctx, &executiondata.SubscribeEventsFromStartBlockIDRequest{StartBlockId: b.ID})
	if err != nil {
		t.Fatal(err)
	}
	r, err = byID.Recv()
	if err != nil || r.BlockHeight != 50 || !bytes.Equal(r.BlockId, b.ID) {
		t.Fatalf("from block id: %v %v", r, err)
	}

	unknown := bytes.Clone(b.ID)
	unknown[0] ^= 0xff
	bad, err := ec.SubscribeEventsFromStartBlockID(ctx, &executiondata.SubscribeEventsFromStartBlockIDRequest{StartBlockId: unknown})
	if err == nil {
		_, err = bad.Recv()
	}
	if status.Code(err) != codes.NotFound {
		t.Fatalf("unknown block id: %v", err)
	}
}

func TestBlockInterval(t *testing.T) {
	sim, _, _ := startSim(t, flowsim.Config{Seed: 4, History: 10, BlockInterval: time.Millisecond})
	for i := 0; sim.SealedHeight() < 15; i++ {
		if i == 5000 {
			t.Fatalf("sealed height stuck at %d", sim.SealedHeight())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStartClosesWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sim, err := flowsim.Start(ctx, "127.0.0.1:0", flowsim.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if sim.SealedHeight() != 3000 {
		t.Fatalf("default history: sealed height %d", sim.SealedHeight())
	}
	cancel()
	sim.Close() // returns once the context's shutdown is complete
	if _, err := flowsim.Start(context.Background(), sim.Addr(), flowsim.Config{StakingContract: "nope"}); err == nil {
		t.Fatal("an invalid staking contract was accepted")
	}
}

// TestBackHistory: a back-history spreads its blocks' timestamps over
// weeks, the blocks after it follow at the live pace, and the timestamps a
// client reads through GetBlockHeaderByHeight increase at every height,
// the change included. Without a back-history the timestamps are those of
// one step, as before.
func TestBackHistory(t *testing.T) {
	genesis := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	const back, live = 600, 300
	day := 24 * time.Hour
	t.Run("WeeksThenLive", func(t *testing.T) {
		sim, ac, _ := startSim(t, flowsim.Config{Seed: 5, History: back + live, GenesisTime: genesis,
			BlockTimeStep: time.Second, BackHistory: back, BackHistoryStep: 28 * day / back, RewardEvery: 20})
		var prev time.Time
		for h := uint64(0); h <= back+live; h++ {
			resp, err := ac.GetBlockHeaderByHeight(testCtx(t), &access.GetBlockHeaderByHeightRequest{Height: h})
			if err != nil {
				t.Fatalf("height %d: %v", h, err)
			}
			ts := resp.GetBlock().GetTimestamp().AsTime()
			if h > 0 && !ts.After(prev) {
				t.Fatalf("height %d: timestamp %v is not after %v", h, ts, prev)
			}
			prev = ts
		}
		head, _ := sim.Block(back)
		if span := head.Time.Sub(genesis); span < 28*day-time.Second || span > 28*day+time.Second {
			t.Errorf("the back-history spans %v, want 28 days", span)
		}
		last, _ := sim.Block(back + live)
		if d := last.Time.Sub(head.Time); d < live*time.Second-time.Second || d > live*time.Second+time.Second {
			t.Errorf("the %d live blocks span %v, want %v", live, d, live*time.Second)
		}
		days := map[string]bool{}
		for _, r := range sim.Rewards(0, back+live) {
			b, _ := sim.Block(r.Height)
			days[b.Time.Format(time.DateOnly)] = true
		}
		if len(days) < 27 {
			t.Errorf("rewards on %d days of the 28, want every day but at most one", len(days))
		}
	})
	t.Run("OneStep", func(t *testing.T) {
		sim, _, _ := startSim(t, flowsim.Config{Seed: 5, History: back, GenesisTime: genesis, BlockTimeStep: time.Minute})
		for h := uint64(1); h <= back; h++ {
			b, _ := sim.Block(h)
			if off := b.Time.Sub(genesis) - time.Duration(h)*time.Minute; off < 0 || off >= 15*time.Second {
				t.Fatalf("height %d: %v past its nominal time, want below a quarter step", h, off)
			}
		}
	})
}
