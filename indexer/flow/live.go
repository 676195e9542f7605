package flow

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/entities"
	"github.com/onflow/flow/protobuf/go/flow/executiondata"

	"github.com/evindex/evindex/store"
)

// live follows node n's event stream from height next. Every response,
// heartbeat or not, becomes one batch whose coverage runs from the
// previous checkpoint + 1 to the response's height: the node searched
// every height in between. A message_index gap or a height that does not
// move forward ends the run (nothing of that response is emitted), so the
// Runner resubscribes from the checkpoint.
//
// A stream that stays silent while the node's sealed head moves on (a hung
// connection, a stuck node) is dropped after the stall timeout, so the run
// ends with that cause instead of waiting forever. While the source has
// gaps, the nodes that did not answer are asked again now and then; when
// one serves a gap, the live phase ends with errReplan so it is filled.
func (r *run) live(ctx context.Context, n *node, next uint64) error {
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
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.pollHead(ctx, n, stalled)
	}()
	if len(r.gaps) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.reprobe(ctx, func() { cancel(errReplan) })
		}()
	}
	// Caught up: the stream may stay quiet until the next block is sealed.
	if head := r.head.Load(); head < next || head-next+1 <= cfg.Backfill.Distance {
		r.sink.SetState(store.StateLive)
	}
	start := next
	return r.follow(ctx, n, next, 0, cfg.HeartbeatInterval, true, func(h uint64) {
		lastRecv.Store(r.s.now().UnixNano())
		lastHeight.Store(h)
		r.setHead(h)
		r.reportPhase(start, h)
	})
}

// streamRange reads a segment of history through the event stream (range
// calls cannot select by contract or address): from the segment's nodes in
// turn, each taking over where the last one stopped.
func (r *run) streamRange(ctx context.Context, seg segment, advance bool) error {
	r.sink.SetState(store.StateBackfilling)
	var err error
	for _, n := range r.preferred(slices.Clone(seg.nodes)) {
		// A heartbeat for every height, so the last height of the segment
		// gets its response even when a past spork's node produces nothing
		// after it.
		err = r.follow(ctx, n, r.next, seg.to, 1, advance, func(h uint64) {
			r.sink.SetProgress(h-seg.from+1, seg.to-seg.from+1)
		})
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
		n.failed(err, r.s.now(), r.s.nodeBackoffMin, r.s.nodeBackoffMax)
	}
	return err
}

// follow subscribes to node n's events from next and emits every response
// as a batch, until stop is complete (stop 0: until ctx ends or the stream
// fails). Responses come at least every interval heights.
func (r *run) follow(ctx context.Context, n *node, next, stop, interval uint64, advance bool, onHeight func(h uint64)) error {
	cfg := &r.s.cfg
	req := &executiondata.SubscribeEventsFromStartHeightRequest{
		StartBlockHeight:     next,
		HeartbeatInterval:    interval,
		EventEncodingVersion: entities.EventEncodingVersion_JSON_CDC_V0,
	}
	if len(cfg.EventTypes)+len(cfg.Contracts)+len(cfg.Addresses) > 0 {
		req.Filter = &executiondata.EventFilter{EventType: cfg.EventTypes, Contract: cfg.Contracts, Address: cfg.Addresses}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stream, err := n.stream.SubscribeEventsFromStartHeight(ctx, req)
	if err != nil {
		return r.callError(ctx, n, "subscribe events", err)
	}
	var wantIndex uint64
	for stop == 0 || next <= stop {
		resp, err := stream.Recv()
		if err != nil {
			if isCanceled(ctx, err) {
				return context.Cause(ctx)
			}
			// The first Recv carries the node's answer to the subscription.
			if wantIndex == 0 {
				return r.callError(ctx, n, "subscribe events", err)
			}
			return r.nodeError(ctx, n, fmt.Sprintf("event stream at height %d", next), err)
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
		allowed := interval
		if wantIndex == 0 {
			allowed++
		}
		// h-next, not h-next+1: that wraps to 0 for height 2^64-1 after
		// a start at 0, and such a stream was once accepted.
		if h-next >= allowed {
			return fmt.Errorf("event stream gap: height %d follows height %d, more than the heartbeat interval of %d apart", h, next-1, interval)
		}
		if h == math.MaxUint64 {
			return fmt.Errorf("event stream sent height %d, after which no height can follow; resubscribing from the checkpoint", h)
		}
		if stop > 0 && h > stop {
			return fmt.Errorf("event stream of access node %s: height %d is past the last height %d it said it serves", n.addr, h, stop)
		}
		wantIndex++

		b := store.Batch{}
		r.dec.addHeight(&b, blockData{height: h, id: resp.GetBlockId(), ts: resp.GetBlockTimestamp(), events: resp.GetEvents()})
		blk := b.Blocks[len(b.Blocks)-1]
		if advance {
			b.Checkpoint = &store.Checkpoint{Height: h, BlockID: blk.BlockID, Time: blk.BlockTime}
		}
		b.Coverage = &store.Range{From: next, To: h}
		if err := r.emit(ctx, b); err != nil {
			return err
		}
		next = h + 1
		if wantIndex == 1 {
			n.succeeded()
		}
		onHeight(h)
	}
	return nil
}

// reprobe asks the nodes that did not answer again every reprobe interval
// and calls found once one of them serves a height of a gap.
func (r *run) reprobe(ctx context.Context, found func()) {
	t := time.NewTicker(r.s.reprobeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, n := range r.nodes {
			if known, _, _, _ := n.span(); known {
				continue
			}
			if r.probe(ctx, n) != nil {
				continue
			}
			for _, g := range r.gaps {
				if _, root, sealed, _ := n.span(); root <= g.To && sealed >= g.From {
					r.log.Info().Str("endpoint", n.addr).Uint64("from", g.From).Uint64("to", g.To).Msg("an access node now serves a gap; filling it")
					found()
					return
				}
			}
		}
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
func (r *run) pollHead(ctx context.Context, n *node, check func(head uint64)) {
	t := time.NewTicker(r.s.headEvery)
	defer t.Stop()
	for {
		if head, err := r.sealedHead(ctx, n); err != nil && ctx.Err() == nil {
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
