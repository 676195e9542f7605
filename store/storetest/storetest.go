// Package storetest holds helpers for tests that need a real store. It
// imports testing, so only _test.go files may import it: that keeps the
// testing package out of the evindex binary.
package storetest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/postgres"
	"github.com/evindex/evindex/store/postgres/pgtest"
)

// MustOpen opens a store in a fresh temporary directory for a test and
// registers a cleanup that closes it and fails the test if the file does
// not pass Check.
func MustOpen(tb testing.TB) *bolt.Store {
	tb.Helper()
	return mustOpenAt(tb, nil)
}

func mustOpenAt(tb testing.TB, now func() time.Time) *bolt.Store {
	tb.Helper()
	s, err := bolt.Open(tb.TempDir(), bolt.Options{Now: now})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	checkAndCloseAtEnd(tb, s)
	return s
}

// checkAndCloseAtEnd checks the store's integrity and closes it when the
// test ends.
func checkAndCloseAtEnd(tb testing.TB, s interface {
	store.Checker
	Close() error
}) {
	tb.Cleanup(func() {
		if err := s.Check(context.Background()); err != nil {
			tb.Errorf("store integrity: %v", err)
		}
		if err := s.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
}

// BackendEnv names the environment variable that picks the backend of
// Open: "postgres" runs the tests that open their store with Open on a
// PostgreSQL database of the shared test server (the package's TestMain
// must call pgtest.Main); anything else on a bbolt file. CI runs the
// httpapi tests both ways.
const BackendEnv = "EVINDEX_TEST_STORE"

// Open opens an empty store of the backend BackendEnv names, checked
// (Check) and closed when the test ends.
func Open(tb testing.TB) store.Store {
	tb.Helper()
	return OpenAt(tb, nil)
}

// OpenAt is Open with the store's clock (the times Apply stamps, such as
// a checkpoint's UpdatedAt) set to now; nil is the real one.
func OpenAt(tb testing.TB, now func() time.Time) store.Store {
	tb.Helper()
	if os.Getenv(BackendEnv) != "postgres" {
		return mustOpenAt(tb, now)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := postgres.Open(ctx, pgtest.DSN(tb), postgres.Options{Now: now})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	checkAndCloseAtEnd(tb, s)
	return s
}
