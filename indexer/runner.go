package indexer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/store"
)

// RunnerConfig tunes a Runner. Zero values take the defaults.
type RunnerConfig struct {
	// BatchMaxRecords commits as soon as this many records are queued
	// (default 5000).
	BatchMaxRecords int
	// BatchMaxDelay is the longest an emitted batch waits before it is
	// committed (default 100 ms). Larger values mean fewer, bigger
	// transactions and a longer window of work a crash discards.
	BatchMaxDelay time.Duration
	// BackoffMin and BackoffMax bound the jittered exponential backoff
	// between failed runs (defaults 500 ms and 30 s).
	BackoffMin, BackoffMax time.Duration
	// StopTimeout bounds the final commit after ctx ends (default 3 s).
	StopTimeout time.Duration
	// LagThreshold is reported on the source's status: the largest lag at
	// which a live source counts as ready.
	LagThreshold uint64
	// StallThreshold is reported on the source's status: how long it may
	// commit nothing while its upstream's head is ahead of its
	// checkpoint and still count as ready (0: never reported stalled).
	StallThreshold time.Duration
	Logger         zerolog.Logger
	Metrics        *Metrics // optional
	Now            func() time.Time
	// Sleep waits for d or until ctx ends; tests inject a fast one.
	Sleep func(ctx context.Context, d time.Duration) error
	// Lease, when set, shares the source with other processes on the
	// same store (see LeaseConfig); nil on a single-writer store.
	Lease *LeaseConfig
	// Alerts, when set, evaluates the source's alert rules while the
	// runner ingests it: after commits and every AlertInterval (default
	// DefaultAlertInterval).
	Alerts        AlertEvaluator
	AlertInterval time.Duration
}

func (c *RunnerConfig) setDefaults() {
	if c.BatchMaxRecords <= 0 {
		c.BatchMaxRecords = 5000
	}
	if c.BatchMaxDelay <= 0 {
		c.BatchMaxDelay = 100 * time.Millisecond
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 500 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = 3 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = Sleep
	}
}

// Sleep waits for d or until ctx ends, returning ctx's error in that case.
// It is the default clock wait of the Runner and of sources.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Runner runs one Source: it commits the source's batches to the store,
// and on failure waits a jittered backoff and resumes from the stored
// checkpoint.
type Runner struct {
	st  store.Store
	src Source
	cfg RunnerConfig
	log zerolog.Logger

	mu         sync.Mutex
	status     store.SourceStatus
	progressAt time.Time // when the current progress began
	progress0  uint64
	warnings   warnings
	// alertKick asks evaluateAlerts for an evaluation (kickAlerts).
	alertKick chan struct{}
	// lastProgress is when the source last committed (or began running);
	// aheadSince when the head last moved past the checkpoint (zero while
	// the checkpoint is at the head). Status turns them into StalledSince.
	lastProgress, aheadSince time.Time
}

// NewRunner prepares a Runner; nothing starts until Run.
func NewRunner(st store.Store, src Source, cfg RunnerConfig) *Runner {
	cfg.setDefaults()
	r := &Runner{st: st, src: src, cfg: cfg, alertKick: make(chan struct{}, 1)}
	r.log = cfg.Logger.With().Str("source", src.Name()).Logger()
	r.warnings = warnings{log: &r.log, now: cfg.Now}
	r.status = store.SourceStatus{Name: src.Name(), Kind: src.Kind(), Endpoint: src.Endpoint(),
		State: store.StateStarting, LagThreshold: cfg.LagThreshold, StallThreshold: cfg.StallThreshold}
	r.lastProgress = cfg.Now()
	return r
}

// Status returns the source's current state.
func (r *Runner) Status() store.SourceStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status
	s.Warnings = r.warnings.count()
	if s.Checkpoint != nil {
		cp := *s.Checkpoint
		s.Checkpoint = &cp
	}
	if s.Progress != nil {
		p := *s.Progress
		s.Progress = &p
	}
	s.Endpoints = slices.Clone(s.Endpoints)
	s.Gaps = slices.Clone(s.Gaps)
	if !r.aheadSince.IsZero() {
		s.StalledSince = r.lastProgress
		if r.aheadSince.After(s.StalledSince) {
			s.StalledSince = r.aheadSince
		}
	}
	return s
}

