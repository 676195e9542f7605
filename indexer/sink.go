package indexer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/store"
)

// sink batches one run's emitted work into store transactions. A
// committer goroutine applies groups in emit order while the source goes
// on decoding the next one; Emit blocks only when a group is committing
// and another is already waiting. A failed commit is sticky: the next Emit
// or Flush returns it, and stop ends the run at once, so it resumes from
// the stored checkpoint even when the source has nothing more to emit.
type sink struct {
	r *Runner
	// lease, when set, fences every commit (see LeaseConfig).
	lease *store.Lease
	// stop cancels the run's context after a failed commit.
	stop context.CancelFunc

	mu      sync.Mutex // guards the fields below
	pending []store.Batch
	records int
	timer   *time.Timer
	closed  bool

	// sendMu is held from taking a group out of pending until it is
	// queued, so groups reach the committer in the order they were taken.
	sendMu sync.Mutex
	queue  chan commitGroup // at most one group waits while one commits
	done   chan struct{}    // closed when the committer has exited

	err          atomic.Pointer[error] // sticky commit failure
	committedAny atomic.Bool
}

// commitGroup is one store transaction's worth of batches; ack, when set,
// receives the outcome once the group (and so everything before it) is
// durable or has failed.
type commitGroup struct {
	batches []store.Batch
	ack     chan error
}

var _ Sink = (*sink)(nil)

func newSink(r *Runner, lease *store.Lease, stop context.CancelFunc) *sink {
	s := &sink{r: r, lease: lease, stop: stop, queue: make(chan commitGroup, 1), done: make(chan struct{})}
	go s.commitLoop()
	return s
}

func (s *sink) failure() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *sink) Emit(ctx context.Context, b store.Batch) error {
	if b.Source == "" {
		b.Source = s.r.src.Name()
	}
	if b.Kind == "" {
		b.Kind = s.r.src.Kind()
	}
	// Upstream records that no backend may store, or no upstream should
	// send, are quarantined here, so one of them never stalls the source.
	b.Quarantine(s.r.cfg.Now())
	if err := s.failure(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errSinkClosed
	}
	s.pending = append(s.pending, b)
	s.records += b.Len()
	full := s.records >= s.r.cfg.BatchMaxRecords
	if !full && s.timer == nil {
		s.timer = time.AfterFunc(s.r.cfg.BatchMaxDelay, s.onTimer)
	}
	s.mu.Unlock()
	if full {
		s.send(nil)
	}
	return s.failure()
}

func (s *sink) onTimer() {
	s.mu.Lock()
	s.timer = nil
	closed := s.closed
	s.mu.Unlock()
	if !closed {
		s.send(nil)
	}
}

// send queues what is pending as one group (an empty group when ack is
// set, so Flush still waits for everything before it).
func (s *sink) send(ack chan error) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		if ack != nil {
			ack <- errSinkClosed
		}
		return
	}
	g := s.takeLocked(ack)
	s.mu.Unlock()
	if len(g.batches) == 0 && ack == nil {
		return
	}
	s.queue <- g
}

var errSinkClosed = errors.New("emit after the run ended")

func (s *sink) takeLocked(ack chan error) commitGroup {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	g := commitGroup{batches: s.pending, ack: ack}
	// The next group is about as long as this one: one allocation of
	// its size instead of a doubling's worth of copies (a stream's
	// group holds a batch per height, a thousand or more).
	s.pending, s.records = make([]store.Batch, 0, cap(g.batches)), 0
	return g
}

func (s *sink) Flush(ctx context.Context) error {
	if err := s.failure(); err != nil {
		return err
	}
	ack := make(chan error, 1)
	s.send(ack)
	select {
	case err := <-ack:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close commits what is pending and stops the committer. After ctx ends it
// still waits up to StopTimeout, so a graceful stop keeps every completed
// unit that was emitted.
func (s *sink) close(ctx context.Context) error {
	ack := make(chan error, 1)
	s.sendMu.Lock()
	s.mu.Lock()
	s.closed = true
	g := s.takeLocked(ack)
	s.mu.Unlock()
	s.queue <- g
	close(s.queue)
	s.sendMu.Unlock()
	select {
	case <-s.done:
	case <-time.After(s.r.cfg.StopTimeout):
		return fmt.Errorf("commit: still running after %s", s.r.cfg.StopTimeout)
	}
	if err := s.failure(); err != nil {
		return err
	}
	return <-ack
}

// commitLoop applies queued groups in order. After a failure it applies
// nothing more: later groups assume the failed one is stored.
func (s *sink) commitLoop() {
	defer close(s.done)
	for g := range s.queue {
		err := s.failure()
		if err == nil && len(g.batches) > 0 {
			if err = s.commit(g.batches); err != nil {
				s.err.CompareAndSwap(nil, &err)
				s.stop()
			}
		}
		if g.ack != nil {
			g.ack <- err
		}
	}
}

func (s *sink) commit(batches []store.Batch) error {
	start := time.Now()
	if s.lease != nil {
		for i := range batches {
			batches[i].Lease = s.lease
		}
	}
	// The commit is not tied to the run's context: a stop must still
	// commit what was handed over (close bounds the wait).
	if err := s.r.st.Apply(context.Background(), batches...); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	s.committedAny.Store(true)
	s.r.committed()
	var cp *store.Checkpoint
	events, records := 0, 0
	for i := range batches {
		if batches[i].Checkpoint != nil {
			cp = batches[i].Checkpoint
		}
		events += len(batches[i].Events)
		records += batches[i].Len()
		for j := range batches[i].Rejected {
			s.r.rejected(&batches[i].Rejected[j])
		}
	}
	if m := s.r.cfg.Metrics; m != nil {
		name := s.r.src.Name()
		m.CommitSeconds.Observe(time.Since(start).Seconds())
		m.BatchesCommitted.WithLabelValues(name).Inc()
		m.EventsCommitted.WithLabelValues(name).Add(float64(events))
		m.RecordsCommitted.WithLabelValues(name).Add(float64(records))
	}
	if cp != nil {
		s.r.setCommitted(*cp)
	}
	s.r.kickAlerts()
	return nil
}

func (s *sink) SetState(st store.SourceState)  { s.r.setState(st) }
func (s *sink) SetHead(h uint64)               { s.r.setHead(h) }
func (s *sink) SetProgress(done, total uint64) { s.r.setProgress(done, total) }
func (s *sink) SetEndpoints(eps []store.Endpoint, gaps []store.Gap) {
	s.r.setEndpoints(eps, gaps)
}
func (s *sink) Log() *zerolog.Logger { return &s.r.log }
func (s *sink) Warn() *zerolog.Event { return s.r.warn() }
