package postgres_test

import (
	"testing"

	pgmigrations "github.com/evindex/evindex/migrations/postgres"
)

// TestStepsAreOrdered: every embedded step loads, in version order from 1.
func TestStepsAreOrdered(t *testing.T) {
	if len(pgmigrations.All) == 0 {
		t.Fatal("no migrations embedded")
	}
	for i, m := range pgmigrations.All {
		if m.Version != uint64(i+1) || m.Name == "" || m.SQL == "" {
			t.Errorf("step %d: %+v", i, m.Version)
		}
	}
	if pgmigrations.Latest() != uint64(len(pgmigrations.All)) {
		t.Errorf("Latest() = %d", pgmigrations.Latest())
	}
}
