package spacemesh

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	smv1 "github.com/spacemeshos/api/release/go/spacemesh/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/evindex/evindex/store"
)

// startFollowers opens the live streams. They only tell the loop that
// something changed (the loop then reads from the checkpoint with
// queries), except the admin events, which exist nowhere else.
// go-spacemesh: v1 streams carry no history and close with Canceled when
// the subscriber's buffer fills, so each one is reopened whenever it ends.
func (r *run) startFollowers(ctx context.Context, wg *sync.WaitGroup) {
	poke := func() { r.pokeLoop() }
	goFollow(ctx, wg, r, "layer stream",
		func(ctx context.Context) (grpc.ServerStreamingClient[smv1.LayerStreamResponse], error) {
			return r.mesh.LayerStream(ctx, &smv1.LayerStreamRequest{})
		},
		func(*smv1.LayerStreamResponse) error { poke(); return nil })
	goFollow(ctx, wg, r, "status stream",
		func(ctx context.Context) (grpc.ServerStreamingClient[smv1.StatusStreamResponse], error) {
			return r.node.StatusStream(ctx, &smv1.StatusStreamRequest{})
		},
		func(*smv1.StatusStreamResponse) error { poke(); return nil })
	if r.v1 {
		for _, cb := range r.cfg.Coinbases {
			req := &smv1.AccountDataStreamRequest{Filter: &smv1.AccountDataFilter{
				AccountId:        &smv1.AccountId{Address: cb},
				AccountDataFlags: uint32(smv1.AccountDataFlag_ACCOUNT_DATA_FLAG_REWARD),
			}}
			goFollow(ctx, wg, r, "reward stream of "+cb,
				func(ctx context.Context) (grpc.ServerStreamingClient[smv1.AccountDataStreamResponse], error) {
					return r.global.AccountDataStream(ctx, req)
				},
				func(*smv1.AccountDataStreamResponse) error { poke(); return nil })
		}
	}
	if r.admin != nil {
		fresh := false
		goFollow(ctx, wg, r, "admin event stream",
			func(ctx context.Context) (grpc.ServerStreamingClient[smv1.Event], error) {
				fresh = true
				return r.admin.EventsStream(ctx, &smv1.EventStreamRequest{})
			},
			func(e *smv1.Event) error {
				var b store.Batch
				ev, err := r.eventRecord(e)
				if err != nil {
					raw, _ := proto.Marshal(e)
					sum := sha256.Sum256(raw)
					b.Rejected = []store.Rejected{store.NewRejected(store.RecordEvent, r.net.layerAt(r.cfg.Now()),
						"admin event "+hex.EncodeToString(sum[:8]), "", err.Error(), raw)}
				} else {
					b.Events = []store.Event{ev}
					r.noteEvent(e, ev.BlockTime, &fresh, &b)
				}
				select {
				case r.events <- b:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
	}
}

// goFollow runs follow in a goroutine tracked by wg.
func goFollow[T any](ctx context.Context, wg *sync.WaitGroup, r *run, what string,
	open func(context.Context) (grpc.ServerStreamingClient[T], error), handle func(*T) error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		follow(ctx, r, what, open, handle)
	}()
}

// follow keeps one stream open until ctx ends, reopening it after a
// doubling wait (StreamRetry up to StreamBackoff) whenever it closes; a message resets the wait.
// A node that does not serve the stream (Unimplemented) is left to polling.
func follow[T any](ctx context.Context, r *run, what string,
	open func(context.Context) (grpc.ServerStreamingClient[T], error), handle func(*T) error) {
	attempt := 0
	for {
		err := func() error {
			sctx, cancel := context.WithCancel(ctx)
			defer cancel()
			st, err := open(sctx)
			if err != nil {
				return err
			}
			for {
				m, err := st.Recv()
				if err != nil {
					return err
				}
				attempt = 0
				if err := handle(m); err != nil {
					return err
				}
			}
		}()
		if ctx.Err() != nil {
			return
		}
		code := status.Code(err)
		if code == codes.Unimplemented {
			r.log.Info().Str("stream", what).Msg("the node does not serve this stream; polling instead")
			return
		}
		attempt++
		ev := r.log.Warn()
		if code == codes.Canceled || code == codes.OK {
			ev = r.log.Info() // "buffer is full" or a clean end: routine
		}
		wait := r.cfg.StreamRetry << min(attempt-1, 16)
		if wait > r.cfg.StreamBackoff || wait <= 0 {
			wait = r.cfg.StreamBackoff
		}
		ev.Err(err).Str("stream", what).Int("attempt", attempt).Int64("retry_in_ms", wait.Milliseconds()).Msg("stream closed; catching up from the checkpoint and reopening")
		// Whatever the stream would have said is read again from the
		// checkpoint by the loop's queries.
		r.pokeLoop()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
