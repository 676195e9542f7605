package bolt_test

import (
	"testing"

	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/storetest"
)

// TestSummaryReadsHourTotals: with the reward records gone behind the
// store's back, summaries of whole hours still answer from the hour
// totals (storetest.SummaryReadsTotals).
func TestSummaryReadsHourTotals(t *testing.T) {
	s, err := bolt.Open(t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, day := storetest.TotalsBatch()
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	storetest.SummaryReadsTotals(t, s, day, func() error { return bolt.DropRewardRecords(s) }, "reward_hours entry")
}