// Run runs the source until ctx ends (then it commits what was emitted and
// returns nil) or the source fails permanently (it returns that error and
// the source stays "failed").
func (r *Runner) Run(ctx context.Context) error {
	if r.cfg.Lease != nil {
		return r.runLeased(ctx)
	}
	return r.ingest(ctx, nil)
}

// ingest is Run on the store's single writer, or under a held lease: then
// every commit carries the lease and a refused one ends the run with
// errLeaseLost.
func (r *Runner) ingest(ctx context.Context, lease *store.Lease) error {
	if r.cfg.Alerts != nil {
		actx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); r.evaluateAlerts(actx, lease) }()
		defer func() { stop(); <-done }()
	}
	r.committed() // the stall clock starts with the run (after a standby)
	if cp, found, err := r.st.Checkpoint(ctx, r.src.Name()); err == nil && found {
		r.setCommitted(cp)
	}
	attempt := 0
	for {
		cp, found, err := r.st.Checkpoint(ctx, r.src.Name())
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if lease == nil {
				// The one-process store cannot be read (a damaged
				// page): the source fails, visibly, and the rest of the
				// daemon serves what it can.
				err = damaged(fmt.Errorf("read checkpoint: %w", err))
				r.fail(err)
				return fmt.Errorf("source %s: %w", r.src.Name(), err)
			}
			// A shared database restarts or fails over: read it again
			// after a backoff, as after a failed run.
			attempt++
			r.retrying(fmt.Errorf("read checkpoint: %w", err))
			r.log.Warn().Err(err).Int("attempt", attempt).Msg("cannot read the checkpoint; retrying")
			if r.cfg.Sleep(ctx, r.backoff(attempt)) != nil {
				r.setState(store.StateStarting)
				return nil
			}
			continue
		}
		resume := Resume{Checkpoint: cp, Found: found, Attempt: attempt,
			State:    func(key string) ([]byte, error) { return r.st.State(ctx, r.src.Name(), key) },
			Coverage: func() ([]store.Range, error) { return r.st.Coverage(ctx, r.src.Name()) }}
		// A failed commit ends the run (the sink cancels runCtx): a source
		// that is quiet upstream would not emit again, and so not learn
		// for as long as it stays quiet that its work was not stored.
		runCtx, stopRun := context.WithCancel(ctx)
		sk := newSink(r, lease, stopRun)
		runErr := r.src.Run(runCtx, resume, sk)
		stopRun()
		closeErr := sk.close(ctx)
		if errors.Is(runErr, store.ErrLeaseLost) || errors.Is(closeErr, store.ErrLeaseLost) {
			return fmt.Errorf("%w: a commit was refused: %w", errLeaseLost, errors.Join(runErr, closeErr))
		}
		if ctx.Err() != nil {
			if closeErr != nil {
				r.log.Error().Err(closeErr).Msg("final commit on stop")
			}
			r.setState(store.StateStarting)
			return nil
		}
		err = runErr
		if closeErr != nil && (err == nil || errors.Is(err, context.Canceled)) {
			err = closeErr // the failed commit ended the run
		}
		if err == nil {
			err = errors.New("source stopped without an error")
		}
		// A failed commit is sticky: the source usually returns it from
		// Emit already, and it is said once.
		if closeErr != nil && !errors.Is(err, closeErr) {
			err = errors.Join(err, closeErr)
		}
		// A damaged file will not mend by retrying: the source fails, and
		// the rest of the daemon serves what it can still read.
		if IsPermanent(runErr) || errors.Is(err, store.ErrCorrupt) {
			err = damaged(err)
			r.fail(err)
			return fmt.Errorf("source %s: %w", r.src.Name(), err)
		}
		if sk.committedAny.Load() {
			attempt = 0 // it made progress: the next failure starts a fresh backoff
		}
		attempt++
		wait := r.backoff(attempt)
		var ra *RetryAfterError
		if errors.As(err, &ra) && ra.After > wait {
			wait = ra.After
		}
		if ra != nil && ra.Failed {
			r.failedUntilRetry(err)
			r.log.Error().Err(err).Int("attempt", attempt).Int64("retry_in_ms", wait.Milliseconds()).Msg("source failed; trying again later")
		} else {
			r.retrying(err)
			r.log.Warn().Err(err).Int("attempt", attempt).Int64("backoff_ms", wait.Milliseconds()).Msg("source failed; retrying")
		}
		if r.cfg.Sleep(ctx, wait) != nil {
			r.setState(store.StateStarting)
			return nil
		}
	}
}

