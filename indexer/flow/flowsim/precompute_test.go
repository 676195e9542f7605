package flowsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/onflow/flow/protobuf/go/flow/access"
	"github.com/onflow/flow/protobuf/go/flow/entities"
	"github.com/onflow/flow/protobuf/go/flow/executiondata"

	"github.com/evindex/evindex/indexer/flow/flowsim"
)

// A precomputed answer is the answer the call builds, byte for byte on
// the wire: a client cannot tell them apart.
func TestPrecomputedRangesAnswerTheSame(t *testing.T) {
	const history = 700
	typ := flowsim.FlowTokenType("TokensDeposited")
	cfg := flowsim.Config{Seed: 9, History: history, RewardEvery: 50}
	built, builtClient, _ := startSim(t, cfg)
	pre, preClient, _ := startSim(t, cfg)
	// Tiles of 250 from height 1: 1-250, 251-500, 501-700 (the sealed head).
	if err := pre.PrecomputeRanges(testCtx(t), typ, 1, history+100, 250); err != nil {
		t.Fatal(err)
	}
	calls := []struct{ start, end uint64 }{{1, 250}, {251, 500}, {501, 750}, {501, 700}}
	for _, c := range calls {
		req := &access.GetEventsForHeightRangeRequest{Type: typ, StartHeight: c.start, EndHeight: c.end}
		want, err := builtClient.GetEventsForHeightRange(testCtx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := preClient.GetEventsForHeightRange(testCtx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		if d := diffRange(got, want); d != "" {
			t.Fatalf("heights %d-%d: precomputed answer differs: %s", c.start, c.end, d)
		}
	}
	if st := pre.Stats(); st.RangePrecomputed != len(calls) || st.RangeCalls != len(calls) {
		t.Fatalf("precomputed node: %d of %d calls from precomputed answers, want all %d", st.RangePrecomputed, st.RangeCalls, len(calls))
	}
	if st := built.Stats(); st.RangePrecomputed != 0 {
		t.Fatalf("plain node: %d calls from precomputed answers, want 0", st.RangePrecomputed)
	}

	// Another span, or another type, is built as before.
	for _, req := range []*access.GetEventsForHeightRangeRequest{
		{Type: typ, StartHeight: 2, EndHeight: 251},
		{Type: flowsim.FlowTokenType("TokensWithdrawn"), StartHeight: 1, EndHeight: 250},
	} {
		want, _ := builtClient.GetEventsForHeightRange(testCtx(t), req)
		got, err := preClient.GetEventsForHeightRange(testCtx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		if d := diffRange(got, want); d != "" {
			t.Fatalf("%s %d-%d: %s", req.Type, req.StartHeight, req.EndHeight, d)
		}
	}
	if st := pre.Stats(); st.RangePrecomputed != len(calls) {
		t.Fatalf("calls for spans never precomputed came from precomputed answers: %d", st.RangePrecomputed-len(calls))
	}

	// A pending garbage fault spoils a precomputed span too.
	pre.GarbagePayloads(1)
	got, err := preClient.GetEventsForHeightRange(testCtx(t), &access.GetEventsForHeightRangeRequest{Type: typ, StartHeight: 1, EndHeight: 250})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got.Results {
		for _, e := range r.Events {
			if json.Valid(e.Payload) {
				t.Fatalf("height %d: a valid payload while a garbage fault was pending", r.BlockHeight)
			}
		}
	}
}

func TestPrecomputeRangesRejectsBadInput(t *testing.T) {
	sim, _, _ := startSim(t, flowsim.Config{Seed: 1, History: 10, RootHeight: 5})
	typ := flowsim.FlowTokenType("TokensDeposited")
	for _, c := range []struct {
		name     string
		typ      string
		from     uint64
		span     uint64
		contains string
	}{
		{"BadType", "nope", 6, 250, "event type"},
		{"ZeroSpan", typ, 6, 0, "span"},
		{"SpanOver250", typ, 6, 251, "span"},
		{"BelowRoot", typ, 4, 250, "root"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := sim.PrecomputeRanges(context.Background(), c.typ, c.from, 15, c.span)
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.contains)) {
				t.Fatalf("got %v, want an error naming the %s", err, c.contains)
			}
		})
	}
}

