package flowsim

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/onflow/flow/protobuf/go/flow/access"
	"github.com/onflow/flow/protobuf/go/flow/executiondata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Range answers encoded ahead. Building a 250-height answer (block ids,
// hashes, JSON-CDC payloads) and encoding it costs the simulator a few
// milliseconds of CPU per call, which a benchmark of a 20 ms node counts
// against the client, and which shares the machine's cores with it. A
// real access node reads stored events; PrecomputeRanges makes the
// simulator as cheap: a call that asks exactly for a precomputed span is
// answered with the stored bytes, the same bytes the call would build.

// rangeKey names one precomputed GetEventsForHeightRange answer.
type rangeKey struct {
	typ        string
	start, end uint64
}

// encodedMessage is a response already encoded as protobuf; encodedCodec
// sends it as it is.
type encodedMessage []byte

// encodedCodec is gRPC's protobuf codec, except that an encodedMessage is
// written without encoding it again.
type encodedCodec struct{ encoding.CodecV2 }

func newEncodedCodec() encodedCodec {
	return encodedCodec{encoding.GetCodecV2(proto.Name)}
}

func (c encodedCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(encodedMessage); ok {
		// SliceBuffer's Free does nothing: the shared bytes stay intact.
		return mem.BufferSlice{mem.SliceBuffer(m)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// PrecomputeRanges builds and encodes the answers to the range calls for
// typ that tile [from, to] in spans of span heights (the last one
// shorter), as a client reading that history with span heights per call
// asks them. It holds them in memory (about 120 KB per 250 heights of one
// FlowToken type) until Close. Only heights already sealed are
// precomputed; a call for any other span is built as before, and a pending
// GarbagePayloads fault still spoils the answers it applies to.
func (s *Sim) PrecomputeRanges(ctx context.Context, typ string, from, to, span uint64) error {
	switch {
	case !validEventType(typ):
		return fmt.Errorf("precompute ranges: invalid event type %q", typ)
	case span == 0 || span > MaxHeightRange:
		return fmt.Errorf("precompute ranges: span %d must be between 1 and %d", span, MaxHeightRange)
	case from < s.cfg.RootHeight:
		return fmt.Errorf("precompute ranges: from %d is below the root height %d", from, s.cfg.RootHeight)
	}
	to = min(to, s.SealedHeight())
	encoded := map[rangeKey]encodedMessage{}
	codec := newEncodedCodec()
	for start := from; start <= to && start >= from; start += span {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(start+span-1, to)
		bufs, err := codec.Marshal(s.buildRange(typ, start, end))
		if err != nil {
			return fmt.Errorf("precompute ranges: encode heights %d-%d: %w", start, end, err)
		}
		encoded[rangeKey{typ, start, end}] = bufs.Materialize()
		bufs.Free()
	}
	s.mu.Lock()
	if s.encoded == nil {
		s.encoded = map[rangeKey]encodedMessage{}
	}
	for k, v := range encoded {
		s.encoded[k] = v
	}
	s.mu.Unlock()
	return nil
}

// precomputed returns the stored answer for a span, if there is one and
// no garbage fault would spoil it.
func (s *Sim) precomputed(typ string, start, end uint64) (encodedMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.encoded[rangeKey{typ, start, end}]
	if !ok || s.faults.garbage > 0 {
		return nil, false
	}
	return m, true
}

// accessServiceDesc is AccessAPI's service as generated, except that
// GetEventsForHeightRange may answer with precomputed bytes: the generated
// handler can return only a message to encode.
func accessServiceDesc(a *accessServer) *grpc.ServiceDesc {
	desc := access.AccessAPI_ServiceDesc
	desc.Methods = append([]grpc.MethodDesc(nil), desc.Methods...)
	for i := range desc.Methods {
		if desc.Methods[i].MethodName != "GetEventsForHeightRange" {
			continue
		}
		desc.Methods[i].Handler = func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(access.GetEventsForHeightRangeRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			answer := func(ctx context.Context, req any) (any, error) {
				return a.eventsForHeightRange(ctx, req.(*access.GetEventsForHeightRangeRequest), true)
			}
			if interceptor == nil {
				return answer(ctx, in)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: access.AccessAPI_GetEventsForHeightRange_FullMethodName}
			return interceptor(ctx, in, info, answer)
		}
	}
	return &desc
}

// blockMessage is a height's event stream response encoded ahead, without
// its message_index (which each stream numbers itself).
type blockMessage struct {
	msg    encodedMessage
	events int
}

// withIndex is the response with message_index set: field 5, the last
// one, appended as protobuf's encoder writes it (omitted when 0).
func (m blockMessage) withIndex(idx uint64) encodedMessage {
	if idx == 0 {
		return m.msg
	}
	out := make([]byte, 0, len(m.msg)+1+binary.MaxVarintLen64)
	out = append(out, m.msg...)
	out = append(out, 5<<3) // field 5, varint
	return binary.AppendUvarint(out, idx)
}

// PrecomputeBlocks encodes the event stream response of every sealed
// height in [from, to], with all of the block's events, and holds them in
// memory until Close (about 1.6 KB per height of the default chain): an
// unfiltered stream then sends those bytes, numbered with its own
// message_index, instead of building each block. A stream with a filter,
// a height outside the range and a pending GarbagePayloads fault are
// served as before. A later call replaces the earlier range.
func (s *Sim) PrecomputeBlocks(ctx context.Context, from, to uint64) error {
	from = max(from, s.cfg.RootHeight)
	to = min(to, s.SealedHeight())
	if to < from {
		return fmt.Errorf("precompute blocks: no sealed height in [%d, %d] on this node", from, to)
	}
	codec := newEncodedCodec()
	msgs := make([]blockMessage, 0, to-from+1)
	for h := from; h <= to && h >= from; h++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := s.chain.block(h)
		bufs, err := codec.Marshal(&executiondata.SubscribeEventsResponse{
			BlockId:        b.ID,
			BlockHeight:    b.Height,
			Events:         b.Events,
			BlockTimestamp: timestamppb.New(b.Time),
		})
		if err != nil {
			return fmt.Errorf("precompute blocks: encode height %d: %w", h, err)
		}
		msgs = append(msgs, blockMessage{msg: bufs.Materialize(), events: len(b.Events)})
		bufs.Free()
	}
	s.mu.Lock()
	s.blockMsgs, s.blockMsgsFrom = msgs, from
	s.mu.Unlock()
	return nil
}

// precomputedBlock returns the stored response of height h for a stream
// that selects every event, if there is one and no garbage fault would
// spoil it.
func (s *Sim) precomputedBlock(h uint64, unfiltered bool) (blockMessage, bool) {
	if !unfiltered {
		return blockMessage{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h < s.blockMsgsFrom || h-s.blockMsgsFrom >= uint64(len(s.blockMsgs)) || s.faults.garbage > 0 {
		return blockMessage{}, false
	}
	s.stats.StreamPrecomputed++
	return s.blockMsgs[h-s.blockMsgsFrom], true
}