// damaged adds to an error that says the database is damaged what the
// operator does about it, since last_error on /v1/sources is where they
// meet it; other errors are returned as they are.
func damaged(err error) error {
	if !errors.Is(err, store.ErrCorrupt) {
		return err
	}
	return fmt.Errorf("%w (the source stays failed: stop evindex, run evindex check on the data dir to list the damage, restore evindex.db from a backup taken with evindex backup)", err)
}

// backoff is the wait before retry number attempt (see Backoff).
func (r *Runner) backoff(attempt int) time.Duration {
	return Backoff(attempt, r.cfg.BackoffMin, r.cfg.BackoffMax)
}

// warn counts a per-record warning and returns its line (nil once the
// period's sample is logged).
func (r *Runner) warn() *zerolog.Event {
	if m := r.cfg.Metrics; m != nil {
		m.RecordWarnings.WithLabelValues(r.src.Name()).Inc()
	}
	return r.warnings.next()
}

// rejected accounts for a quarantined record once it is committed.
func (r *Runner) rejected(q *store.Rejected) {
	if m := r.cfg.Metrics; m != nil {
		m.RecordsRejected.WithLabelValues(r.src.Name(), q.Kind).Add(float64(q.Records()))
	}
	if q.Counted > 0 {
		r.warn().Uint64("height", q.Height).Str("key", q.Key).Str("last_key", q.LastKey).Uint64("count", q.Counted).Str("kind", q.Kind).
			Str("field", q.Field).Str("reason", q.Reason).Msg("upstream records quarantined and counted; listed at /v1/rejected")
		return
	}
	r.warn().Uint64("height", q.Height).Str("key", q.Key).Str("kind", q.Kind).Str("field", q.Field).
		Str("reason", q.Reason).Msg("upstream record quarantined; listed at /v1/rejected")
}

func (r *Runner) setState(s store.SourceState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setStateLocked(s)
}

func (r *Runner) setStateLocked(s store.SourceState) {
	if s == store.StateLive && r.status.State != store.StateLive {
		r.status.LiveSince = r.cfg.Now()
		r.status.Progress = nil
		r.progressMetricsLocked()
	}
	if s != store.StateLive {
		r.status.LiveSince = time.Time{}
	}
	r.status.State = s
	if m := r.cfg.Metrics; m != nil {
		v := 0.0
		if s == store.StateLive {
			v = 1
		}
		m.Up.WithLabelValues(r.status.Name).Set(v)
	}
}

// retrying records a failed run the Runner will retry after a backoff.
func (r *Runner) retrying(err error) { r.failedRun(err, store.StateRetrying) }

// failedUntilRetry shows the source failed while it waits for a rare retry.
func (r *Runner) failedUntilRetry(err error) { r.failedRun(err, store.StateFailed) }

func (r *Runner) failedRun(err error, s store.SourceState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setStateLocked(s)
	r.status.LastError, r.status.LastErrorAt = err.Error(), r.cfg.Now()
	r.status.Reconnects++
	if m := r.cfg.Metrics; m != nil {
		m.Reconnects.WithLabelValues(r.status.Name).Inc()
		m.UpstreamErrors.WithLabelValues(r.status.Name, upstreamCode(err)).Inc()
	}
}