// diffRange says how two range answers differ, or "" when they do not.
func diffRange(got, want *access.EventsResponse) string {
	if len(got.Results) != len(want.Results) {
		return fmt.Sprintf("%d results, want %d", len(got.Results), len(want.Results))
	}
	for i, g := range got.Results {
		w := want.Results[i]
		switch {
		case g.BlockHeight != w.BlockHeight, !bytes.Equal(g.BlockId, w.BlockId),
			!g.BlockTimestamp.AsTime().Equal(w.BlockTimestamp.AsTime()), len(g.Events) != len(w.Events):
			return fmt.Sprintf("result %d: height %d with %d events, want height %d with %d", i, g.BlockHeight, len(g.Events), w.BlockHeight, len(w.Events))
		}
		for j, ge := range g.Events {
			if d := diffEvent(ge, w.Events[j]); d != "" {
				return fmt.Sprintf("height %d event %d: %s", g.BlockHeight, j, d)
			}
		}
	}
	return ""
}

func diffEvent(g, w *entities.Event) string {
	switch {
	case g.Type != w.Type:
		return "type " + g.Type + ", want " + w.Type
	case !bytes.Equal(g.TransactionId, w.TransactionId), g.TransactionIndex != w.TransactionIndex, g.EventIndex != w.EventIndex:
		return "another transaction or index"
	case !bytes.Equal(g.Payload, w.Payload):
		return "payload differs"
	}
	return ""
}

// An unfiltered stream over precomputed heights receives the messages a
// built stream does, message_index included.
func TestPrecomputedBlocksStreamTheSame(t *testing.T) {
	cfg := flowsim.Config{Seed: 4, History: 400, RewardEvery: 30}
	_, _, builtClient := startSim(t, cfg)
	pre, _, preClient := startSim(t, cfg)
	if err := pre.PrecomputeBlocks(testCtx(t), 1, 300); err != nil {
		t.Fatal(err)
	}
	recv := func(ec executiondata.ExecutionDataAPIClient, req *executiondata.SubscribeEventsFromStartHeightRequest, n int) []*executiondata.SubscribeEventsResponse {
		ctx, cancel := context.WithCancel(testCtx(t))
		defer cancel()
		stream, err := ec.SubscribeEventsFromStartHeight(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var out []*executiondata.SubscribeEventsResponse
		for len(out) < n {
			r, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		return out
	}
	for _, req := range []*executiondata.SubscribeEventsFromStartHeightRequest{
		// Past the precomputed heights too: 250 to 349.
		{StartBlockHeight: 250, HeartbeatInterval: 1},
		{StartBlockHeight: 1, HeartbeatInterval: 3},
		{StartBlockHeight: 1, Filter: &executiondata.EventFilter{EventType: []string{flowsim.FlowTokenType("TokensDeposited")}}},
	} {
		want := recv(builtClient, req, 100)
		got := recv(preClient, req, 100)
		for i := range want {
			g, w := got[i], want[i]
			if g.MessageIndex != w.MessageIndex {
				t.Fatalf("start %d message %d: message_index %d, want %d", req.StartBlockHeight, i, g.MessageIndex, w.MessageIndex)
			}
			gr := &access.EventsResponse{Results: []*access.EventsResponse_Result{{BlockId: g.BlockId, BlockHeight: g.BlockHeight, Events: g.Events, BlockTimestamp: g.BlockTimestamp}}}
			wr := &access.EventsResponse{Results: []*access.EventsResponse_Result{{BlockId: w.BlockId, BlockHeight: w.BlockHeight, Events: w.Events, BlockTimestamp: w.BlockTimestamp}}}
			if d := diffRange(gr, wr); d != "" {
				t.Fatalf("start %d message %d: %s", req.StartBlockHeight, i, d)
			}
		}
	}
	// 51 heights of the first stream and 100 of the second were
	// precomputed; the filtered stream built its own.
	if st := pre.Stats(); st.StreamPrecomputed < 151 {
		t.Fatalf("%d heights streamed from precomputed responses, want at least 151", st.StreamPrecomputed)
	}
}
