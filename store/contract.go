package store

import (
	"context"
	"io"
)

// Store is the contract of a backend: every package but cmd (which opens
// one) reads and writes through it, so the same indexer and API run on
// the embedded bbolt file or a shared database. Every backend gives the
// same answers to the same batches: the same pages and cursors, exact
// sums, the same errors.
type Store interface {
	// Apply writes the batches, in order, in ONE transaction: each batch's
	// records together with the checkpoint, coverage and state they
	// complete. After a crash the store holds all of them or none.
	// Rewriting a record with the same identity replaces it, so replays
	// never duplicate. It returns ErrInvalid (wrapped, naming the record)
	// for a malformed batch, before anything is written, and ErrLeaseLost
	// for a batch whose Lease is no longer held.
	Apply(ctx context.Context, batches ...Batch) error

	// Events returns one page of events matching q, in identity order
	// (source, height, tx index, event index), or reversed with q.Desc. It
	// returns ErrCursorInvalid for a cursor that is not from this list.
	Events(ctx context.Context, q EventQuery) (Page[Event], error)
	// Blocks returns one page of blocks in (source, height) order.
	Blocks(ctx context.Context, q BlockQuery) (Page[Block], error)
	// Block returns one block, or ErrNotFound.
	Block(ctx context.Context, source string, height uint64) (Block, error)
	// Rewards returns one page of rewards in (source, account, time)
	// order, or reversed with q.Desc.
	Rewards(ctx context.Context, q RewardQuery) (Page[Reward], error)
	// RewardSummary sums the rewards q selects per time bucket, source,
	// account and unit, in integer base units: the sum of the rows equals
	// the sum of the rewards exactly. It returns ErrInvalid for an unknown
	// grouping, or group_by=epoch on a source without epochs.
	RewardSummary(ctx context.Context, q SummaryQuery) ([]SummaryRow, error)
	// Nodes returns the latest snapshot of every node of source (of every
	// source when source is empty), ordered by source and node.
	Nodes(ctx context.Context, source string) ([]NodeStatus, error)
	// NodeHistory returns one page of a node's snapshots in time order.
	NodeHistory(ctx context.Context, q NodeHistoryQuery) (Page[NodeStatus], error)
	// Rejected returns one page of quarantined records in (source,
	// height, key) order, or reversed with q.Desc.
	Rejected(ctx context.Context, q RejectedQuery) (Page[Rejected], error)

	// Sources returns every source that has written to the store, by name.
	Sources(ctx context.Context) ([]SourceInfo, error)
	// Source returns one source's bookkeeping, or ErrNotFound.
	Source(ctx context.Context, name string) (SourceInfo, error)
	// Checkpoint returns the source's checkpoint; found is false before
	// its first commit.
	Checkpoint(ctx context.Context, source string) (cp Checkpoint, found bool, err error)
	// Coverage returns the source's proven-scanned height ranges,
	// ascending and disjoint.
	Coverage(ctx context.Context, source string) ([]Range, error)
	// State returns a source-private value written through Batch.State,
	// or nil.
	State(ctx context.Context, source, key string) ([]byte, error)

	// Announcements are what nodes announced about their accounts'
	// rewards, from which MissedRewards derives the misses.
	Announcements

	// AlertStore keeps alerts and the webhook outbox.
	AlertStore

	// Close releases the store. Pending reads finish first.
	Close() error
}

// Backuper is a store that can write a consistent copy of itself while
// writers continue (the bbolt file). A shared database is backed up with
// its own tools instead.
type Backuper interface {
	// Backup writes the copy to w and returns the bytes written.
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// Checker is a store that can verify its own structure.
type Checker interface {
	// Check returns every problem found, joined and wrapping ErrCorrupt,
	// or nil when the store is sound.
	Check(ctx context.Context) error
}