func (r *Runner) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setStateLocked(store.StateFailed)
	r.status.LastError, r.status.LastErrorAt = err.Error(), r.cfg.Now()
	r.log.Error().Err(err).Msg("source failed; not retrying")
}

// committed notes that a transaction of the source committed: it made
// progress, whether or not the transaction moved the checkpoint.
func (r *Runner) committed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastProgress = r.cfg.Now()
}

func (r *Runner) setCommitted(cp store.Checkpoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.Checkpoint = &cp
	r.updateLagLocked()
	if m := r.cfg.Metrics; m != nil {
		if !r.timePositioned() {
			m.CheckpointHeight.WithLabelValues(r.status.Name).Set(float64(cp.Height))
		}
		if !cp.Time.IsZero() {
			m.CheckpointTime.WithLabelValues(r.status.Name).Set(float64(cp.Time.UnixNano()) / 1e9)
		}
	}
}

// timePositioned reports whether the source's heights are Unix seconds.
func (r *Runner) timePositioned() bool {
	tp, ok := r.src.(TimePositioned)
	return ok && tp.PositionsAreTimes()
}

func (r *Runner) setHead(h uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.HeadHeight = h
	r.updateLagLocked()
	if m := r.cfg.Metrics; m != nil && !r.timePositioned() {
		m.HeadHeight.WithLabelValues(r.status.Name).Set(float64(h))
	}
}

func (r *Runner) updateLagLocked() {
	r.status.Lag = 0
	if r.status.Checkpoint != nil && r.status.HeadHeight > r.status.Checkpoint.Height {
		r.status.Lag = r.status.HeadHeight - r.status.Checkpoint.Height
	}
	// The upstream has data the store lacks: a head past the checkpoint,
	// or any head before the first checkpoint.
	ahead := r.status.Lag > 0 || (r.status.Checkpoint == nil && r.status.HeadHeight > 0)
	switch {
	case !ahead:
		r.aheadSince = time.Time{}
	case r.aheadSince.IsZero():
		r.aheadSince = r.cfg.Now()
	}
	if m := r.cfg.Metrics; m != nil {
		if r.timePositioned() {
			m.LagSeconds.WithLabelValues(r.status.Name).Set(float64(r.status.Lag))
		} else {
			m.Lag.WithLabelValues(r.status.Name).Set(float64(r.status.Lag))
		}
	}
}

func (r *Runner) setEndpoints(eps []store.Endpoint, gaps []store.Gap) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.Endpoints = slices.Clone(eps)
	r.status.Gaps = slices.Clone(gaps)
}

func (r *Runner) setProgress(done, total uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	if r.status.Progress == nil || done < r.status.Progress.Done {
		r.progressAt, r.progress0 = now, done
	}
	p := &store.Progress{Done: done, Total: total}
	if el := now.Sub(r.progressAt).Seconds(); el > 0 && done > r.progress0 {
		p.Rate = float64(done-r.progress0) / el
		if total > done {
			p.ETA = time.Duration(float64(total-done) / p.Rate * float64(time.Second))
		}
	}
	r.status.Progress = p
	r.progressMetricsLocked()
}

// progressMetricsLocked sets the backfill gauges from the status: zero
// when no backfill runs.
func (r *Runner) progressMetricsLocked() {
	m := r.cfg.Metrics
	if m == nil {
		return
	}
	var done, total, eta float64
	if p := r.status.Progress; p != nil {
		done, total, eta = float64(p.Done), float64(p.Total), p.ETA.Seconds()
	}
	m.BackfillDone.WithLabelValues(r.status.Name).Set(done)
	m.BackfillTotal.WithLabelValues(r.status.Name).Set(total)
	m.BackfillETA.WithLabelValues(r.status.Name).Set(eta)
}
