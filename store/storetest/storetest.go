// Package storetest holds helpers for tests that need a real store. It
// imports testing, so only _test.go files may import it: that keeps the
// testing package out of the evindex binary.
package storetest

import (
	"context"
	"testing"

	"github.com/evindex/evindex/store/bolt"
)

// MustOpen opens a store in a fresh temporary directory for a test and
// registers a cleanup that closes it and fails the test if the file does
// not pass Check.
func MustOpen(tb testing.TB) *bolt.Store {
	tb.Helper()
	s, err := bolt.Open(tb.TempDir(), bolt.Options{})
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
