package indexer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/store"
)

// sink batches one run's emitted work into store transactions. Batches
// commit in emit order; a failed commit is reported to the next Emit or
// Flush, which ends the run so it resumes from the stored checkpoint.
type sink struct {
	r *Runner

	mu           sync.Mutex // held across a commit: commits are serialized and ordered
	pending      []store.Batch
	records      int
	timer        *time.Timer
	err          error // sticky commit failure
	committedAny bool
	closed       bool
}

var _ Sink = (*sink)(nil)

func newSink(r *Runner) *sink { return &sink{r: r} }

func (s *sink) Emit(ctx context.Context, b store.Batch) error {
	if b.Source == "" {
		b.Source = s.r.src.Name()
	}
	if b.Kind == "" {
		b.Kind = s.r.src.Kind()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.closed {
		return fmt.Errorf("emit after the run ended")
	}
	s.pending = append(s.pending, b)
	s.records += b.Len()
	if s.records >= s.r.cfg.BatchMaxRecords {
		return s.commitLocked(ctx)
	}
	if s.timer == nil {
		s.timer = time.AfterFunc(s.r.cfg.BatchMaxDelay, s.onTimer)
	}
	return nil
}

func (s *sink) onTimer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timer = nil
	if s.err == nil && !s.closed {
		_ = s.commitLocked(context.Background())
	}
}

func (s *sink) Flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	return s.commitLocked(ctx)
}

// close commits what is pending; after ctx ends it still gets StopTimeout
// to do so, so a graceful stop keeps every completed unit.
func (s *sink) close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if s.err != nil {
		return s.err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.r.cfg.StopTimeout)
	defer cancel()
	return s.commitLocked(cctx)
}

func (s *sink) commitLocked(ctx context.Context) error {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if len(s.pending) == 0 {
		return nil
	}
	batches := s.pending
	s.pending, s.records = nil, 0
	start := time.Now()
	if err := s.r.st.Apply(ctx, batches...); err != nil {
		s.err = fmt.Errorf("commit: %w", err)
		return s.err
	}
	s.committedAny = true
	var cp *store.Checkpoint
	events, records := 0, 0
	for i := range batches {
		if batches[i].Checkpoint != nil {
			cp = batches[i].Checkpoint
		}
		events += len(batches[i].Events)
		records += batches[i].Len()
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
	return nil
}

func (s *sink) SetState(st State)              { s.r.setState(st) }
func (s *sink) SetHead(h uint64)               { s.r.setHead(h) }
func (s *sink) SetProgress(done, total uint64) { s.r.setProgress(done, total) }
func (s *sink) Log() *zerolog.Logger           { return &s.r.log }
