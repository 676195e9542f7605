package bolt

import (
	bbolt "go.etcd.io/bbolt"

	migrations "github.com/evindex/evindex/migrations/bolt"
)

// HoldRead opens a read transaction and keeps it open until release is
// called: a reader as slow as a test wants.
func HoldRead(s *Store) (release func()) {
	opened, done, closed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(closed)
		_ = s.db.View(func(*bbolt.Tx) error {
			close(opened)
			<-done
			return nil
		})
	}()
	<-opened
	return func() { close(done); <-closed }
}

// OpenReadTxs is the number of read transactions open on s.
func OpenReadTxs(s *Store) int { return s.db.Stats().OpenTxN }

// DropRewardRecords deletes every reward record and nothing else, as no
// Apply would: what is left of them is their indexes and hour totals.
func DropRewardRecords(s *Store) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(migrations.BucketRewards); err != nil {
			return err
		}
		_, err := tx.CreateBucket(migrations.BucketRewards)
		return err
	})
}
