package indexer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

// steppedSource runs the steps it is handed, one at a time, with the
// run's sink; each step's done is closed once it has run.
type steppedSource struct{ steps chan sourceStep }

type sourceStep struct {
	do   func(ctx context.Context, sink indexer.Sink) error
	done chan struct{}
}

func (s *steppedSource) Name() string     { return "stepped" }
func (s *steppedSource) Kind() string     { return "test" }
func (s *steppedSource) Endpoint() string { return "memory" }

func (s *steppedSource) Run(ctx context.Context, _ indexer.Resume, sink indexer.Sink) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case st := <-s.steps:
			err := st.do(ctx, sink)
			close(st.done)
			if err != nil {
				return err
			}
		}
	}
}

// TestRunnerStallClock follows StalledSince on a clock the test moves: a
// source whose checkpoint is at the head is not stalled however long it
// has been idle; once the head moves past the checkpoint, the stall counts
// from then (or from the last commit, if later); a commit that catches up
// ends it. Before the first checkpoint, any head is data the store lacks.
func TestRunnerStallClock(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	advance := func(d time.Duration) { clock.Add(int64(d)) }

	src := &steppedSource{steps: make(chan sourceStep)}
	r := indexer.NewRunner(storetest.MustOpen(t), src, indexer.RunnerConfig{Now: now, Logger: zerolog.Nop(), StallThreshold: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	step := func(do func(ctx context.Context, sink indexer.Sink) error) {
		t.Helper()
		st := sourceStep{do: do, done: make(chan struct{})}
		src.steps <- st
		<-st.done
	}
	head := func(h uint64) func(context.Context, indexer.Sink) error {
		return func(_ context.Context, sink indexer.Sink) error { sink.SetHead(h); return nil }
	}
	commit := func(h uint64) func(context.Context, indexer.Sink) error {
		return func(ctx context.Context, sink indexer.Sink) error {
			b := store.Batch{Events: []store.Event{{Height: h, Type: "t", Payload: []byte(`{}`)}},
				Checkpoint: &store.Checkpoint{Height: h}, Coverage: &store.Range{From: h, To: h}}
			if err := sink.Emit(ctx, b); err != nil {
				return err
			}
			return sink.Flush(ctx)
		}
	}
	want := func(what string, since time.Time) {
		t.Helper()
		if s := r.Status(); !s.StalledSince.Equal(since) || s.StallThreshold != time.Minute {
			t.Fatalf("%s: stalled since %v (threshold %s), want %v", what, s.StalledSince, s.StallThreshold, since)
		}
	}

	advance(time.Second)
	step(head(5)) // before any checkpoint: the upstream has data the store lacks
	want("head before the first checkpoint", t0.Add(time.Second))
	advance(time.Second)
	step(commit(5))
	want("caught up", time.Time{})

	advance(10 * time.Minute) // idle with nothing new upstream: not a stall
	want("idle at the head", time.Time{})
	step(head(8))
	want("head moved past the checkpoint", t0.Add(10*time.Minute+2*time.Second))
	advance(5 * time.Minute)
	want("nothing committed since", t0.Add(10*time.Minute+2*time.Second))
	step(commit(6)) // progress, still behind: the stall clock restarts
	want("a commit behind the head", t0.Add(15*time.Minute+2*time.Second))
	advance(time.Minute)
	step(commit(8))
	want("caught up again", time.Time{})
}
