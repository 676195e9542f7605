package postgres_test

import (
	"testing"

	pgmigrations "github.com/evindex/evindex/migrations/postgres"
	"github.com/evindex/evindex/store/postgres"
	"github.com/evindex/evindex/store/postgres/pgtest"
	"github.com/evindex/evindex/store/storetest"
)

// TestRewardTotalsFillAndServe takes a database back to schema 7 (rewards,
// no totals), opens it so the migrations to 8 (day totals) and 9 (hour
// totals instead) sum the stored rewards, and checks the totals (Check
// compares them with the rewards); then, with the reward rows deleted
// behind the triggers' back, summaries of whole hours still answer from
// the totals (storetest.SummaryReadsTotals).
func TestRewardTotalsFillAndServe(t *testing.T) {
	dsn := pgtest.DSN(t)
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, day := storetest.TotalsBatch()
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Migrations run past the highest applied one: undoing 8 and 9
	// undoes the later ones too (10 adds the rejected records' counts).
	if pgmigrations.Latest() != 10 {
		t.Fatalf("this test undoes migrations 8 to 10 only; the latest is %d", pgmigrations.Latest())
	}
	c := connect(t, dsn)
	if _, err := c.Exec(ctx, `DROP TRIGGER reward_hours_insert ON rewards; DROP TRIGGER reward_hours_update ON rewards;
		DROP TRIGGER reward_hours_delete ON rewards; DROP FUNCTION reward_hours_count(); DROP FUNCTION reward_hours_add(reward_hour_change[]);
		DROP TYPE reward_hour_change; DROP TABLE reward_hours; DROP FUNCTION reward_hour_names(text, text[]); DROP FUNCTION reward_hour(bigint);
		ALTER TABLE rejected DROP COLUMN counted, DROP COLUMN last_key;
		DELETE FROM evindex_schema WHERE version IN (8, 9, 10)`); err != nil {
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
	storetest.SummaryReadsTotals(t, s, day, func() error {
		_, err := c.Exec(ctx, `SET session_replication_role = replica; DELETE FROM rewards; SET session_replication_role = origin`)
		return err
	}, "hour totals")
}
