package store

import "errors"

// Errors every backend returns, so callers map them in one place.
var (
	ErrNotFound      = errors.New("not found")
	ErrLocked        = errors.New("database is locked by another process")
	ErrCursorInvalid = errors.New("invalid cursor")
	ErrSchemaTooNew  = errors.New("database schema is newer than this evindex")
	ErrCorrupt       = errors.New("database file is corrupt")
	ErrInvalid       = errors.New("invalid record")
	// ErrLeaseLost: the writer no longer holds the lease its batch carries
	// (another process took the source over); nothing was written.
	ErrLeaseLost = errors.New("lease lost")
	// ErrLeaseHeld: another process holds a live lease on the source.
	ErrLeaseHeld = errors.New("lease held by another owner")
	// ErrClaimLost: an outbox row is gone or claimed by another sender
	// (FinishDelivery); nothing was written.
	ErrClaimLost = errors.New("delivery claim lost")
)
