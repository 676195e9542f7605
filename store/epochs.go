package store

import "context"

// EpochTotalReader is a store that keeps network payouts per epoch
// (Batch.EpochTotals). It is optional while not every backend has it.
type EpochTotalReader interface {
	// EpochTotals returns the payouts q selects in (source, epoch) order.
	EpochTotals(ctx context.Context, q EpochTotalQuery) ([]EpochTotal, error)
}

// EpochTotalQuery selects network payouts: of Source (every source when
// empty), epochs FromEpoch..ToEpoch inclusive (ToEpoch 0: no bound).
type EpochTotalQuery struct {
	Source             string
	FromEpoch, ToEpoch uint64
}
