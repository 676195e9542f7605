package indexer_test

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/evindex/evindex/indexer"
)

// TestSetMemoryBudget: the runtime takes the budget, and restore gives the
// previous one back (tests and the demo run the daemon in one process).
func TestSetMemoryBudget(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	restore := indexer.SetMemoryBudget(96, 300)
	if got := debug.SetMemoryLimit(-1); got != 96<<20 {
		t.Errorf("memory limit %d, want %d", got, 96<<20)
	}
	if got := debug.SetGCPercent(300); got != 300 {
		t.Errorf("GC percent %d, want 300", got)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("memory limit after restore %d, want %d", got, before)
	}
	restore = indexer.SetMemoryBudget(0, 100)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("limit_mb 0: memory limit %d, want none", got)
	}
	restore()
}
