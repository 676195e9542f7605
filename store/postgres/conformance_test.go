package postgres_test

import (
	"testing"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

// TestConformance runs the store contract's one conformance suite, the
// same the bbolt backend runs, on PostgreSQL: each test gets an empty
// database of its own, checked (Check) and closed at its end.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := openPG(t)
		return s
	})
}
