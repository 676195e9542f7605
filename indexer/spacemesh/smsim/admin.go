package smsim

import (
	smv1 "github.com/spacemeshos/api/release/go/spacemesh/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

type adminService struct {
	smv1.UnimplementedAdminServiceServer
	s *Sim
}

// EventsStream replays the last EventReplay events, then sends new ones.
// go-spacemesh replays its buffer of recent events to every subscriber, so
// a client that reconnects sees events it already has.
func (a *adminService) EventsStream(_ *smv1.EventStreamRequest, stream grpc.ServerStreamingServer[smv1.Event]) error {
	a.s.mu.Lock()
	sub := a.s.subscribeLocked(kindEvent)
	defer a.s.unsubscribe(sub)
	from := len(a.s.events) - a.s.cfg.EventReplay
	if from < 0 {
		from = 0
	}
	replay := make([]*smv1.Event, 0, len(a.s.events)-from)
	for _, e := range a.s.events[from:] {
		replay = append(replay, proto.Clone(e).(*smv1.Event))
	}
	a.s.mu.Unlock()
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return status.Error(codes.Unavailable, "can't send header")
	}
	for _, e := range replay {
		if err := stream.Send(e); err != nil {
			return err
		}
	}
	return serve(stream.Context(), sub, func(n notice) error {
		return stream.Send(n.event)
	})
}
