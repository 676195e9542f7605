// Package indexer runs upstream sources and hands their batches to the store.
package indexer

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/store"
)

// Source is one upstream. Run streams from the resume point until ctx ends
// or the upstream fails; it emits complete units of work (a height's records
// with the checkpoint they complete) to the Sink.
//
// Run returns nil only when ctx is done. Any other return is a failure: the
// Runner flushes what was emitted, waits a jittered backoff, reloads the
// checkpoint from the store and calls Run again. Wrap an error with
// Permanent to stop retrying (the source goes "failed").
type Source interface {
	Name() string
	Kind() string
	// Endpoint is shown to users; it must never contain a secret.
	Endpoint() string
	Run(ctx context.Context, resume Resume, sink Sink) error
}

// Resume is where a Source starts: the stored checkpoint (Found is false on
// first start) and a reader for the source's private state.
type Resume struct {
	Checkpoint store.Checkpoint
	Found      bool
	// State reads a value written earlier through Batch.State; nil when absent.
	State func(key string) ([]byte, error)
	// Attempt counts consecutive failed runs before this one (0 on a fresh start).
	Attempt int
	// Coverage reads the source's proven height ranges from the store, so a
	// source can find the holes it left (heights no upstream served) and
	// fill them once an upstream serves them.
	Coverage func() ([]store.Range, error)
}

// Sink receives a running Source's batches and progress.
type Sink interface {
	// Emit queues a batch. It is committed, in order, within the Runner's
	// batch delay or as soon as enough records are queued; Emit blocks only
	// while a full batch commits. A batch must be complete on its own: a
	// crash may keep any prefix of the emitted batches, never half of one.
	Emit(ctx context.Context, b store.Batch) error
	// Flush commits everything emitted so far and returns once it is durable.
	Flush(ctx context.Context) error
	// SetState reports the source's phase (store.StateBackfilling,
	// store.StateLive).
	SetState(s store.SourceState)
	// SetHead reports the upstream's newest height, for lag.
	SetHead(height uint64)
	// SetProgress reports long work (a backfill): done of total units.
	SetProgress(done, total uint64)
	// SetEndpoints reports the upstream nodes a source reads from, the
	// heights each serves, and the gaps: height ranges below the
	// checkpoint that no reachable node serves.
	SetEndpoints(endpoints []store.Endpoint, gaps []store.Gap)
	// Log is the source's logger (it carries the source name).
	Log() *zerolog.Logger
	// Warn returns a line for a per-record warning (a bad record, a value
	// that does not parse). Every call is counted; the lines are logged
	// as a sample, and Warn returns nil (a line that logs nothing) once
	// the sample is full. Record-level problems never go to Log.
	Warn() *zerolog.Event
}

// PermanentError marks a failure that retrying cannot fix (a rejected API
// key, a start height below the node's root).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so the Runner stops retrying and marks the source failed.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err was wrapped by Permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// RetryAfterError asks the Runner to wait at least After before the next
// attempt (an upstream said when it will accept requests again, e.g. a 429).
type RetryAfterError struct {
	Err   error
	After time.Duration
	// Failed shows the source as failed while it waits: it cannot work
	// until someone mends something outside evindex (a revoked API key
	// enabled again), yet it tries again after After, rarely, so it
	// recovers on its own without a restart or hammering the upstream.
	Failed bool
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// ValidName reports whether s can name a source: one or more lowercase
// letters, digits and dashes. Names appear in store keys, URLs and metric
// labels, so nothing else is allowed.
func ValidName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return s != ""
}

// HTTPStatusError is an upstream's HTTP answer other than 200. The Runner
// counts failed runs by it (evindex_upstream_errors_total{code="http_429"}).
type HTTPStatusError struct {
	Status int
	Err    error
}

func (e *HTTPStatusError) Error() string { return e.Err.Error() }
func (e *HTTPStatusError) Unwrap() error { return e.Err }

// TimePositioned is implemented by a Source whose heights are Unix seconds
// (the end of a Presearch earnings window) rather than block heights: its
// checkpoint, head and lag are reported as times, never as heights.
type TimePositioned interface {
	PositionsAreTimes() bool
}
