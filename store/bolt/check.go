package bolt

import (
	"github.com/evindex/evindex/store"

	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	migrations "github.com/evindex/evindex/migrations/bolt"
)

// checkIndexes verifies that every secondary index entry points at a
// stored record and that the hour totals are the rewards' sums; at most a
// few problems per index are reported.
func checkIndexes(ctx context.Context, tx *bbolt.Tx) []error {
	var errs []error
	check := func(index, primary []byte, pkOf func(k []byte) []byte) {
		pb := tx.Bucket(primary)
		bad := 0
		_ = tx.Bucket(index).ForEach(func(k, _ []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			pk := pkOf(k)
			if pk == nil || pb.Get(pk) == nil {
				bad++
				if bad <= 3 {
					errs = append(errs, fmt.Errorf("%s entry %q points at no %s record", index, k, primary))
				}
			}
			return nil
		})
		if bad > 3 {
			errs = append(errs, fmt.Errorf("%s: %d dangling entries in all", index, bad))
		}
	}
	afterSep := func(k []byte) []byte {
		if i := bytes.IndexByte(k, sep); i >= 0 {
			return k[i+1:]
		}
		return nil
	}
	for _, ix := range [][]byte{migrations.BucketEventsByType, migrations.BucketEventsByCtr, migrations.BucketEventsByAddr} {
		check(ix, migrations.BucketEvents, afterSep)
	}
	// A tx entry names a transaction's events (or, in earlier files, one
	// event): some event must have that key prefix.
	ec := tx.Bucket(migrations.BucketEvents).Cursor()
	check(migrations.BucketEventsByTx, migrations.BucketEvents, func(k []byte) []byte {
		prefix, _, _, ok := parseTxGroup(k)
		if !ok {
			return afterSep(k)
		}
		if ek, _ := ec.Seek(prefix); ek != nil && bytes.HasPrefix(ek, prefix) {
			return ek
		}
		return nil
	})
	check(migrations.BucketRewardsAlias, migrations.BucketRewards, afterSep)
	check(migrations.BucketRewardsHeight, migrations.BucketRewards, func(k []byte) []byte {
		if i := bytes.IndexByte(k, sep); i >= 0 && len(k) > i+9 {
			return k[i+9:]
		}
		return nil
	})
	errs = append(errs, checkHourTotals(ctx, tx)...)
	return append(errs, checkRejectedRecords(tx)...)
}

// checkRejectedRecords verifies that every quarantined record decodes and
// that each source's count of them is right.
func checkRejectedRecords(tx *bbolt.Tx) []error {
	var errs []error
	counts := map[string]uint64{}
	_ = tx.Bucket(migrations.BucketRejected).ForEach(func(k, v []byte) error {
		var r store.Rejected
		if err := decodeRejected(k, v, &r); err != nil {
			if len(errs) < 3 {
				errs = append(errs, err)
			}
			return nil
		}
		counts[r.Source] += r.Records()
		return nil
	})
	_ = tx.Bucket(migrations.BucketSources).ForEach(func(k, v []byte) error {
		var r sourceRecord
		if json.Unmarshal(v, &r) == nil && r.Rejected != counts[string(k)] {
			errs = append(errs, fmt.Errorf("source %s counts %d rejected records, %d are stored", k, r.Rejected, counts[string(k)]))
		}
		return nil
	})
	return errs
}
