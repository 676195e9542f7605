package flow

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/entities"
	"github.com/onflow/flow/protobuf/go/flow/executiondata"

	"github.com/evindex/evindex/store"
)

// live follows the event stream from height next. Every response, heartbeat
// or not, becomes one batch whose coverage runs from the previous
// checkpoint + 1 to the response's height: the node searched every height
// in between. A message_index gap or a height that does not move forward
// ends the run (nothing of that response is emitted), so the Runner
// resubscribes from the checkpoint.
//
// A stream that stays silent while the node's sealed head moves on (a hung
// connection, a stuck node) is dropped after the stall timeout, so the run
// ends with that cause instead of waiting forever.
func (r *run) live(ctx context.Context, next uint64) error {
	cfg := &r.s.cfg
	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel(nil)
		wg.Wait() // nothing of this run reports after it returned
	}()
	var (
		lastRecv   atomic.Int64  // when the last response arrived (unix ns)
		lastHeight atomic.Uint64 // the last complete height
	)
	lastRecv.Store(r.s.now().UnixNano())
	lastHeight.Store(next - min(next, 1))
	stalled := func(head uint64) {
		idle := r.s.now().Sub(time.Unix(0, lastRecv.Load()))
		if last := lastHeight.Load(); head > last && head-last > cfg.HeartbeatInterval && idle > r.s.stallAfter {
			cancel(fmt.Errorf("event stream stalled: no response for %s while the node's sealed head moved %d heights past the last one received (%d); resubscribing from the checkpoint",
				idle.Round(time.Millisecond), head-last, last))
		}
	}

	req := &executiondata.SubscribeEventsFromStartHeightRequest{
		StartBlockHeight:     next,
		HeartbeatInterval:    cfg.HeartbeatInterval,
		EventEncodingVersion: entities.EventEncodingVersion_JSON_CDC_V0,
	}
	if len(cfg.EventTypes)+len(cfg.Contracts)+len(cfg.Addresses) > 0 {
		req.Filter = &executiondata.EventFilter{EventType: cfg.EventTypes, Contract: cfg.Contracts, Address: cfg.Addresses}
	}
	stream, err := r.stream.SubscribeEventsFromStartHeight(ctx, req)
	if err != nil {
		return r.callError(ctx, "subscribe events", next, err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.pollHead(ctx, stalled)
	}()
	// Caught up: the stream may stay quiet until the next block is sealed.
	if head := r.head.Load(); head < next || head-next+1 <= cfg.Backfill.Distance {
		r.sink.SetState(store.StateLive)
	}

	start := next
	var wantIndex uint64
	for {
		resp, err := stream.Recv()
		if err != nil {
			if isCanceled(ctx, err) {
				return context.Cause(ctx)
			}
			// The first Recv carries the node's answer to the subscription.
			if wantIndex == 0 {
				return r.callError(ctx, "subscribe events", next, err)
			}
			return fmt.Errorf("event stream at height %d: %w", next, err)
		}
		h := resp.GetBlockHeight()
		if got := resp.GetMessageIndex(); got != wantIndex {
			return fmt.Errorf("event stream gap: message_index %d where %d was due (last complete height %d); resubscribing from the checkpoint", got, wantIndex, next-1)
		}
		if h < next {
			return fmt.Errorf("event stream went back: height %d after height %d was complete", h, next-1)
		}
		// Responses come at least every heartbeat interval; the first may
		// also skip the node's root block.
		allowed := cfg.HeartbeatInterval
		if wantIndex == 0 {
			allowed++
		}
		// h-next, not h-next+1: that wraps to 0 for height 2^64-1 after
		// a start at 0, and such a stream was once accepted.
		if h-next >= allowed {
			return fmt.Errorf("event stream gap: height %d follows height %d, more than the heartbeat interval of %d apart", h, next-1, cfg.HeartbeatInterval)
		}
		if h == math.MaxUint64 {
			return fmt.Errorf("event stream sent height %d, after which no height can follow; resubscribing from the checkpoint", h)
		}
		wantIndex++

		b := store.Batch{}
		r.dec.addHeight(&b, blockData{height: h, id: resp.GetBlockId(), ts: resp.GetBlockTimestamp(), events: resp.GetEvents()})
		blk := b.Blocks[len(b.Blocks)-1]
		b.Checkpoint = &store.Checkpoint{Height: h, BlockID: blk.BlockID, Time: blk.BlockTime}
		b.Coverage = &store.Range{From: next, To: h}
		if err := r.emit(ctx, b); err != nil {
			return err
		}
		next = h + 1
		lastRecv.Store(r.s.now().UnixNano())
		lastHeight.Store(h)
		r.setHead(h)
		r.reportPhase(start, h)
	}
}

// reportPhase shows a stream that walks old history as a backfill (with
// progress) and one near the head as live.
func (r *run) reportPhase(start, h uint64) {
	head := r.head.Load()
	if head > h && head-h > r.s.cfg.Backfill.Distance {
		r.sink.SetState(store.StateBackfilling)
		r.sink.SetProgress(h-start+1, head-start+1)
		return
	}
	r.sink.SetState(store.StateLive)
}

// pollHead reports the sealed head now and then while the stream runs, so
// lag shows even when the stream is behind, and hands each head to check.
func (r *run) pollHead(ctx context.Context, check func(head uint64)) {
	t := time.NewTicker(r.s.headEvery)
	defer t.Stop()
	for {
		if head, err := r.sealedHead(ctx); err != nil && ctx.Err() == nil {
			r.log.Debug().Err(err).Msg("sealed head poll")
		} else if err == nil {
			check(head)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
