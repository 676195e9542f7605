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

// Leases are rows (source, owner, generation, expires_at). Expiry is the
// database's now(), never a process's clock. No session-bound (advisory)
// lock is involved: a lease survives reconnects and a failover of the
// connection, and dies only by expiry or release.
//
// Row locks keep a takeover and a former owner's commit apart without
// making the owner's own work wait on itself. Apply's fence holds the row
// FOR KEY SHARE until its commit; a takeover takes it FOR UPDATE, the one
// mode that conflicts with that, so it waits for a commit in flight and
// the former owner's data lands before the new generation or not at all.
// Renewal and release update only non-key columns (FOR NO KEY UPDATE,
// which KEY SHARE lets through): an owner's renewal does not wait for its
// own commits, so a slow commit on a loaded server cannot starve the
// lease it is fenced by. A release may pass a commit of the same owner in
// flight; that commit then lands before any new owner, which still waits
// for it. A standby process's attempt on a live lease reads without
// locking, so its retries do not queue the owner's commits behind them.

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
	// A plain read does not wait for the row's locks.
	cur, found, err := readLease(ctx, s.db, source, "")
	if err != nil {
		return store.Lease{}, s.redact(fmt.Errorf("acquire lease of %s: %w", source, err))
	}
	if found && cur.live {
		return store.Lease{}, cur.held(source)
	}
	if found && s.fenceSessions && cur.owner != "" && cur.owner != owner {
		s.endExpiredOwnersSessions(ctx, cur.owner)
	}
	var l store.Lease
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		l, err = takeLease(ctx, tx, source, owner, ttl)
		return err
	})
	if errors.Is(err, store.ErrLeaseHeld) {
		return store.Lease{}, err
	}
	if err != nil {
		return store.Lease{}, s.redact(fmt.Errorf("acquire lease of %s: %w", source, err))
	}
	return l, nil
}

// leaseRow is what a takeover needs to know of a lease row.
type leaseRow struct {
	owner string
	until time.Time
	live  bool // held and not expired, by the database's clock
}

func (r leaseRow) held(source string) error {
	return fmt.Errorf("acquire lease of %s: %w: %s holds it until %s", source, store.ErrLeaseHeld, r.owner, r.until.UTC().Format(time.RFC3339Nano))
}

// readLease reads source's lease row; lock is "" or a locking clause.
func readLease(ctx context.Context, q querier, source, lock string) (leaseRow, bool, error) {
	var r leaseRow
	err := q.QueryRow(ctx, `SELECT owner, expires_at, owner <> '' AND expires_at > now() FROM leases WHERE source = $1 `+lock, source).
		Scan(&r.owner, &r.until, &r.live)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false, nil
	}
	return r, err == nil, err
}

// takeLease gives source's lease to owner inside tx unless it is live. The
// row is locked FOR UPDATE first, which waits for a commit of the former
// owner in flight (see the top of this file); a row that does not exist
// yet is inserted, and one that another process inserted meanwhile is
// that process's live lease.
func takeLease(ctx context.Context, tx pgx.Tx, source, owner string, ttl time.Duration) (store.Lease, error) {
	l := store.Lease{Source: source, Owner: owner}
	var gen int64
	cur, found, err := readLease(ctx, tx, source, "FOR UPDATE")
	switch {
	case err != nil:
		return l, err
	case found && cur.live:
		return l, cur.held(source)
	case found:
		err = tx.QueryRow(ctx, `UPDATE leases SET owner = $2, generation = generation + 1,
				expires_at = now() + $3 * interval '1 microsecond', status = NULL
			WHERE source = $1 RETURNING generation, expires_at`, source, owner, ttl.Microseconds()).Scan(&gen, &l.Expires)
	default:
		err = tx.QueryRow(ctx, `INSERT INTO leases (source, owner, generation, expires_at)
			VALUES ($1, $2, 1, now() + $3 * interval '1 microsecond')
			ON CONFLICT (source) DO NOTHING RETURNING generation, expires_at`, source, owner, ttl.Microseconds()).Scan(&gen, &l.Expires)
		if errors.Is(err, pgx.ErrNoRows) {
			// Another process created the row since the read: its lease
			// is new, so live (read it again for the message).
			if cur, found, err = readLease(ctx, tx, source, ""); err == nil && !found {
				err = errors.New("lease row vanished")
			}
			if err != nil {
				return l, err
			}
			return l, cur.held(source)
		}
	}
	if err != nil {
		return l, err
	}
	l.Generation, l.Expires = uint64(gen), l.Expires.UTC()
	return l, nil
}

// endExpiredOwnersSessions ends the busy sessions of holder, whose lease
// has expired, when another process is about to take it: a writer paused
// mid-COPY keeps its lease row locked, and the takeover would wait for it
// for as long as the pause lasts (see Options.Instance). Its transaction
// is aborted, so nothing it was writing is stored: it could not have
// committed under an expired lease anyway. Best effort: without the right
// to signal the other backends, or on an engine without
// pg_terminate_backend, the takeover waits as before.
func (s *Store) endExpiredOwnersSessions(ctx context.Context, holder string) {
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
