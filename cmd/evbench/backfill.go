package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"

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
// flight, and one at a time, each into a fresh store under the Runner.
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
	b.res.BackfillNoStoreHPS = float64(bare.heights) / bare.seconds
	b.res.BackfillMaxInFlight = par.maxInFlight
	perHeight := float64(par.events) / float64(par.heights)
	theoryHPS := float64(b.cfg.BackfillWorkers) * flowsim.MaxHeightRange / b.cfg.BackfillLatency.Seconds()
	b.res.BackfillHPS = float64(par.heights) / par.seconds
	b.res.BackfillEPS = float64(par.events) / par.seconds
	b.res.BackfillSequentialHPS = float64(seq.heights) / seq.seconds
	b.res.BackfillSequentialEPS = float64(seq.events) / seq.seconds
	b.res.BackfillTheoryHPS = theoryHPS
	b.res.BackfillTheoryEPS = theoryHPS * perHeight
	b.progress("backfill: %d workers %.0f heights/s (%.0f events/s), without the store %.0f heights/s, one at a time %.0f heights/s, theory %.0f heights/s",
		b.cfg.BackfillWorkers, b.res.BackfillHPS, b.res.BackfillEPS, b.res.BackfillNoStoreHPS, b.res.BackfillSequentialHPS, theoryHPS)
	return nil
}

type backfillResult struct {
	heights uint64
	events  int64
	seconds float64
	wall    float64 // including setup

	maxInFlight int // most range calls the node served at once
}

func (b *bench) backfillRun(ctx context.Context, workers int, heights uint64) (backfillResult, error) {
	began := time.Now()
	cfg := b.layout.simConfig(b.cfg.Seed)
	cfg.History = heights
	cfg.CallLatency = b.cfg.BackfillLatency
	sim, err := flowsim.Start(ctx, "127.0.0.1:0", cfg)
	if err != nil {
		return backfillResult{}, fmt.Errorf("start simulated access node: %w", err)
	}
	defer sim.Close()
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
	return backfillResult{heights: heights, events: res.Events, seconds: at.Sub(start).Seconds(),
		wall: time.Since(began).Seconds(), maxInFlight: stats.RangeMaxInFlight}, nil
}

// backfillNoStore runs the same backfill into a sink that drops the
// batches: the source and the node alone, to show what the store's
// commits cost the backfill.
func (b *bench) backfillNoStore(ctx context.Context, workers int, heights uint64) (backfillResult, error) {
	cfg := b.layout.simConfig(b.cfg.Seed)
	cfg.History = heights
	cfg.CallLatency = b.cfg.BackfillLatency
	sim, err := flowsim.Start(ctx, "127.0.0.1:0", cfg)
	if err != nil {
		return backfillResult{}, fmt.Errorf("start simulated access node: %w", err)
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
	return backfillResult{heights: heights, events: events, seconds: el.Seconds()}, nil
}
