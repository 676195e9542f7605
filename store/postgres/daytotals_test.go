package postgres_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	pgmigrations "github.com/evindex/evindex/migrations/postgres"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/postgres"
	"github.com/evindex/evindex/store/postgres/pgtest"
)

// TestRewardDaysFillAndServe takes a database back to schema 7 (rewards,
// no day totals), opens it so the migration to 8 sums the stored rewards,
// and checks the totals (Check compares them with the rewards) and a
// summary from them; then, with the reward rows deleted behind the
// triggers' back, a summary of whole days still answers from the totals,
// one whose bounds cut a day (which sums the rewards) finds nothing, and
// Check reports the totals that no longer match.
func TestRewardDaysFillAndServe(t *testing.T) {
	dsn := pgtest.DSN(t)
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
	var rs []store.Reward
	for h := uint64(0); h < 48; h++ {
		rs = append(rs, store.Reward{Account: "node1", Kind: "flow_node_reward", ID: "r", Height: h, HasHeight: true,
			Time: day.Add(time.Duration(h) * time.Hour), RawAmount: "100000000000000000000", Unit: "FLOW", Decimals: 8, Aliases: []string{"node1/1"}})
	}
	if err := s.Apply(ctx, store.Batch{Source: "flow", Rewards: rs}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if pgmigrations.Latest() != 8 {
		t.Fatalf("this test undoes migration 8 only; the latest is %d", pgmigrations.Latest())
	}
	c := connect(t, dsn)
	if _, err := c.Exec(ctx, `DROP TRIGGER reward_days_insert ON rewards; DROP TRIGGER reward_days_update ON rewards;
		DROP TRIGGER reward_days_delete ON rewards; DROP FUNCTION reward_days_count(); DROP FUNCTION reward_days_add(reward_day_change[]);
		DROP TYPE reward_day_change; DROP TABLE reward_days; DROP FUNCTION reward_day_names(text, text[]); DROP FUNCTION reward_day(bigint);
		DELETE FROM evindex_schema WHERE version = 8`); err != nil {
		t.Fatal(err)
	}
	s, err = postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Check(ctx); err != nil {
		t.Fatalf("check after the migration filled the totals: %v", err)
	}
	whole := store.SummaryQuery{RewardQuery: store.RewardQuery{Source: "flow", Accounts: []string{"node1/1"},
		FromTime: day, ToTime: day.AddDate(0, 0, 2)}, GroupBy: store.GroupDay}
	cut := whole
	cut.FromTime = day.Add(time.Hour)
	for _, q := range []store.SummaryQuery{whole, cut} {
		rows, err := s.RewardSummary(ctx, q)
		if err != nil || len(rows) != 2 {
			t.Fatalf("summary from %v: %d rows, %v", q.FromTime, len(rows), err)
		}
	}
	if _, err := c.Exec(ctx, `SET session_replication_role = replica; DELETE FROM rewards; SET session_replication_role = origin`); err != nil {
		t.Fatal(err)
	}
	rows, err := s.RewardSummary(ctx, whole)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Count != 24 || rows[0].RawAmount.String() != "2400000000000000000000" || rows[1].Count != 24 {
		t.Fatalf("whole days after the rows went: %+v, want two days of 24 rewards of 10^20 from the totals", rows)
	}
	if rows, err := s.RewardSummary(ctx, cut); err != nil || len(rows) != 0 {
		t.Fatalf("a cut day after the rows went: %+v, %v; want nothing (it sums the rewards)", rows, err)
	}
	err = s.Check(ctx)
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "day totals") {
		t.Fatalf("check: %v, want the day totals that match no reward", err)
	}
}
