package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evindex/evindex/store"
)

// Leases are rows (source, owner, generation, expires_at) changed by
// single statements whose WHERE clause is the whole rule, so two processes
// racing for a source serialize on the row: one wins, the other sees the
// winner. Expiry is the database's now(), never a process's clock. No
// session-bound (advisory) lock is involved: a lease survives reconnects
// and a failover of the connection, and dies only by expiry or release.

// AcquireLease takes the source's lease for owner for ttl when it is free,
// released or expired, bumping its generation. It returns store.ErrLeaseHeld
// (naming the holder and expiry) while another owner's lease is live.
func (s *Store) AcquireLease(ctx context.Context, source, owner string, ttl time.Duration) (store.Lease, error) {
	if owner == "" {
		return store.Lease{}, fmt.Errorf("acquire lease of %s: %w: empty owner", source, store.ErrInvalid)
	}
	if ttl <= 0 {
		return store.Lease{}, fmt.Errorf("acquire lease of %s: %w: ttl %v", source, store.ErrInvalid, ttl)
	}
	l := store.Lease{Source: source, Owner: owner}
	if s.fenceSessions {
		s.endExpiredOwnersSessions(ctx, source, owner)
	}
	var gen int64
	err := s.db.QueryRow(ctx, `INSERT INTO leases AS l (source, owner, generation, expires_at)
		VALUES ($1, $2, 1, now() + $3 * interval '1 microsecond')
		ON CONFLICT (source) DO UPDATE SET owner = excluded.owner, generation = l.generation + 1, expires_at = excluded.expires_at,
			status = NULL
		WHERE l.owner = '' OR l.expires_at <= now()
		RETURNING generation, expires_at`, source, owner, ttl.Microseconds()).Scan(&gen, &l.Expires)
	if errors.Is(err, pgx.ErrNoRows) {
		var holder string
		var until time.Time
		if err := s.db.QueryRow(ctx, `SELECT owner, expires_at FROM leases WHERE source = $1`, source).Scan(&holder, &until); err != nil {
			return store.Lease{}, s.redact(fmt.Errorf("acquire lease of %s: %w", source, err))
		}
		return store.Lease{}, fmt.Errorf("acquire lease of %s: %w: %s holds it until %s", source, store.ErrLeaseHeld, holder, until.UTC().Format(time.RFC3339Nano))
	}
	if err != nil {
		return store.Lease{}, s.redact(fmt.Errorf("acquire lease of %s: %w", source, err))
	}
	l.Generation, l.Expires = uint64(gen), l.Expires.UTC()
	return l, nil
}

// endExpiredOwnersSessions ends the busy sessions of the process whose
// lease of source has expired, when another process (owner) is about to
// take it: a writer paused mid-COPY keeps its lease row locked, and the
// takeover's UPDATE would wait for it for as long as the pause lasts (see
// Options.Instance). Its transaction is aborted, so nothing it was writing
// is stored: it could not have committed under an expired lease anyway.
// Best effort: without the right to signal the other backends, or on an
// engine without pg_terminate_backend, the takeover waits as before.
func (s *Store) endExpiredOwnersSessions(ctx context.Context, source, owner string) {
	var holder string
	var expired bool
	// A plain read does not wait for the row's share locks.
	err := s.db.QueryRow(ctx, `SELECT owner, expires_at <= now() FROM leases WHERE source = $1`, source).Scan(&holder, &expired)
	if err != nil || !expired || holder == "" || holder == owner {
		return
	}
	_, _ = s.db.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1 AND state <> 'idle' AND pid <> pg_backend_pid()`, sessionName(holder))
}

// RenewLease extends a held lease to ttl from now. It returns
// store.ErrLeaseLost when the source's lease has another owner or
// generation now.
func (s *Store) RenewLease(ctx context.Context, l store.Lease, ttl time.Duration) (store.Lease, error) {
	if ttl <= 0 {
		return store.Lease{}, fmt.Errorf("renew lease of %s: %w: ttl %v", l.Source, store.ErrInvalid, ttl)
	}
	var status []byte
	if l.Status != nil {
		var err error
		if status, err = json.Marshal(l.Status); err != nil {
			return store.Lease{}, fmt.Errorf("renew lease of %s: status: %w", l.Source, err)
		}
	}
	err := s.db.QueryRow(ctx, `UPDATE leases SET expires_at = now() + $4 * interval '1 microsecond',
			status = coalesce($5, status)
		WHERE source = $1 AND owner = $2 AND generation = $3 RETURNING expires_at`,
		l.Source, l.Owner, int64(l.Generation), ttl.Microseconds(), status).Scan(&l.Expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Lease{}, fmt.Errorf("renew lease of %s: %w: %s no longer holds generation %d", l.Source, store.ErrLeaseLost, l.Owner, l.Generation)
	}
	if err != nil {
		return store.Lease{}, s.redact(fmt.Errorf("renew lease of %s: %w", l.Source, err))
	}
	l.Expires = l.Expires.UTC()
	return l, nil
}

// ReleaseLease gives a held lease up at once; the generation stays, so
// the next owner's is higher. Releasing a lease no longer held does nothing.
func (s *Store) ReleaseLease(ctx context.Context, l store.Lease) error {
	_, err := s.db.Exec(ctx, `UPDATE leases SET owner = '', expires_at = now()
		WHERE source = $1 AND owner = $2 AND generation = $3`, l.Source, l.Owner, int64(l.Generation))
	if err != nil {
		return s.redact(fmt.Errorf("release lease of %s: %w", l.Source, err))
	}
	return nil
}

// Leases lists every source's lease with its owner's last status, by
// source. A released lease has an empty Owner. It reads the replica when
// the store has one, as the other listings do.
func (s *Store) Leases(ctx context.Context) ([]store.Lease, error) {
	rows, err := s.read.Query(ctx, `SELECT source, owner, generation, expires_at, status FROM leases ORDER BY source`)
	if err != nil {
		return nil, s.redact(fmt.Errorf("list leases: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Lease, error) {
		var l store.Lease
		var gen int64
		var status []byte
		if err := row.Scan(&l.Source, &l.Owner, &gen, &l.Expires, &status); err != nil {
			return l, err
		}
		l.Generation, l.Expires = uint64(gen), l.Expires.UTC()
		if status != nil {
			l.Status = new(store.SourceStatus)
			if err := json.Unmarshal(status, l.Status); err != nil {
				return l, fmt.Errorf("status of %s: %w: %v", l.Source, store.ErrCorrupt, err)
			}
		}
		return l, nil
	})
	if err != nil {
		return nil, s.redact(fmt.Errorf("list leases: %w", err))
	}
	return out, nil
}
