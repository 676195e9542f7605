package indexer

import (
	"context"
	"errors"
	"time"

	"github.com/evindex/evindex/store"
)

// AlertEvaluator evaluates a source's alert rules on the store (package
// indexer/alerts): it returns the transitions the stored data implies as
// a batch of the source, or nil when nothing changes.
type AlertEvaluator interface {
	Evaluate(ctx context.Context, status store.SourceStatus) (*store.Batch, error)
}

// DefaultAlertInterval is how often a source's alerts are evaluated when
// no commit asks for it sooner.
const DefaultAlertInterval = 15 * time.Second

// evaluateAlerts runs the source's alert evaluation while the runner
// ingests it (on a shared store: while it holds the lease), after every
// commit and every AlertInterval, until ctx ends. Each result commits as
// one batch fenced by the lease, so a former owner cannot write alerts
// either; a transition the evaluation finds but fails to commit is found
// again by the next one.
func (r *Runner) evaluateAlerts(ctx context.Context, lease *store.Lease) {
	every := r.cfg.AlertInterval
	if every <= 0 {
		every = DefaultAlertInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.alertKick:
		}
		b, err := r.cfg.Alerts.Evaluate(ctx, r.Status())
		if err == nil && b != nil {
			b.Lease = lease
			err = r.st.Apply(ctx, *b)
		}
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, store.ErrLeaseLost):
			r.log.Warn().Err(err).Msg("alert evaluation stops: the source's lease is lost")
			return
		case err != nil:
			failures++
			if failures == 1 || failures%20 == 0 { // once, then now and then while it lasts
				r.log.Warn().Err(err).Int("attempt", failures).Msg("alert evaluation failed; retrying at the next commit")
			}
		default:
			if failures > 0 {
				r.log.Info().Int("attempts", failures).Msg("alert evaluation recovered")
			}
			failures = 0
			if b != nil {
				for _, a := range b.Alerts {
					r.log.Info().Str("rule", a.Rule).Str("subject", a.Subject).Str("state", a.State).Time("starts_at", a.StartsAt).Msg("alert")
				}
			}
		}
	}
}

// kickAlerts asks for an evaluation after a commit; a pending ask is
// enough for any number of commits.
func (r *Runner) kickAlerts() {
	select {
	case r.alertKick <- struct{}{}:
	default:
	}
}
