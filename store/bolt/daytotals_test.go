package bolt_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
)

// TestSummaryReadsDayTotals shows where a summary's rows come from: with
// the reward records gone behind the store's back, a summary of whole
// days still answers from the day totals, one whose bounds cut a day
// (which sums the rewards) finds nothing, and Check reports the totals
// that no longer match the rewards.
func TestSummaryReadsDayTotals(t *testing.T) {
	s, err := bolt.Open(t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	day := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
	var rs []store.Reward
	for h := uint64(0); h < 48; h++ {
		rs = append(rs, store.Reward{Account: "node1", Kind: "flow_node_reward", ID: "r", Height: h, HasHeight: true,
			Time: day.Add(time.Duration(h) * time.Hour), RawAmount: "100", Unit: "FLOW", Decimals: 8, Aliases: []string{"node1/1"}})
	}
	if err := s.Apply(ctx, store.Batch{Source: "flow", Rewards: rs}); err != nil {
		t.Fatal(err)
	}
	whole := store.SummaryQuery{RewardQuery: store.RewardQuery{Source: "flow", Accounts: []string{"node1/1"},
		FromTime: day, ToTime: day.AddDate(0, 0, 2)}, GroupBy: store.GroupDay}
	cut := whole
	cut.FromTime = day.Add(time.Hour)
	for _, q := range []store.SummaryQuery{whole, cut} {
		rows, err := s.RewardSummary(ctx, q)
		if err != nil || len(rows) != 2 {
			t.Fatalf("summary from %v before: %d rows, %v", q.FromTime, len(rows), err)
		}
	}
	if err := bolt.DropRewardRecords(s); err != nil {
		t.Fatal(err)
	}
	rows, err := s.RewardSummary(ctx, whole)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Count != 24 || rows[0].RawAmount.String() != "2400" || rows[1].Count != 24 {
		t.Fatalf("whole days after the records went: %+v, want two days of 24 rewards of 100 from the totals", rows)
	}
	if rows, err := s.RewardSummary(ctx, cut); err != nil || len(rows) != 0 {
		t.Fatalf("a cut day after the records went: %+v, %v; want nothing (it sums the rewards)", rows, err)
	}
	err = s.Check(ctx)
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "reward_days entry") {
		t.Fatalf("check: %v, want the day totals that match no reward", err)
	}
}
