package flowsim

import (
	"context"
	"net"
	"sync"

	"github.com/onflow/flow/protobuf/go/flow/access"
	"github.com/onflow/flow/protobuf/go/flow/entities"
	"github.com/onflow/flow/protobuf/go/flow/executiondata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// HostileNode is an access node that answers what a test scripts, as a
// buggy or malicious node would: heads that are not true, heights outside
// what was asked, timestamps no clock shows, events no store can hold. It
// serves the real AccessAPI and ExecutionDataAPI on loopback; what its
// script leaves unset answers Unimplemented or NotFound.
type HostileNode struct {
	// Head answers GetLatestBlockHeader; call counts the calls so far.
	Head func(call int) uint64
	// Stream is what SubscribeEventsFromStartHeight sends, in order, for
	// the n-th subscription (from 0) starting at start; message_index is
	// sent as scripted. After the last one the stream stays open until
	// the client leaves.
	Stream func(n int, start uint64) []*executiondata.SubscribeEventsResponse
	// Serve, when set instead of Stream, runs the n-th subscription
	// itself: it sends what it wants until it returns (or send fails,
	// when the client left).
	Serve func(ctx context.Context, n int, start uint64, send func(*executiondata.SubscribeEventsResponse) error) error
	// Range answers GetEventsForHeightRange.
	Range func(req *access.GetEventsForHeightRangeRequest) (*access.EventsResponse, error)
	// BlockID answers GetBlockHeaderByHeight; nil or a nil id is NotFound.
	BlockID func(height uint64) []byte

	lis net.Listener
	srv *grpc.Server

	mu      sync.Mutex
	heads   int
	streams int
}

// StartHostile serves node on addr (127.0.0.1:0 picks a port).
func StartHostile(addr string, node *HostileNode) (*HostileNode, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	node.lis = lis
	node.srv = grpc.NewServer(grpc.MaxSendMsgSize(64 << 20))
	access.RegisterAccessAPIServer(node.srv, &hostileAccess{n: node})
	executiondata.RegisterExecutionDataAPIServer(node.srv, &hostileStream{n: node})
	go func() { _ = node.srv.Serve(lis) }()
	return node, nil
}

// Addr is the node's listen address.
func (n *HostileNode) Addr() string { return n.lis.Addr().String() }

// Close stops the node and ends its streams.
func (n *HostileNode) Close() { n.srv.Stop() }

type hostileAccess struct {
	access.UnimplementedAccessAPIServer
	n *HostileNode
}

func (a *hostileAccess) GetLatestBlockHeader(context.Context, *access.GetLatestBlockHeaderRequest) (*access.BlockHeaderResponse, error) {
	if a.n.Head == nil {
		return nil, status.Error(codes.Unimplemented, "no head scripted")
	}
	a.n.mu.Lock()
	call := a.n.heads
	a.n.heads++
	a.n.mu.Unlock()
	return &access.BlockHeaderResponse{Block: &entities.BlockHeader{Height: a.n.Head(call)}}, nil
}

func (a *hostileAccess) GetBlockHeaderByHeight(_ context.Context, req *access.GetBlockHeaderByHeightRequest) (*access.BlockHeaderResponse, error) {
	var id []byte
	if a.n.BlockID != nil {
		id = a.n.BlockID(req.GetHeight())
	}
	if id == nil {
		return nil, status.Errorf(codes.NotFound, "could not get header for height %d: key not found", req.GetHeight())
	}
	return &access.BlockHeaderResponse{Block: &entities.BlockHeader{Id: id, Height: req.GetHeight()}}, nil
}

func (a *hostileAccess) GetEventsForHeightRange(_ context.Context, req *access.GetEventsForHeightRangeRequest) (*access.EventsResponse, error) {
	if a.n.Range == nil {
		return nil, status.Error(codes.Unimplemented, "no range scripted")
	}
	return a.n.Range(req)
}

type hostileStream struct {
	executiondata.UnimplementedExecutionDataAPIServer
	n *HostileNode
}

func (s *hostileStream) SubscribeEventsFromStartHeight(req *executiondata.SubscribeEventsFromStartHeightRequest, stream executiondata.ExecutionDataAPI_SubscribeEventsFromStartHeightServer) error {
	if s.n.Stream == nil && s.n.Serve == nil {
		return status.Error(codes.Unimplemented, "no stream scripted")
	}
	s.n.mu.Lock()
	n := s.n.streams
	s.n.streams++
	s.n.mu.Unlock()
	if s.n.Serve != nil {
		return s.n.Serve(stream.Context(), n, req.GetStartBlockHeight(), stream.Send)
	}
	for _, resp := range s.n.Stream(n, req.GetStartBlockHeight()) {
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	<-stream.Context().Done()
	return status.Error(codes.Canceled, "stream canceled")
}
