package indexer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/evindex/evindex/store"
)

// LeaseConfig lets several processes share a store's sources: a Runner
// with one ingests its source only while it holds the source's lease, and
// every commit carries the lease so the store refuses it once another
// process has taken the source over (fencing).
type LeaseConfig struct {
	Leases store.Leaser
	// Owner is this process's instance name (hostname:pid by default).
	Owner string
	// TTL is how long the lease lives without renewal; the Runner renews
	// it every TTL/3 and, in standby, tries to take it every TTL/3, so a
	// dead owner's source is taken over within about TTL + TTL/3.
	TTL time.Duration
}

// errLeaseLost ends an ingest run whose lease another process now holds.
var errLeaseLost = errors.New("lost the lease")

// runLeased alternates between standby (another process holds the lease;
// try to take it every TTL/3) and ingesting under a held lease, until ctx
// ends or the source fails permanently.
func (r *Runner) runLeased(ctx context.Context) error {
	lc := r.cfg.Lease
	attempt := 0
	for {
		l, err := lc.Leases.AcquireLease(ctx, r.src.Name(), lc.Owner, lc.TTL)
		switch {
		case ctx.Err() != nil:
			r.setState(store.StateStarting)
			return nil
		case errors.Is(err, store.ErrLeaseHeld):
			attempt = 0
			r.standby()
		case err != nil:
			// The database is unreachable: say so once per attempt and
			// keep trying; nothing is ingested meanwhile.
			attempt++
			r.retrying(fmt.Errorf("acquire lease: %w", err))
			r.log.Warn().Err(err).Int("attempt", attempt).Msg("cannot reach the lease table; retrying")
		default:
			attempt = 0
			err := r.ingestLeased(ctx, l)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return err
			}
			continue // lost the lease: back to standby at once
		}
		if r.cfg.Sleep(ctx, r.leaseWait(attempt)) != nil {
			r.setState(store.StateStarting)
			return nil
		}
	}
}

// leaseWait is the pause before the next acquisition: a third of the TTL,
// shorter while the database does not answer.
func (r *Runner) leaseWait(attempt int) time.Duration {
	d := r.cfg.Lease.TTL / 3
	if attempt > 0 {
		d = min(d, r.backoff(attempt))
	}
	return d
}

// ingestLeased ingests while l is held: a renewal loop keeps the lease and
// ends the run when another process has it. It returns nil when the lease
// was lost or ctx ended (the lease is then released, so another process
// takes the source at once), and the source's permanent failure otherwise.
func (r *Runner) ingestLeased(ctx context.Context, l store.Lease) error {
	lc := r.cfg.Lease
	r.log.Info().Str("owner", l.Owner).Uint64("generation", l.Generation).Msg("acquired the lease: ingesting")
	r.setOwner(l.Owner)
	runCtx, cancel := context.WithCancel(ctx)
	renewed := make(chan error, 1)
	go func() { renewed <- r.renewLease(runCtx, l, cancel) }()
	err := r.ingest(runCtx, &l)
	cancel()
	lostErr := <-renewed
	r.setOwner("")
	if errors.Is(err, errLeaseLost) {
		// The store refused a commit: say so next to the renewal's error.
		lostErr = errors.Join(lostErr, err)
	}
	if lostErr != nil && ctx.Err() == nil {
		r.log.Warn().Err(lostErr).Str("owner", l.Owner).Uint64("generation", l.Generation).
			Msg("lost the lease: another process ingests this source now; stopped ingesting it")
		r.standby()
		return nil
	}
	// A stop or a permanent failure: hand the source over now instead of
	// letting the lease run out.
	rctx, rcancel := context.WithTimeout(context.Background(), r.cfg.StopTimeout)
	defer rcancel()
	if rerr := lc.Leases.ReleaseLease(rctx, l); rerr != nil {
		r.log.Warn().Err(rerr).Msg("release lease")
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// renewLease renews l every TTL/3, with the source's status, until ctx
// ends. When the store says the
// lease has another owner it cancels the ingest run and returns the error;
// a failed renewal (the database away) is retried sooner, and the commits
// stay fenced meanwhile.
func (r *Runner) renewLease(ctx context.Context, l store.Lease, cancel context.CancelFunc) error {
	lc := r.cfg.Lease
	wait, failures := lc.TTL/3, 0
	for {
		if r.cfg.Sleep(ctx, wait) != nil {
			return nil
		}
		// The renewal carries this process's view of the source, so every
		// other process shows it (store.Lease.Status).
		status := r.Status()
		l.Status = &status
		next, err := lc.Leases.RenewLease(ctx, l, lc.TTL)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, store.ErrLeaseLost):
			cancel()
			return err
		case err != nil:
			failures++
			r.log.Warn().Err(err).Int("attempt", failures).Msg("renew lease; retrying")
			wait = lc.TTL / 9
		default:
			l, wait, failures = next, lc.TTL/3, 0
		}
	}
}

// standby marks the source as ingested by another process.
func (r *Runner) standby() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setStateLocked(store.StateStandby)
	r.status.Owner = ""
}

func (r *Runner) setOwner(owner string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.Owner = owner
}
