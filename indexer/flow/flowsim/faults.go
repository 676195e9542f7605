package flowsim

import (
	"context"
	"errors"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/entities"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var errClosed = status.Error(codes.Unavailable, "access node is shutting down")

// faults are the injected failures still pending; guarded by Sim.mu.
type faults struct {
	failCalls   int           // next calls answered Unavailable
	failFor     time.Duration // from the next call on, every call for this long...
	failUntil   time.Time     // ...that is, before this, answered Unavailable
	exhaust     int           // next subscribe calls answered ResourceExhausted
	cutStreams  int           // next streams cut...
	cutAfter    int           // ...after this many messages
	skipStreams int           // next streams drop one message...
	skipAt      uint64        // ...the one with this message_index
	slowStreams int           // next streams wait...
	slowDelay   time.Duration // ...this long before each response
	garbage     int           // next responses carry unreadable payloads
}

// streamPlan is the faults one event stream carries out.
type streamPlan struct {
	cutAfter int // -1: never cut
	skip     bool
	skipAt   uint64
	delay    time.Duration // before each response
}

// Stats counts what the node served, for tests and benchmarks.
type Stats struct {
	// Calls counts calls by method name, e.g. "GetEventsForHeightRange",
	// including those answered by an injected fault.
	Calls map[string]int
	// Faulted counts calls and streams ended by an injected fault.
	Faulted int
	// Streams counts event streams that started sending.
	Streams int
	// StreamStarts lists the first height of each event stream, in order.
	StreamStarts []uint64
	// OpenStreams counts event streams whose handler is still running: a
	// client that cancelled a stream may see it at zero only a moment later.
	OpenStreams int
	// Messages counts event stream responses sent.
	Messages uint64
	// StreamPrecomputed counts the heights streams walked with the
	// responses PrecomputeBlocks stored.
	StreamPrecomputed uint64
	// RangeCalls counts GetEventsForHeightRange calls that returned events.
	RangeCalls int
	// RangePrecomputed counts the RangeCalls answered with bytes
	// PrecomputeRanges stored.
	RangePrecomputed int
	// RangeRejected counts GetEventsForHeightRange calls refused with
	// InvalidArgument (e.g. a span of 250 heights or more).
	RangeRejected int
	// RangeOutOfRange counts GetEventsForHeightRange calls that started
	// above the sealed head (OutOfRange).
	RangeOutOfRange int
	// RangeMaxSpan is the largest end-start+1 any range call asked for.
	RangeMaxSpan uint64
	// RangeMaxInFlight is the most range calls served at the same time.
	RangeMaxInFlight int
	rangeInFlight    int
	// RangeConnections counts the client connections (by their remote
	// address) that made range calls.
	RangeConnections int
	rangePeers       map[string]bool
}

// Stats returns a copy of the counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Calls = maps.Clone(s.stats.Calls)
	st.StreamStarts = slices.Clone(s.stats.StreamStarts)
	st.rangePeers = nil
	return st
}

// CutStreams makes each of the next n event streams end with Unavailable
// once it has sent after messages.
func (s *Sim) CutStreams(n, after int) {
	s.mu.Lock()
	s.faults.cutStreams, s.faults.cutAfter = n, max(after, 0)
	s.mu.Unlock()
}

// SkipMessageIndex makes each of the next n event streams drop the response
// whose message_index is at: the client receives at+1 right after at-1 and
// never sees that response's events.
func (s *Sim) SkipMessageIndex(n int, at uint64) {
	s.mu.Lock()
	s.faults.skipStreams, s.faults.skipAt = n, at
	s.mu.Unlock()
}

// SlowStreams makes each of the next n event streams wait d before every
// response, as an overloaded node or a congested link does. Responses
// still come, in order; they are just late.
func (s *Sim) SlowStreams(n int, d time.Duration) {
	s.mu.Lock()
	s.faults.slowStreams, s.faults.slowDelay = n, d
	s.mu.Unlock()
}

// GarbagePayloads makes the next n responses that carry events (stream
// responses and GetEventsForHeightRange answers) replace every event
// payload with bytes that are not JSON-CDC; ids, heights and indexes stay
// right.
func (s *Sim) GarbagePayloads(n int) {
	s.mu.Lock()
	s.faults.garbage = n
	s.mu.Unlock()
}

