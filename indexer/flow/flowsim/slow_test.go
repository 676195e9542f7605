package flowsim_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/access"
	"github.com/onflow/flow/protobuf/go/flow/executiondata"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/evindex/evindex/indexer/flow/flowsim"
)

func TestSlowStreams(t *testing.T) {
	sim, _, ec := startSim(t, flowsim.Config{Seed: 5, History: 100})
	sim.SlowStreams(1, time.Hour)
	// The slow stream's first response does not come before the client
	// gives up; the next stream is served at once.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	slow, err := ec.SubscribeEventsFromStartHeight(ctx, &executiondata.SubscribeEventsFromStartHeightRequest{StartBlockHeight: 1})
	if err == nil {
		_, err = slow.Recv()
	}
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("slow stream: %v, want DeadlineExceeded", err)
	}
	stream, err := ec.SubscribeEventsFromStartHeight(testCtx(t), &executiondata.SubscribeEventsFromStartHeightRequest{StartBlockHeight: 1})
	if err != nil {
		t.Fatal(err)
	}
	recvAll(t, stream, 5)
}

func TestGarbagePayloads(t *testing.T) {
	sim, _, ec := startSim(t, flowsim.Config{Seed: 5, History: 300})
	valid := func(payloads [][]byte) int {
		n := 0
		for _, p := range payloads {
			if json.Valid(p) {
				n++
			}
		}
		return n
	}
	var ac access.AccessAPIClient
	sim.GarbagePayloads(1)
	ctx, cancel := context.WithCancel(testCtx(t))
	stream, err := ec.SubscribeEventsFromStartHeight(ctx, &executiondata.SubscribeEventsFromStartHeightRequest{StartBlockHeight: 1})
	if err != nil {
		t.Fatal(err)
	}
	spoiled, good := 0, 0
	for i := 0; i < 50; i++ {
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		var ps [][]byte
		for _, e := range r.Events {
			ps = append(ps, e.Payload)
			if len(e.TransactionId) == 0 {
				t.Fatalf("height %d: an event lost its ids", r.BlockHeight)
			}
		}
		if len(ps) == 0 {
			continue
		}
		if v := valid(ps); v == 0 {
			spoiled++
		} else if v == len(ps) {
			good++
		} else {
			t.Fatalf("height %d: %d of %d payloads valid", r.BlockHeight, v, len(ps))
		}
	}
	if spoiled != 1 || good == 0 {
		t.Fatalf("%d responses spoiled, %d good; want exactly the first spoiled", spoiled, good)
	}
	cancel()

	// A node of its own, so no open stream takes the fault.
	sim, ac, _ = startSim(t, flowsim.Config{Seed: 5, History: 300})
	sim.GarbagePayloads(1)
	typ := flowsim.FlowTokenType("TokensDeposited")
	for i, want := range []bool{false, true} {
		resp, err := ac.GetEventsForHeightRange(testCtx(t), &access.GetEventsForHeightRangeRequest{Type: typ, StartHeight: 1, EndHeight: 200})
		if err != nil {
			t.Fatal(err)
		}
		var ps [][]byte
		for _, res := range resp.Results {
			for _, e := range res.Events {
				ps = append(ps, e.Payload)
			}
		}
		if len(ps) == 0 || (valid(ps) == len(ps)) != want || (!want && valid(ps) != 0) {
			t.Fatalf("range call %d: %d of %d payloads valid", i, valid(ps), len(ps))
		}
	}
}
