package store

import (
	"context"
	"time"
)

// Lease is one process's claim to ingest a source on a store that several
// processes share. Generation grows every time the source changes owner;
// a batch carrying the lease (Batch.Lease) commits only while its owner
// still holds that generation, so a writer paused past its expiry cannot
// write after another has taken over (fencing).
type Lease struct {
	Source     string
	Owner      string // the instance name; "" when released
	Generation uint64
	Expires    time.Time // in the database's clock
	// Status is the owner's last report of the source's runtime state,
	// nil before the first. RenewLease stores it with the renewal;
	// AcquireLease starts without one; a released lease keeps its last.
	Status *SourceStatus
}

// Leaser is what a store shared by several processes adds: leases on
// sources, kept in the database with expiry in the database's clock.
// A store without it (bbolt) has a single writer.
type Leaser interface {
	// AcquireLease takes the source's lease for owner for ttl when it is
	// free, released or expired, with a new generation. It returns
	// ErrLeaseHeld, naming the holder, while another owner's lease is live
	// (also when that owner has the same name: a restarted process waits
	// for its former lease to expire or be released).
	AcquireLease(ctx context.Context, source, owner string, ttl time.Duration) (Lease, error)
	// RenewLease extends a held lease to ttl from now and returns it,
	// storing l.Status when it is set (fenced like the renewal). It
	// returns ErrLeaseLost when the source's lease is no longer l's owner
	// and generation (renewing an expired lease nobody took is allowed).
	RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// ReleaseLease gives a held lease up at once, so another process can
	// take the source without waiting for expiry. Releasing a lease that
	// is no longer held is a no-op.
	ReleaseLease(ctx context.Context, l Lease) error
	// Leases lists every source's lease with its last status, by source.
	Leases(ctx context.Context) ([]Lease, error)
}