// garbagePayload is what GarbagePayloads sends instead of an event's
// JSON-CDC: binary noise, a NUL and a half-open object.
var garbagePayload = []byte("\x00\xff\xfe{\"type\":\"Event\",\"value\":")

// spoil returns events with their payloads replaced when a garbage fault
// is pending, else events unchanged. The originals are not modified.
func (s *Sim) spoil(events []*entities.Event) []*entities.Event {
	if len(events) == 0 {
		return events
	}
	s.mu.Lock()
	if s.faults.garbage == 0 {
		s.mu.Unlock()
		return events
	}
	s.faults.garbage--
	s.stats.Faulted++
	s.mu.Unlock()
	out := make([]*entities.Event, len(events))
	for i, e := range events {
		out[i] = &entities.Event{
			Type:             e.Type,
			TransactionId:    e.TransactionId,
			TransactionIndex: e.TransactionIndex,
			EventIndex:       e.EventIndex,
			Payload:          append([]byte(nil), garbagePayload...),
		}
	}
	return out
}

// FailCalls answers the next n calls, of any method, with Unavailable.
func (s *Sim) FailCalls(n int) {
	s.mu.Lock()
	s.faults.failCalls = n
	s.mu.Unlock()
}

// FailFor answers every call with Unavailable for d, counted from the next
// call: a test's setup on a loaded machine can outlast d, and a window
// that had closed before the client's first call would inject nothing.
func (s *Sim) FailFor(d time.Duration) {
	s.mu.Lock()
	s.faults.failFor, s.faults.failUntil = d, time.Time{}
	s.mu.Unlock()
}

// ExhaustStreams answers the next n subscribe calls with ResourceExhausted,
// as a node does when it serves too many streams.
func (s *Sim) ExhaustStreams(n int) {
	s.mu.Lock()
	s.faults.exhaust = n
	s.mu.Unlock()
}

// ClearFaults drops every pending injected fault.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	s.faults = faults{}
	s.mu.Unlock()
}

// admit counts a call and returns the injected error it must answer, if any.
func (s *Sim) admit(fullMethod string) error {
	method := path.Base(fullMethod)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Calls[method]++
	f := &s.faults
	if f.failFor > 0 {
		f.failUntil, f.failFor = s.cfg.Now().Add(f.failFor), 0
	}
	switch {
	case f.failCalls > 0:
		f.failCalls--
	case s.cfg.Now().Before(f.failUntil):
	case f.exhaust > 0 && strings.HasPrefix(method, "Subscribe"):
		f.exhaust--
		s.stats.Faulted++
		return status.Error(codes.ResourceExhausted, "maximum number of streams reached")
	default:
		return nil
	}
	s.stats.Faulted++
	return status.Error(codes.Unavailable, "access node unavailable (injected)")
}

// takeStreamPlan consumes the stream faults a new stream must carry out.
func (s *Sim) takeStreamPlan(start uint64) streamPlan {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := streamPlan{cutAfter: -1}
	if s.faults.cutStreams > 0 {
		s.faults.cutStreams--
		p.cutAfter = s.faults.cutAfter
	}
	if s.faults.skipStreams > 0 {
		s.faults.skipStreams--
		p.skip, p.skipAt = true, s.faults.skipAt
	}
	if s.faults.slowStreams > 0 {
		s.faults.slowStreams--
		p.delay = s.faults.slowDelay
	}
	s.stats.Streams++
	s.stats.StreamStarts = append(s.stats.StreamStarts, start)
	return p
}

func (s *Sim) countMessage() {
	s.mu.Lock()
	s.stats.Messages++
	s.mu.Unlock()
}

func (s *Sim) countFault() {
	s.mu.Lock()
	s.stats.Faulted++
	s.mu.Unlock()
}

func (s *Sim) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := s.admit(info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (s *Sim) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := s.admit(info.FullMethod); err != nil {
		return err
	}
	s.mu.Lock()
	s.stats.OpenStreams++
	s.mu.Unlock()
	err := handler(srv, ss)
	s.mu.Lock()
	s.stats.OpenStreams--
	s.mu.Unlock()
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, "stream canceled")
	}
	return err
}
