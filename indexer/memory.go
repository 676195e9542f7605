package indexer

import (
	"math"
	"runtime/debug"
)

// Ingestion allocates fast and keeps little: decoded messages and batch
// records live until their commit, then die. With Go's default GOGC=100
// the collector runs whenever the heap doubles its small live set, which
// made ingestion GC-bound. A higher GC percent lets the heap grow further
// between collections; the soft memory limit makes the collector run as
// often as it takes to stay under a budget when that growth would exceed
// it, so memory stays bounded however high the percent.
const (
	// DefaultMemoryLimitMB is the soft limit of the Go heap and runtime,
	// in MiB: well under the 256 MB an ingesting process may use in all,
	// which also holds the store's mapped pages.
	DefaultMemoryLimitMB = 128
	// DefaultGCPercent is the heap growth, in percent of the live heap,
	// that triggers a collection below the limit.
	DefaultGCPercent = 400
)

// SetMemoryBudget sets the process's soft memory limit (limitMB MiB; 0:
// none) and GC percent (-1: collect only at the limit), and returns a
// function that restores the previous values.
func SetMemoryBudget(limitMB, gcPercent int) (restore func()) {
	limit := int64(math.MaxInt64)
	if limitMB > 0 {
		limit = int64(limitMB) << 20
	}
	prevLimit := debug.SetMemoryLimit(limit)
	prevPercent := debug.SetGCPercent(gcPercent)
	return func() {
		debug.SetMemoryLimit(prevLimit)
		debug.SetGCPercent(prevPercent)
	}
}
