package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/access"
	"github.com/onflow/flow/protobuf/go/flow/entities"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/indexer/flow"
	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
)

// backfillRPS lifts the source's request rate limit (default 50/s, set for
// public nodes) so the measurement shows what the workers achieve.
const backfillRPS = 100_000

// backfill measures history through GetEventsForHeightRange against a node
// that adds BackfillLatency to every call: with BackfillWorkers calls in
// flight, and one at a time, each into a fresh store under the Runner;
// the same without the store; and the node alone, its answers discarded
// unread, which is the most this harness lets any client reach.
func (b *bench) backfill(ctx context.Context) error {
	cpu0 := cpuSeconds()
	par, err := b.backfillRun(ctx, b.cfg.BackfillWorkers, b.cfg.BackfillHeights)
	if err != nil {
		return err
	}
	b.res.BackfillCores = (cpuSeconds() - cpu0) / par.wall
	seq, err := b.backfillRun(ctx, 1, b.cfg.BackfillSequentialHeights)
	if err != nil {
		return err
	}
	bare, err := b.backfillNoStore(ctx, b.cfg.BackfillWorkers, b.cfg.BackfillHeights)
	if err != nil {
		return err
	}
	node, err := b.backfillNodeAlone(ctx, b.cfg.BackfillWorkers, b.cfg.BackfillHeights)
	if err != nil {
		return err
	}
	b.res.BackfillNoStoreHPS = float64(bare.heights) / bare.seconds
	b.res.BackfillNodeHPS = float64(node.heights) / node.seconds
	b.res.BackfillMaxInFlight = par.maxInFlight
	perHeight := float64(par.events) / float64(par.heights)
	theoryHPS := float64(b.cfg.BackfillWorkers) * flowsim.MaxHeightRange / b.cfg.BackfillLatency.Seconds()
	b.res.BackfillHPS = float64(par.heights) / par.seconds
	b.res.BackfillEPS = float64(par.events) / par.seconds
	b.res.BackfillSequentialHPS = float64(seq.heights) / seq.seconds
	b.res.BackfillSequentialEPS = float64(seq.events) / seq.seconds
	b.res.BackfillTheoryHPS = theoryHPS
	b.res.BackfillTheoryEPS = theoryHPS * perHeight
	b.progress("backfill: %d workers %.0f heights/s (%.0f events/s), without the store %.0f heights/s, the node alone %.0f heights/s, one at a time %.0f heights/s, theory %.0f heights/s",
		b.cfg.BackfillWorkers, b.res.BackfillHPS, b.res.BackfillEPS, b.res.BackfillNoStoreHPS, b.res.BackfillNodeHPS, b.res.BackfillSequentialHPS, theoryHPS)
	return nil
}

// startBackfillNode starts a node with heights of history and
// BackfillLatency per range call, with the answers to the source's range
// calls (MaxRange heights of BackfillType from height 1) encoded ahead, as
// a real node reads stored events instead of generating them: the
// measurement is then of the client, not of flowsim building blocks on
// the same cores.
func (b *bench) startBackfillNode(ctx context.Context, heights uint64) (*flowsim.Sim, error) {
	cfg := b.layout.simConfig(b.cfg.Seed)
	cfg.History = heights
	cfg.CallLatency = b.cfg.BackfillLatency
	sim, err := flowsim.Start(ctx, "127.0.0.1:0", cfg)
	if err != nil {
		return nil, fmt.Errorf("start simulated access node: %w", err)
	}
	if err := sim.PrecomputeRanges(ctx, b.cfg.BackfillType, 1, heights, flow.MaxRange); err != nil {
		sim.Close()
		return nil, err
	}
	return sim, nil
}

// checkPrecomputed notes a run whose range calls were not all answered
// from the precomputed spans: its rate then includes flowsim's building.
func (b *bench) checkPrecomputed(what string, sim *flowsim.Sim) {
	if st := sim.Stats(); st.RangePrecomputed < st.RangeCalls {
		b.res.note("%s: %d of %d range calls were not precomputed by the node", what, st.RangeCalls-st.RangePrecomputed, st.RangeCalls)
	}
}

type backfillResult struct {
	heights uint64
	events  int64
	seconds float64
	wall    float64 // including setup

	maxInFlight int // most range calls the node served at once
}

