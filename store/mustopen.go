package store

import (
	"context"
	"testing"
)

// MustOpen opens a store in a fresh temporary directory for a test and
// registers a cleanup that closes it and fails the test if the file does
// not pass Check.
func MustOpen(tb testing.TB) *Store {
	tb.Helper()
	s, err := Open(tb.TempDir(), Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Check(context.Background()); err != nil {
			tb.Errorf("store integrity: %v", err)
		}
		if err := s.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return s
}
