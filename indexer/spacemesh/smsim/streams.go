package smsim

import (
	"context"

	smv1 "github.com/spacemeshos/api/release/go/spacemesh/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type noticeKind int

const (
	kindLayer noticeKind = iota + 1
	kindStatus
	kindReward
	kindEvent
)

// notice is one change a live stream may forward.
type notice struct {
	kind   noticeKind
	layer  uint32
	status *smv1.NodeStatus
	reward reward
	event  *smv1.Event
}

// subscriber is one live stream's mailbox. Like the node's, it is bounded:
// when it is full the stream is closed with Canceled "buffer is full".
type subscriber struct {
	kind noticeKind
	ch   chan notice
	kill chan error // capacity 1: the first fault wins
}

func (s *Sim) subscribe(kind noticeKind) *subscriber {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subscribeLocked(kind)
}

func (s *Sim) subscribeLocked(kind noticeKind) *subscriber {
	sub := &subscriber{kind: kind, ch: make(chan notice, s.cfg.StreamBuffer), kill: make(chan error, 1)}
	s.subs[sub] = struct{}{}
	return sub
}

func (s *Sim) unsubscribe(sub *subscriber) {
	s.mu.Lock()
	delete(s.subs, sub)
	s.mu.Unlock()
}

func (s *Sim) publishLocked(n notice) {
	for sub := range s.subs {
		if sub.kind != n.kind {
			continue
		}
		select {
		case sub.ch <- n:
		default:
			sub.fail(status.Error(codes.Canceled, "buffer is full"))
			delete(s.subs, sub)
		}
	}
}

func (sub *subscriber) fail(err error) {
	select {
	case sub.kill <- err:
	default:
	}
}

func (s *Sim) failStreams(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		sub.fail(err)
		delete(s.subs, sub)
	}
}

// EventStreams counts the live admin event streams.
func (s *Sim) EventStreams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for sub := range s.subs {
		if sub.kind == kindEvent {
			n++
		}
	}
	return n
}

// serve forwards a subscriber's notices through send until the client
// leaves (nil), a fault closes the stream, or send fails.
func serve(ctx context.Context, sub *subscriber, send func(notice) error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-sub.kill:
			return err
		case n := <-sub.ch:
			// A fault injected while messages are queued wins over them.
			select {
			case err := <-sub.kill:
				return err
			default:
			}
			if err := send(n); err != nil {
				return err
			}
		}
	}
}
