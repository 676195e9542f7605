package flowsim

import (
	"context"
	"errors"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/entities"
	"github.com/onflow/flow/protobuf/go/flow/executiondata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// executionDataServer serves flow.executiondata.ExecutionDataAPI's event
// streams; the other methods answer Unimplemented.
type executionDataServer struct {
	executiondata.UnimplementedExecutionDataAPIServer
	s *Sim
}

// eventRequest is what the three SubscribeEvents variants share.
type eventRequest interface {
	GetFilter() *executiondata.EventFilter
	GetHeartbeatInterval() uint64
	GetEventEncodingVersion() entities.EventEncodingVersion
}

func (e *executionDataServer) SubscribeEventsFromStartHeight(req *executiondata.SubscribeEventsFromStartHeightRequest, stream executiondata.ExecutionDataAPI_SubscribeEventsFromStartHeightServer) error {
	start, err := e.s.startHeight(req.GetStartBlockHeight())
	if err != nil {
		return err
	}
	return e.s.streamEvents(stream.Context(), start, req, stream)
}

func (e *executionDataServer) SubscribeEventsFromStartBlockID(req *executiondata.SubscribeEventsFromStartBlockIDRequest, stream executiondata.ExecutionDataAPI_SubscribeEventsFromStartBlockIDServer) error {
	h, ok := e.s.chain.heightOf(req.GetStartBlockId())
	if !ok || h < e.s.cfg.RootHeight || h > e.s.SealedHeight()+e.s.finalizedLag() {
		return status.Errorf(codes.NotFound, "could not get header for block %x: key not found", req.GetStartBlockId())
	}
	start, err := e.s.startHeight(h)
	if err != nil {
		return err
	}
	return e.s.streamEvents(stream.Context(), start, req, stream)
}

func (e *executionDataServer) SubscribeEventsFromLatest(req *executiondata.SubscribeEventsFromLatestRequest, stream executiondata.ExecutionDataAPI_SubscribeEventsFromLatestServer) error {
	start, err := e.s.startHeight(e.s.SealedHeight())
	if err != nil {
		return err
	}
	return e.s.streamEvents(stream.Context(), start, req, stream)
}

// startHeight resolves a requested start height like flow-go's tracker: 0
// means the latest sealed block, below the root is InvalidArgument, a height
// not finalized yet is NotFound, and the root block itself is skipped.
func (s *Sim) startHeight(h uint64) (uint64, error) {
	root := s.cfg.RootHeight
	switch {
	case h == 0:
		h = s.SealedHeight()
	case h < root:
		return 0, status.Errorf(codes.InvalidArgument, "start height must be greater than or equal to the root height %d", root)
	case h > s.SealedHeight()+s.finalizedLag():
		return 0, status.Errorf(codes.NotFound, "could not get header for height %d: key not found", h)
	}
	if h == root {
		h = root + 1
	}
	return h, nil
}

// streamEvents walks heights one by one from start. It sends a response for
// a height with matching events, or a heartbeat (no events) once
// heartbeat_interval heights passed since the last response; message_index
// counts every response from 0. At the sealed head it waits for new blocks.
func (s *Sim) streamEvents(ctx context.Context, start uint64, req eventRequest, stream grpc.ServerStream) error {
	if req.GetEventEncodingVersion() != entities.EventEncodingVersion_JSON_CDC_V0 {
		return status.Error(codes.Unimplemented, "this node serves JSON-CDC event payloads only")
	}
	var f Filter
	if rf := req.GetFilter(); rf != nil {
		f = Filter{EventTypes: rf.GetEventType(), Contracts: rf.GetContract(), Addresses: rf.GetAddress()}
	}
	cf, err := f.compile()
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "invalid event filter: %v", err)
	}
	interval := req.GetHeartbeatInterval()
	if interval == 0 {
		interval = 1 // flow-go's default heartbeat interval
	}

	plan := s.takeStreamPlan(start)
	var (
		sinceLast uint64
		index     uint64
		sent      int
	)
	for h := start; ; h++ {
		if err := s.waitSealed(ctx, h); err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return status.FromContextError(err).Err()
			}
			return err
		}
		// An unfiltered stream sends a precomputed height's bytes; the
		// block is built only where there are none.
		pre, havePre := s.precomputedBlock(h, cf.all)
		var (
			b      Block
			events []*entities.Event
		)
		matched := pre.events
		if !havePre {
			b = s.chain.block(h)
			events = cf.apply(b.Events)
			matched = len(events)
		}
		if matched == 0 {
			sinceLast++
			if sinceLast < interval {
				continue
			}
		}
		sinceLast = 0

		if plan.cutAfter >= 0 && sent >= plan.cutAfter {
			s.countFault()
			return status.Error(codes.Unavailable, "stream closed by the access node (injected)")
		}
		idx := index
		index++
		if plan.skip && idx == plan.skipAt {
			s.countFault()
			continue // lost: the client sees message_index jump
		}
		if plan.delay > 0 {
			t := time.NewTimer(plan.delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return status.FromContextError(ctx.Err()).Err()
			}
		}
		var msg any
		if havePre {
			msg = pre.withIndex(idx)
		} else {
			msg = &executiondata.SubscribeEventsResponse{
				BlockId:        b.ID,
				BlockHeight:    b.Height,
				Events:         s.spoil(events),
				BlockTimestamp: timestamppb.New(b.Time),
				MessageIndex:   idx,
			}
		}
		if err := stream.SendMsg(msg); err != nil {
			return err
		}
		sent++
		s.countMessage()
	}
}
