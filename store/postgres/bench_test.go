package postgres_test

import (
	"testing"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/postgres"
	"github.com/evindex/evindex/store/postgres/pgtest"
)

const perTx = 1000

// BenchmarkApply writes transactions of perTx Flow heights: one op is one
// transaction.
func BenchmarkApply(b *testing.B) {
	s, err := postgres.Open(ctx, pgtest.DSN(b), postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchApply(b, s)
}

// BenchmarkApplyBolt is BenchmarkApply on a bbolt file, for comparison
// in the same run.
func BenchmarkApplyBolt(b *testing.B) {
	s, err := bolt.Open(b.TempDir(), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchApply(b, s)
}

// benchApply is the timed loop both benchmarks share, so both backends
// are measured the same way.
func benchApply(b *testing.B, s store.Store) {
	h := uint64(1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bs := make([]store.Batch, perTx)
		for j := range bs {
			bs[j] = flowHeight(h)
			h++
		}
		if err := s.Apply(ctx, bs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*perTx)/b.Elapsed().Seconds(), "heights/s")
}
