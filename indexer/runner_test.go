package indexer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

// countingSource emits one event per height from the resume point and
// fails after failEvery heights, like a flaky upstream stream.
type countingSource struct {
	mu        sync.Mutex
	last      uint64 // highest height to produce
	failEvery int
	permanent error
	starts    []uint64      // resume heights seen
	idle      chan struct{} // closed once a run has emitted everything
}

func (c *countingSource) Name() string     { return "count" }
func (c *countingSource) Kind() string     { return "test" }
func (c *countingSource) Endpoint() string { return "memory" }

func (c *countingSource) Run(ctx context.Context, r indexer.Resume, sink indexer.Sink) error {
	c.mu.Lock()
	c.starts = append(c.starts, r.Checkpoint.Height)
	c.mu.Unlock()
	if c.permanent != nil {
		return indexer.Permanent(c.permanent)
	}
	sink.SetState(store.StateLive)
	sink.SetHead(c.last)
	n := 0
	for h := r.Checkpoint.Height + 1; h <= c.last; h++ {
		if c.failEvery > 0 && n == c.failEvery {
			return errors.New("stream reset")
		}
		n++
		b := store.Batch{
			Events:     []store.Event{{Height: h, Type: "t", Payload: []byte(`{}`)}},
			Checkpoint: &store.Checkpoint{Height: h},
			Coverage:   &store.Range{From: h, To: h},
		}
		if err := sink.Emit(ctx, b); err != nil {
			return err
		}
	}
	if c.idle != nil {
		close(c.idle)
		c.idle = nil
	}
	<-ctx.Done()
	return nil
}

