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
	// StateStandby is a source that another process ingests on a shared
	// store (Owner names it); a standby ingest process takes it over when
	// that owner's lease expires.
	StateStandby SourceState = "standby"
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
	// StalledSince is when the source last made progress (its last
	// commit, or when its upstream's head moved past its checkpoint if
	// that was later), set while the head is ahead of the checkpoint and
	// zero while the checkpoint is at the head. A source whose
	// StalledSince is longer ago than StallThreshold has committed
	// nothing for that long while its upstream had new data: /readyz is
	// 503 and names it (a store write that hangs, an upstream that
	// announces heights but serves none of them).
	StalledSince time.Time
	// StallThreshold is how long a source may commit nothing while its
	// upstream's head is ahead of its checkpoint and still count as
	// ready (0: never reported stalled).
	StallThreshold time.Duration
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
	// Endpoints are the upstream nodes the source reads from and the
	// heights each serves (a chain's nodes of successive networks); nil for a source
	// that does not report them.
	Endpoints []Endpoint
	// Gaps are the height ranges below the checkpoint that no reachable
	// node serves: not indexed, passed over, filled once a node serves
	// them (coverage shows the proven ranges on both sides).
	Gaps []Gap
	// Owner is the instance that holds the source's lease on a shared
	// store and ingests it ("" on the bolt backend and while nobody does).
	Owner string
}

// Endpoint is one upstream node of a source and the heights it serves.
type Endpoint struct {
	Endpoint string // host:port; never a secret
	// Known is false while the node has not said which heights it serves
	// (it did not answer); From and To are then zero.
	Known bool
	// From and To are the heights it serves; To is its sealed head at the
	// last look, which grows on the newest spork's nodes.
	From, To uint64
	// State is EndpointLive, EndpointServing, EndpointBackoff or
	// EndpointUnreachable.
	State string
	// LastError is its last failure ("" when none).
	LastError string
}

// The states of an Endpoint.
const (
	EndpointLive        = "live"        // the node the live stream follows
	EndpointServing     = "serving"     // reachable; used for its heights
	EndpointBackoff     = "backoff"     // failed lately; used again after its backoff
	EndpointUnreachable = "unreachable" // has not said which heights it serves
)

// Gap is a range of heights that is not indexed because no reachable
// upstream node serves it, and why.
type Gap struct {
	From, To uint64
	Reason   string
}

// Progress is a source's long work, such as a backfill: Done of Total
// units at Rate units per second since it began, finishing in about ETA.
type Progress struct {
	Done  uint64
	Total uint64
	Rate  float64
	ETA   time.Duration
}