func (b *bench) backfillRun(ctx context.Context, workers int, heights uint64) (backfillResult, error) {
	sim, err := b.startBackfillNode(ctx, heights)
	if err != nil {
		return backfillResult{}, err
	}
	defer sim.Close()
	began := time.Now()
	dir := b.path(fmt.Sprintf("backfill-%d", workers))
	defer os.RemoveAll(dir)
	st, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		return backfillResult{}, err
	}
	defer st.Close()
	src, err := flow.New(flow.Config{
		Name:        sourceName,
		Endpoint:    sim.Addr(),
		StartHeight: 1,
		EventTypes:  []string{b.cfg.BackfillType},
		Backfill:    flow.BackfillConfig{Workers: workers, MaxRange: flow.MaxRange, RequestsPerSecond: backfillRPS},
	})
	if err != nil {
		return backfillResult{}, fmt.Errorf("flow source: %w", err)
	}
	m := indexer.NewMetrics(nil)
	r := indexer.NewRunner(st, src, indexer.RunnerConfig{
		BatchMaxRecords: batchMaxRecords, BatchMaxDelay: batchMaxDelay, Logger: zerolog.Nop(), Metrics: m})
	events := m.EventsCommitted.WithLabelValues(sourceName)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- r.Run(rctx) }()
	res, at, err := waitCommitted(ctx, errc, heights, func() (uint64, float64) {
		if cp := r.Status().Checkpoint; cp != nil {
			return cp.Height, counterValue(events)
		}
		return 0, 0
	}, time.Millisecond)
	cancel()
	<-errc
	if err != nil {
		return backfillResult{}, fmt.Errorf("backfill with %d workers: %w", workers, err)
	}
	stats := sim.Stats()
	if stats.RangeCalls == 0 {
		return backfillResult{}, fmt.Errorf("backfill with %d workers: the source made no range calls", workers)
	}
	b.checkPrecomputed(fmt.Sprintf("backfill with %d workers", workers), sim)
	return backfillResult{heights: heights, events: res.Events, seconds: at.Sub(start).Seconds(),
		wall: time.Since(began).Seconds(), maxInFlight: stats.RangeMaxInFlight}, nil
}

// backfillNoStore runs the same backfill into a sink that drops the
// batches: the source and the node alone, to show what the store's
// commits cost the backfill.
func (b *bench) backfillNoStore(ctx context.Context, workers int, heights uint64) (backfillResult, error) {
	sim, err := b.startBackfillNode(ctx, heights)
	if err != nil {
		return backfillResult{}, err
	}
	defer sim.Close()
	src, err := flow.New(flow.Config{
		Name:        sourceName,
		Endpoint:    sim.Addr(),
		StartHeight: 1,
		EventTypes:  []string{b.cfg.BackfillType},
		Backfill:    flow.BackfillConfig{Workers: workers, MaxRange: flow.MaxRange, RequestsPerSecond: backfillRPS},
	})
	if err != nil {
		return backfillResult{}, fmt.Errorf("flow source: %w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sink := newGroupSink(func(context.Context, []store.Batch) error { return nil }, cancel)
	sink.stopHeight = heights
	start := time.Now()
	runErr := src.Run(rctx, indexer.Resume{State: func(string) ([]byte, error) { return nil, nil }}, sink)
	el := time.Since(start)
	if err := sink.finish(ctx); err != nil {
		return backfillResult{}, err
	}
	if runErr != nil {
		return backfillResult{}, fmt.Errorf("backfill without a store: %w", runErr)
	}
	events, last := sink.taken()
	if last < heights {
		return backfillResult{}, fmt.Errorf("backfill without a store stopped at height %d of %d", last, heights)
	}
	b.checkPrecomputed("backfill without a store", sim)
	return backfillResult{heights: heights, events: events, seconds: el.Seconds()}, nil
}

// backfillNodeAlone makes the source's range calls (the same spans, the
// same number in flight, one connection per worker as the source has)
// with no source at all: each answer is received and dropped without
// being decoded. Its rate is the bound the node and the loopback
// transport impose; what the source reaches below it is the source's own
// cost.
func (b *bench) backfillNodeAlone(ctx context.Context, workers int, heights uint64) (backfillResult, error) {
	sim, err := b.startBackfillNode(ctx, heights)
	if err != nil {
		return backfillResult{}, err
	}
	defer sim.Close()
	conns := make([]*grpc.ClientConn, workers)
	for i := range conns {
		if conns[i], err = grpc.NewClient(sim.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			return backfillResult{}, fmt.Errorf("dial: %w", err)
		}
		defer conns[i].Close()
	}
	chunks := (heights + flow.MaxRange - 1) / flow.MaxRange
	var (
		next  atomic.Uint64
		bytes atomic.Int64
		wg    sync.WaitGroup
		errs  = make([]error, workers)
	)
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := access.NewAccessAPIClient(conns[w])
			discard := grpc.ForceCodecV2(discardCodec{encoding.GetCodecV2(proto.Name), &bytes})
			for c := next.Add(1) - 1; c < chunks; c = next.Add(1) - 1 {
				from := 1 + c*flow.MaxRange
				_, err := client.GetEventsForHeightRange(ctx, &access.GetEventsForHeightRangeRequest{
					Type:                 b.cfg.BackfillType,
					StartHeight:          from,
					EndHeight:            min(from+flow.MaxRange-1, heights),
					EventEncodingVersion: entities.EventEncodingVersion_JSON_CDC_V0,
				}, discard)
				if err != nil {
					errs[w] = fmt.Errorf("range call at height %d: %w", from, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return backfillResult{}, fmt.Errorf("the node alone: %w", err)
		}
	}
	if bytes.Load() == 0 {
		return backfillResult{}, fmt.Errorf("the node alone: no answer carried any bytes")
	}
	b.checkPrecomputed("the node alone", sim)
	return backfillResult{heights: heights, seconds: el.Seconds()}, nil
}

// discardCodec encodes requests as protobuf and drops every answer
// unread, counting its bytes.
type discardCodec struct {
	encoding.CodecV2
	bytes *atomic.Int64
}

func (c discardCodec) Unmarshal(data mem.BufferSlice, _ any) error {
	c.bytes.Add(int64(data.Len()))
	return nil
}
