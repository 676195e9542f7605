package bolt

import bbolt "go.etcd.io/bbolt"

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
