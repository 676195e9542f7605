package flow

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/onflow/flow/protobuf/go/flow/access"
	"github.com/onflow/flow/protobuf/go/flow/entities"
	"github.com/onflow/flow/protobuf/go/flow/executiondata"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// frames cuts an encoded message into buffers the way HTTP/2 frames
// deliver it: of varying sizes, some of one byte, so that every varint,
// tag and field straddles a boundary somewhere.
func frames(b []byte, rng *rand.Rand) mem.BufferSlice {
	var out mem.BufferSlice
	for len(b) > 0 {
		n := 1
		if rng.IntN(4) > 0 {
			n = 1 + rng.IntN(16<<10)
		}
		n = min(n, len(b))
		out = append(out, mem.SliceBuffer(b[:n]))
		b = b[n:]
	}
	return out
}

func floodEvents(n int, payloadBytes int) []*entities.Event {
	evs := make([]*entities.Event, n)
	for i := range evs {
		evs[i] = &entities.Event{Type: "A.1.C.E", TransactionId: []byte{byte(i), 2, 3}, TransactionIndex: uint32(i / 7), EventIndex: uint32(i),
			Payload: []byte(fmt.Sprintf(`{"i":%d,"v":"%s"}`, i, strings.Repeat("9", payloadBytes)))}
	}
	return evs
}

// TestMessageCodecDecodesLikeProto: a large response decoded from its
// frames, field by field, is the message proto.Unmarshal makes of it in
// one piece, for a stream's response and a range's (where the large
// field is a result inside the response), unknown fields included.
func TestMessageCodecDecodesLikeProto(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	stream := &executiondata.SubscribeEventsResponse{BlockId: []byte{1, 2, 3}, BlockHeight: 1 << 40, MessageIndex: 7,
		BlockTimestamp: timestamppb.Now(), Events: floodEvents(8000, 300)}
	huge := floodEvents(9000, 200)
	rng2 := &access.EventsResponse{Results: []*access.EventsResponse_Result{
		{BlockId: []byte{9}, BlockHeight: 5, Events: floodEvents(3, 10), BlockTimestamp: timestamppb.Now()},
		{BlockId: []byte{8}, BlockHeight: 6, Events: huge},
		{BlockId: []byte{7}, BlockHeight: 7},
	}, Metadata: &entities.Metadata{LatestFinalizedHeight: 99}}
	for _, c := range []struct {
		name  string
		msg   protoadapt.MessageV1
		fresh func() protoadapt.MessageV1
	}{
		{"SubscribeEventsResponse", stream, func() protoadapt.MessageV1 { return new(executiondata.SubscribeEventsResponse) }},
		{"EventsResponse", rng2, func() protoadapt.MessageV1 { return new(access.EventsResponse) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			wire, err := proto.Marshal(protoadapt.MessageV2Of(c.msg))
			if err != nil {
				t.Fatal(err)
			}
			// A field this build does not know, before and after the rest.
			unknown := protowire.AppendBytes(protowire.AppendTag(nil, 999, protowire.BytesType), []byte("later field"))
			wire = append(append(bytes.Clone(unknown), wire...), unknown...)
			if len(wire) < 2*streamFieldBytes {
				t.Fatalf("%d bytes: too small to be read field by field", len(wire))
			}
			want := c.fresh()
			if err := proto.Unmarshal(wire, protoadapt.MessageV2Of(want)); err != nil {
				t.Fatal(err)
			}
			got := c.fresh()
			if err := unmarshalFrames(frames(wire, rng), protoadapt.MessageV2Of(got)); err != nil {
				t.Fatal(err)
			}
			g, w := protoadapt.MessageV2Of(got), protoadapt.MessageV2Of(want)
			if !proto.Equal(g, w) {
				t.Fatal("decoded from its frames, the message differs from proto.Unmarshal's")
			}
			if u := g.ProtoReflect().GetUnknown(); len(u) == 0 || !bytes.Equal(u, w.ProtoReflect().GetUnknown()) {
				t.Fatal("unknown fields differ")
			}
			for _, cut := range []int{1, len(wire) / 3, len(wire) - 1} {
				if err := unmarshalFrames(frames(wire[:cut], rng), protoadapt.MessageV2Of(c.fresh())); err == nil {
					t.Fatalf("a message cut at %d of %d bytes decoded without an error", cut, len(wire))
				}
			}
		})
	}
}
