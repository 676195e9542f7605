package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/store"
)

// Batching as the Runner does it by default: a transaction as soon as
// this many records are queued, or this long after the first one.
const (
	batchMaxRecords = 5000
	batchMaxDelay   = 100 * time.Millisecond
)

// groupSink is an indexer.Sink that groups a source's per-height batches
// into transactions exactly as the Runner's sink does (records or delay,
// commits serialized and in order) and hands each group to commit. It
// lets the Flow source feed something other than the store: a file of
// pre-built batches, the SQLite peer, the bulk fill. It ends the run once
// a batch completes stopHeight, or once stopEvents events were taken, at
// a height boundary; batches past that are dropped.
type groupSink struct {
	commit     func(ctx context.Context, group []store.Batch) error
	stopHeight uint64 // 0: none
	stopEvents int64  // 0: none
	minHeight  uint64 // stopEvents counts only from this height on
	maxRecords int
	maxDelay   time.Duration // 0: no timer, commit by size only
	cancel     context.CancelFunc
	log        zerolog.Logger

	mu      sync.Mutex
	pending []store.Batch
	records int
	timer   *time.Timer
	err     error
	stopped bool
	events  int64  // taken so far
	last    uint64 // height of the last batch taken
}

var _ indexer.Sink = (*groupSink)(nil)

func newGroupSink(commit func(context.Context, []store.Batch) error, cancel context.CancelFunc) *groupSink {
	return &groupSink{commit: commit, cancel: cancel, maxRecords: batchMaxRecords, log: zerolog.Nop()}
}

func (s *groupSink) Emit(ctx context.Context, b store.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.stopped {
		return nil
	}
	if s.stopHeight > 0 && b.Checkpoint != nil && b.Checkpoint.Height > s.stopHeight {
		return s.stopLocked(ctx)
	}
	s.pending = append(s.pending, b)
	s.records += b.Len()
	s.events += int64(len(b.Events))
	if b.Checkpoint != nil {
		s.last = b.Checkpoint.Height
	}
	if (s.stopHeight > 0 && s.last >= s.stopHeight) || (s.stopEvents > 0 && s.events >= s.stopEvents && s.last >= s.minHeight) {
		return s.stopLocked(ctx)
	}
	if s.records >= s.maxRecords {
		return s.commitLocked(ctx)
	}
	if s.maxDelay > 0 && s.timer == nil {
		s.timer = time.AfterFunc(s.maxDelay, s.onTimer)
	}
	return nil
}

func (s *groupSink) onTimer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timer = nil
	if s.err == nil && !s.stopped {
		_ = s.commitLocked(context.Background())
	}
}

func (s *groupSink) stopLocked(ctx context.Context) error {
	err := s.commitLocked(ctx)
	s.stopped = true
	s.cancel()
	return err
}

func (s *groupSink) commitLocked(ctx context.Context) error {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if len(s.pending) == 0 {
		return nil
	}
	group := s.pending
	s.pending, s.records = nil, 0
	if err := s.commit(context.WithoutCancel(ctx), group); err != nil {
		s.err = fmt.Errorf("commit: %w", err)
		s.cancel()
		return s.err
	}
	return nil
}

// Flush commits what is queued.
func (s *groupSink) Flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	return s.commitLocked(ctx)
}

// finish commits what is still queued after the run and reports the
// first commit error.
func (s *groupSink) finish(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil && !s.stopped {
		s.stopped = true
		_ = s.commitLocked(ctx)
	}
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	return s.err
}

// taken returns the events taken and the last height.
func (s *groupSink) taken() (int64, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events, s.last
}

func (s *groupSink) SetState(store.SourceState)                 {}
func (s *groupSink) SetHead(uint64)                             {}
func (s *groupSink) SetProgress(uint64, uint64)                 {}
func (s *groupSink) SetEndpoints([]store.Endpoint, []store.Gap) {}
func (s *groupSink) Log() *zerolog.Logger                       { return &s.log }
func (s *groupSink) Warn() *zerolog.Event                       { return s.log.Warn() }
