package indexer

import (
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Per-record warnings (a record quarantined, an amount that does not
// parse) are logged as a sample: at most warnBurst lines per warnPeriod
// and source, then one line saying how many were left out. An upstream
// that sends a hundred thousand bad records in a block used to write as
// many log lines; every warning is still counted (evindex_record_warnings_total
// and "warnings" on /v1/sources).
const (
	warnBurst  = 10
	warnPeriod = time.Minute
)

// warnings samples one source's per-record warnings.
type warnings struct {
	log *zerolog.Logger
	now func() time.Time

	mu         sync.Mutex
	since      time.Time // start of the current period
	logged     int       // lines logged in it
	suppressed uint64    // warnings not logged in it
	total      uint64
}

// next counts a warning and returns the line to log it on, or nil (on
// which zerolog's methods do nothing) when this period's sample is full.
func (w *warnings) next() *zerolog.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.total++
	now := w.now()
	if now.Sub(w.since) >= warnPeriod {
		if w.suppressed > 0 {
			w.log.Warn().Uint64("not_logged", w.suppressed).Float64("period_seconds", warnPeriod.Seconds()).
				Msg("more per-record warnings in the last period than logged; see evindex_record_warnings_total and /v1/rejected")
		}
		w.since, w.logged, w.suppressed = now, 0, 0
	}
	if w.logged >= warnBurst {
		w.suppressed++
		return nil
	}
	w.logged++
	return w.log.Warn()
}

func (w *warnings) count() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total
}
