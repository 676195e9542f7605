package flowsim

import (
	"context"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/access"
	"github.com/onflow/flow/protobuf/go/flow/entities"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// accessServer serves flow.access.AccessAPI; methods it does not override
// answer Unimplemented.
type accessServer struct {
	access.UnimplementedAccessAPIServer
	s *Sim
}

func (a *accessServer) Ping(context.Context, *access.PingRequest) (*access.PingResponse, error) {
	return &access.PingResponse{}, nil
}

func (a *accessServer) GetNodeVersionInfo(context.Context, *access.GetNodeVersionInfoRequest) (*access.GetNodeVersionInfoResponse, error) {
	if a.s.cfg.NoVersionInfo {
		return nil, status.Error(codes.Unimplemented, "unknown method GetNodeVersionInfo for service flow.access.AccessAPI")
	}
	return &access.GetNodeVersionInfoResponse{Info: &entities.NodeVersionInfo{
		Semver:               "v0.0.0-flowsim",
		SporkId:              a.s.chain.blockID(a.s.SporkRootHeight()),
		SporkRootBlockHeight: a.s.SporkRootHeight(),
		NodeRootBlockHeight:  a.s.cfg.RootHeight,
	}}, nil
}

func (a *accessServer) GetNetworkParameters(context.Context, *access.GetNetworkParametersRequest) (*access.GetNetworkParametersResponse, error) {
	return &access.GetNetworkParametersResponse{ChainId: a.s.cfg.ChainID}, nil
}

func (a *accessServer) GetLatestBlockHeader(_ context.Context, req *access.GetLatestBlockHeaderRequest) (*access.BlockHeaderResponse, error) {
	h := a.s.SealedHeight()
	if !req.GetIsSealed() {
		h += a.finalizedLag()
	}
	return a.header(h), nil
}

func (a *accessServer) GetBlockHeaderByHeight(_ context.Context, req *access.GetBlockHeaderByHeightRequest) (*access.BlockHeaderResponse, error) {
	h := req.GetHeight()
	if h < a.s.cfg.RootHeight {
		return nil, a.s.belowRoot(h)
	}
	if h > a.s.SealedHeight()+a.finalizedLag() {
		return nil, status.Errorf(codes.NotFound, "could not get header for height %d: key not found", h)
	}
	return a.header(h), nil
}

func (a *accessServer) GetBlockHeaderByID(_ context.Context, req *access.GetBlockHeaderByIDRequest) (*access.BlockHeaderResponse, error) {
	h, ok := a.s.chain.heightOf(req.GetId())
	if !ok || h < a.s.cfg.RootHeight || h > a.s.SealedHeight()+a.finalizedLag() {
		return nil, status.Errorf(codes.NotFound, "could not get header for block %x: key not found", req.GetId())
	}
	return a.header(h), nil
}

// finalizedLag is how far the finalized head runs ahead of the sealed one:
// on a past spork's node everything finalized is sealed.
func (a *accessServer) finalizedLag() uint64 { return a.s.finalizedLag() }

func (s *Sim) finalizedLag() uint64 {
	if s.cfg.LastHeight > 0 {
		return 0
	}
	return finalizedLag
}

// belowRoot is the answer for a height this node never had. flow-go
// resolves a missing height to NotFound and says whether it is below the
// spork's root (an earlier spork's node has it) or only below the node's
// own root (another node of the spork may have it).
func (s *Sim) belowRoot(h uint64) error {
	if spork := s.SporkRootHeight(); h < spork {
		return status.Errorf(codes.NotFound, "block height %d is below the spork root block height %d: ask a node of an earlier spork", h, spork)
	}
	return status.Errorf(codes.NotFound, "block height %d is below this node's root block height %d: ask another access node", h, s.cfg.RootHeight)
}

func (a *accessServer) header(h uint64) *access.BlockHeaderResponse {
	b := a.s.chain.block(h)
	st := entities.BlockStatus_BLOCK_SEALED
	if h > a.s.SealedHeight() {
		st = entities.BlockStatus_BLOCK_FINALIZED
	}
	return &access.BlockHeaderResponse{
		Block: &entities.BlockHeader{
			Id:        b.ID,
			ParentId:  b.ParentID,
			Height:    b.Height,
			Timestamp: timestamppb.New(b.Time),
			ChainId:   a.s.cfg.ChainID,
		},
		BlockStatus: st,
	}
}

// GetEventsForHeightRange follows flow-go's access backend: one event type,
// at most MaxHeightRange heights, start above the sealed head is OutOfRange
// and the end is silently clamped to the sealed head. Every height in the
// answered range gets a result, with or without events.
func (a *accessServer) GetEventsForHeightRange(ctx context.Context, req *access.GetEventsForHeightRangeRequest) (*access.EventsResponse, error) {
	resp, err := a.eventsForHeightRange(ctx, req, false)
	if err != nil {
		return nil, err
	}
	return resp.(*access.EventsResponse), nil
}

// eventsForHeightRange answers a range call: with the precomputed bytes of
// its span when encoded is allowed and PrecomputeRanges stored them, else
// with the built response.
func (a *accessServer) eventsForHeightRange(ctx context.Context, req *access.GetEventsForHeightRangeRequest, encoded bool) (any, error) {
	s := a.s
	start, end := req.GetStartHeight(), req.GetEndHeight()
	var err error
	switch {
	case !validEventType(req.GetType()):
		err = status.Errorf(codes.InvalidArgument, "invalid event type %q", req.GetType())
	case req.GetEventEncodingVersion() != entities.EventEncodingVersion_JSON_CDC_V0:
		return nil, status.Error(codes.Unimplemented, "this node serves JSON-CDC event payloads only")
	case end < start:
		err = status.Errorf(codes.InvalidArgument, "start height %d must not be larger than end height %d", start, end)
	case end-start >= MaxHeightRange:
		err = status.Errorf(codes.InvalidArgument, "requested block range (%d) exceeded maximum (%d)", end-start+1, MaxHeightRange)
	case start < s.cfg.RootHeight:
		err = s.belowRoot(start)
	}
	s.mu.Lock()
	if end >= start {
		s.stats.RangeMaxSpan = max(s.stats.RangeMaxSpan, end-start+1)
	}
	if err != nil {
		s.stats.RangeRejected++
		s.mu.Unlock()
		return nil, err
	}
	s.stats.rangeInFlight++
	s.stats.RangeMaxInFlight = max(s.stats.RangeMaxInFlight, s.stats.rangeInFlight)
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil && !s.stats.rangePeers[p.Addr.String()] {
		if s.stats.rangePeers == nil {
			s.stats.rangePeers = map[string]bool{}
		}
		s.stats.rangePeers[p.Addr.String()] = true
		s.stats.RangeConnections++
	}
	latency := s.latency
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.stats.rangeInFlight--
		s.mu.Unlock()
	}()

	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}

	// flow-go: the end height is clamped to the latest sealed height.
	sealed := s.SealedHeight()
	if start > sealed {
		s.mu.Lock()
		s.stats.RangeOutOfRange++
		s.mu.Unlock()
		return nil, status.Errorf(codes.OutOfRange, "start height %d is greater than the latest sealed block height %d", start, sealed)
	}
	end = min(end, sealed)
	var answer any
	if m, ok := s.precomputed(req.GetType(), start, end); ok && encoded {
		answer = m
	} else {
		resp := s.buildRange(req.GetType(), start, end)
		s.spoilRange(resp)
		answer = resp
	}
	s.mu.Lock()
	s.stats.RangeCalls++
	if _, pre := answer.(encodedMessage); pre {
		s.stats.RangePrecomputed++
	}
	s.mu.Unlock()
	return answer, nil
}

// buildRange builds the answer for typ's events at heights [start, end],
// all of them sealed.
func (s *Sim) buildRange(typ string, start, end uint64) *access.EventsResponse {
	resp := &access.EventsResponse{Results: make([]*access.EventsResponse_Result, 0, end-start+1)}
	// Each block is generated with only the asked type's events: building
	// events (hashes and JSON-CDC payloads) is most of the call's cost.
	want := func(t string) bool { return t == typ }
	for h := start; h <= end; h++ {
		b := s.chain.blockOf(h, want)
		resp.Results = append(resp.Results, &access.EventsResponse_Result{
			BlockId:        b.ID,
			BlockHeight:    b.Height,
			Events:         b.Events,
			BlockTimestamp: timestamppb.New(b.Time),
		})
	}
	return resp
}

// spoilRange applies a pending GarbagePayloads fault to the whole answer,
// as one response.
func (s *Sim) spoilRange(resp *access.EventsResponse) {
	var events []*entities.Event
	for _, r := range resp.Results {
		events = append(events, r.Events...)
	}
	events = s.spoil(events)
	for _, r := range resp.Results {
		n := len(r.Events)
		r.Events = events[:n:n]
		events = events[n:]
	}
}
