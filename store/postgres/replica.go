package postgres

import (
	"context"
	"fmt"
	"time"
)

// ReplicaLag is how far the read replica (Options.ReadDSN) trails the
// primary: zero when it has replayed all it received, else the age of the
// last transaction it replayed. ok is false when the store reads the
// primary itself (no ReadDSN). A replica of a primary with no writes for a
// while reports zero, not the idle time: its received and replayed
// positions are equal.
func (s *Store) ReplicaLag(ctx context.Context) (lag time.Duration, ok bool, err error) {
	if s.read == s.db {
		return 0, false, nil
	}
	var recovering bool
	var secs float64
	// PostgreSQL 15: pg_last_wal_receive_lsn and pg_last_wal_replay_lsn
	// are NULL on a primary; pg_last_xact_replay_timestamp is the commit
	// time of the last replayed transaction.
	err = s.read.QueryRow(ctx, `SELECT pg_is_in_recovery(),
		CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
		     ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END`).Scan(&recovering, &secs)
	if err != nil {
		return 0, true, s.redact(fmt.Errorf("replica lag: %w", err))
	}
	if !recovering {
		// read_dsn names a primary (a promoted replica, or a mistake):
		// it trails nothing.
		return 0, true, nil
	}
	return time.Duration(max(secs, 0) * float64(time.Second)), true, nil
}
