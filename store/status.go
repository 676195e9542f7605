package store

import "time"

// SourceState is a source's phase, as /v1/sources shows it.
type SourceState string

// The states of a source.
const (
	StateStarting    SourceState = "starting"
	StateBackfilling SourceState = "backfilling"
	StateLive        SourceState = "live"
	StateRetrying    SourceState = "retrying"
	StateFailed      SourceState = "failed"
	// StateStopped is a source the store holds data of that no runner
	// reports on.
	StateStopped SourceState = "stopped"
)

// SourceStatus is the runtime state of one running source: the one type
// the indexer's Runner fills and httpapi renders on /v1/sources and
// /readyz, next to what SourceInfo keeps. A new field is added here, then
// given its JSON key, CSV and Parquet column where httpapi renders the
// source (httpapi/sources.go) and documented in the OpenAPI document; no
// other package copies it.
//
// It lives in store, not indexer, because a shared backend persists it:
// on PostgreSQL every ingest process writes the status of the sources it
// owns, so any process's /v1/sources shows every source, with the owner
// that runs it. The embedded bolt backend has one process and keeps it in
// memory.
type SourceStatus struct {
	Name string
	Kind string
	// Endpoint is shown to users as is: it never holds a secret.
	Endpoint string
	State    SourceState
	// Checkpoint is the last one the runner committed (nil before the
	// first); SourceInfo has the stored one.
	Checkpoint *Checkpoint
	// HeadHeight is the upstream's newest height; Lag is how far the
	// checkpoint is behind it.
	HeadHeight uint64
	Lag        uint64
	// LagThreshold is the largest lag at which a live source counts as
	// ready on /readyz.
	LagThreshold uint64
	// LastError is the error of the last failed run ("" when none), and
	// LastErrorAt when it happened. The error stays after the source
	// recovers, so a user can still see what went wrong; its time, against
	// LiveSince, says whether it is still the matter.
	LastError   string
	LastErrorAt time.Time
	// Reconnects counts failed runs since the process started.
	Reconnects uint64
	// Warnings counts per-record warnings since the process started,
	// including every quarantined record.
	Warnings uint64
	// Progress is set during long work (a backfill), else nil.
	Progress *Progress
	// LiveSince is when the source last became live (zero when not live).
	LiveSince time.Time
}

// Progress is a source's long work, such as a backfill: Done of Total
// units at Rate units per second since it began, finishing in about ETA.
type Progress struct {
	Done  uint64
	Total uint64
	Rate  float64
	ETA   time.Duration
}