func noSleep(ctx context.Context, d time.Duration) error { return ctx.Err() }

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 2000; i++ {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestRunnerResumesAfterFailuresWithoutLossOrDuplicates(t *testing.T) {
	st := storetest.MustOpen(t)
	src := &countingSource{last: 1000, failEvery: 97}
	r := indexer.NewRunner(st, src, indexer.RunnerConfig{BatchMaxRecords: 40, BatchMaxDelay: time.Millisecond, Sleep: noSleep, Logger: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	eventually(t, "checkpoint 1000", func() bool {
		cp, ok, _ := st.Checkpoint(ctx, "count")
		return ok && cp.Height == 1000
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	p, err := st.Events(context.Background(), store.EventQuery{Source: "count", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 1000 {
		t.Fatalf("%d events, want 1000", len(p.Items))
	}
	for i, e := range p.Items {
		if e.Height != uint64(i+1) {
			t.Fatalf("event %d has height %d", i, e.Height)
		}
	}
	// Every restart resumed exactly at a committed checkpoint.
	for i, h := range src.starts {
		if h != uint64(i*97) {
			t.Fatalf("run %d resumed at %d, want %d", i, h, i*97)
		}
	}
	if s := r.Status(); s.Reconnects != 10 || s.LastError != "stream reset" {
		t.Errorf("status reconnects=%d last_error=%q", s.Reconnects, s.LastError)
	}
	cov, _ := st.Coverage(context.Background(), "count")
	if fmt.Sprint(cov) != "[{1 1000}]" {
		t.Errorf("coverage %v", cov)
	}
}

func TestRunnerStopsOnPermanentError(t *testing.T) {
	st := storetest.MustOpen(t)
	src := &countingSource{permanent: errors.New("start height 5 is below the node's root height 100")}
	r := indexer.NewRunner(st, src, indexer.RunnerConfig{Sleep: noSleep, Logger: zerolog.Nop()})
	err := r.Run(context.Background())
	if !indexer.IsPermanent(err) {
		t.Fatalf("Run returned %v, want a permanent error", err)
	}
	s := r.Status()
	if s.State != store.StateFailed || s.LastError == "" || len(src.starts) != 1 {
		t.Fatalf("state %s, last error %q, %d runs; want failed after one run", s.State, s.LastError, len(src.starts))
	}
}

func TestRunnerCommitsPendingOnStop(t *testing.T) {
	st := storetest.MustOpen(t)
	idle := make(chan struct{})
	src := &countingSource{last: 25, idle: idle}
	// A delay far longer than the test: only the stop can commit these.
	r := indexer.NewRunner(st, src, indexer.RunnerConfig{BatchMaxRecords: 1 << 20, BatchMaxDelay: time.Hour, Logger: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-idle
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cp, ok, _ := st.Checkpoint(context.Background(), "count")
	if !ok || cp.Height != 25 {
		t.Fatalf("checkpoint after stop: %+v found=%v, want 25", cp, ok)
	}
}

func TestRunnerReportsLag(t *testing.T) {
	st := storetest.MustOpen(t)
	src := &countingSource{last: 10}
	r := indexer.NewRunner(st, src, indexer.RunnerConfig{BatchMaxDelay: time.Millisecond, Logger: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	eventually(t, "caught up", func() bool {
		s := r.Status()
		return s.Checkpoint != nil && s.Checkpoint.Height == 10 && s.Lag == 0 && s.HeadHeight == 10
	})
}

// unreadableCheckpoints is a real store whose checkpoints cannot be read,
// as when the page that holds them is damaged.
type unreadableCheckpoints struct{ store.Store }

func (unreadableCheckpoints) Checkpoint(ctx context.Context, source string) (store.Checkpoint, bool, error) {
	return store.Checkpoint{}, false, fmt.Errorf("read /data/evindex.db: %w: assertion failed: Page expected to be: 7, but self identifies as 0", store.ErrCorrupt)
}

// TestRunnerFailsOnADamagedStore: a store that cannot be read or written
// for damage fails the source at once, visibly (state failed, last_error
// saying what to do), instead of retrying or, for an unreadable
// checkpoint, returning with the source still shown as starting.
func TestRunnerFailsOnADamagedStore(t *testing.T) {
	st := unreadableCheckpoints{storetest.MustOpen(t)}
	src := &countingSource{last: 10}
	r := indexer.NewRunner(st, src, indexer.RunnerConfig{Sleep: noSleep, Logger: zerolog.Nop()})
	err := r.Run(context.Background())
	if !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Run returned %v, want ErrCorrupt", err)
	}
	s := r.Status()
	if s.State != store.StateFailed || !strings.Contains(s.LastError, "evindex check") || !strings.Contains(s.LastError, "/data/evindex.db") || s.LastErrorAt.IsZero() {
		t.Fatalf("state %s, last error %q at %v; want failed, naming the file and what to do", s.State, s.LastError, s.LastErrorAt)
	}
	if len(src.starts) != 0 {
		t.Fatalf("the source ran %d times on a store whose checkpoint cannot be read", len(src.starts))
	}
}

// unwritable is a real store whose commits fail, as when the page new
// records go to is damaged.
type unwritable struct{ store.Store }

func (unwritable) Apply(ctx context.Context, batches ...store.Batch) error {
	return fmt.Errorf("write /data/evindex.db: %w: page 9 self identifies as 0", store.ErrCorrupt)
}

// TestRunnerEndsAQuietRunWhoseCommitFailed: a source hands over its last
// records and then has nothing more to say (a chain without new blocks);
// the commit of those records fails. The run ends and the source shows
// the failure, rather than staying "live" with nothing stored for as long
// as the upstream stays quiet (it learnt of the failure only from its next
// Emit).
func TestRunnerEndsAQuietRunWhoseCommitFailed(t *testing.T) {
	st := unwritable{storetest.MustOpen(t)}
	src := &countingSource{last: 3, idle: make(chan struct{})}
	r := indexer.NewRunner(st, src, indexer.RunnerConfig{Sleep: noSleep, Logger: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var err error
	eventually(t, "the run ends after its failed commit", func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	})
	if !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Run returned %v, want the commit's ErrCorrupt", err)
	}
	if s := r.Status(); s.State != store.StateFailed || !strings.Contains(s.LastError, "/data/evindex.db") {
		t.Fatalf("state %s, last error %q; want failed, naming the file", s.State, s.LastError)
	}
}
