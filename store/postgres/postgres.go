// Package postgres is the PostgreSQL backend of the evindex store: the same
// records, the same single write path Apply and the same keyset-paged
// queries as the bbolt file, on a server that several evindex processes
// share. Ingest processes own sources through leases (lease.go) and every
// Apply is fenced by its lease; API processes may read a streaming replica.
//
// It is tested on PostgreSQL 15 and uses plain SQL only (no extensions).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	pgmigrations "github.com/evindex/evindex/migrations/postgres"
	"github.com/evindex/evindex/store"
)

var (
	_ store.Store   = (*Store)(nil)
	_ store.Checker = (*Store)(nil)
	_ store.Leaser  = (*Store)(nil)
)

// Options configure Open.
type Options struct {
	// ReadDSN, when set, is a streaming replica that the list queries
	// read from. Checkpoint and State always read the primary: a source
	// resumes from what it committed, never from a replica behind it.
	ReadDSN string
	// MaxConns bounds each connection pool. Default 8.
	MaxConns int32
	// Tracer, when set, sees every statement (for example to log slow
	// ones, or to count round trips in tests).
	Tracer pgx.QueryTracer
	// Now is the clock for checkpoint timestamps. Default time.Now.
	// Lease expiry uses the database's clock instead.
	Now func() time.Time
	// IdleInTransactionTimeout, when set, makes the server end a primary
	// session that sits inside a transaction for longer
	// (idle_in_transaction_session_timeout). A fenced Apply holds its
	// lease row for the transaction: a writer paused mid-transaction
	// (SIGSTOP, a partition) would hold it, and so block the takeover,
	// for as long as it stays paused. Set it below the lease TTL.
	IdleInTransactionTimeout time.Duration
	// StatementTimeout, when set, makes the server cancel a primary
	// statement that runs longer (statement_timeout).
	StatementTimeout time.Duration
	// Instance, when set, names this process's primary sessions
	// (application_name "evindex <instance>") and lets AcquireLease end
	// the busy sessions of the expired owner it takes a lease from. A
	// writer paused in the middle of a COPY holds its lease row for as
	// long as it stays paused: the server waits for the rest of the COPY
	// and acts on neither statement_timeout nor
	// idle_in_transaction_session_timeout while it reads from the client,
	// so only ending the session releases the row. Both processes need the
	// right to signal each other's backends (the same role, or
	// pg_signal_backend); without it the takeover waits as before.
	Instance string
}

// Store is an open evindex database on PostgreSQL.
type Store struct {
	db     *pgxpool.Pool // the primary
	read   *pgxpool.Pool // the replica, or db
	now    func() time.Time
	tracer pgx.QueryTracer
	// secrets are the DSNs' passwords, cut from every error.
	secrets []string
	// fenceSessions: AcquireLease ends an expired owner's busy sessions.
	fenceSessions bool
}

// Open connects to the database at dsn (a PostgreSQL URL or key=value
// string), applies pending migrations and returns the store. It returns
// store.ErrSchemaTooNew when the database was migrated by a newer build.
// No error or log line it makes contains the DSN's password.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 8
	}
	s := &Store{now: opts.Now, tracer: opts.Tracer, secrets: passwords(dsn, opts.ReadDSN), fenceSessions: opts.Instance != ""}
	var err error
	if s.db, err = s.connect(ctx, dsn, opts.MaxConns, opts.IdleInTransactionTimeout, opts.StatementTimeout, sessionName(opts.Instance)); err != nil {
		return nil, s.redact(fmt.Errorf("open postgres %s: %w", RedactDSN(dsn), err))
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, s.redact(fmt.Errorf("open postgres %s: %w", RedactDSN(dsn), err))
	}
	s.read = s.db
	if opts.ReadDSN != "" {
		if s.read, err = s.connect(ctx, opts.ReadDSN, opts.MaxConns, 0, 0, ""); err != nil {
			s.db.Close()
			return nil, s.redact(fmt.Errorf("open postgres replica %s: %w", RedactDSN(opts.ReadDSN), err))
		}
		if err := checkVersion(ctx, s.read); err != nil {
			s.Close()
			return nil, s.redact(fmt.Errorf("open postgres replica %s: %w", RedactDSN(opts.ReadDSN), err))
		}
	}
	return s, nil
}

// sessionName is the application_name of an instance's primary sessions,
// cut to the 63 bytes the server keeps; "" when the instance is unnamed.
func sessionName(instance string) string {
	if instance == "" {
		return ""
	}
	name := "evindex " + instance
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

func (s *Store) connect(ctx context.Context, dsn string, maxConns int32, idleInTx, statement time.Duration, appName string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("invalid DSN") // the parser's message may quote the DSN
	}
	cfg.MaxConns = maxConns
	// Every statement here is a page (at most 1001 rows through an index)
	// or one transaction's writes: parallel workers and JIT compilation
	// cost more to start than such a statement takes. A cached generic
	// plan of the address page, costed for an unknown address, started two
	// workers and JIT-compiled for 30 ms what runs in 0.5 ms without
	// (evbench, 2M events).
	cfg.ConnConfig.RuntimeParams["max_parallel_workers_per_gather"] = "0"
	cfg.ConnConfig.RuntimeParams["jit"] = "off"
	if idleInTx > 0 {
		cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = fmt.Sprint(idleInTx.Milliseconds())
	}
	if statement > 0 {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(statement.Milliseconds())
	}
	if appName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = appName
	}
	cfg.ConnConfig.Tracer = s.tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Close closes the connection pools.
func (s *Store) Close() error {
	if s.read != s.db {
		s.read.Close()
	}
	s.db.Close()
	return nil
}

// SchemaVersion is the database's schema version.
func (s *Store) SchemaVersion(ctx context.Context) (uint64, error) {
	v, err := version(ctx, s.db)
	if err != nil {
		return 0, s.redact(fmt.Errorf("schema version: %w", err))
	}
	return v, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func version(ctx context.Context, q querier) (uint64, error) {
	var v int64
	err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM evindex_schema`).Scan(&v)
	return uint64(v), err
}

// checkVersion refuses a database whose schema is not this build's.
func checkVersion(ctx context.Context, q querier) error {
	v, err := version(ctx, q)
	if err != nil {
		return fmt.Errorf("schema version: %w", err)
	}
	switch latest := pgmigrations.Latest(); {
	case v > latest:
		return fmt.Errorf("%w: database is at version %d, this build knows %d", store.ErrSchemaTooNew, v, latest)
	case v < latest:
		return fmt.Errorf("schema version %d is older than %d: migrate the primary first", v, latest)
	}
	return nil
}

// migrate applies the pending steps in one transaction. The schema table's
// lock makes concurrent opens wait for each other, so a step runs once.
func (s *Store) migrate(ctx context.Context) error {
	// CREATE TABLE IF NOT EXISTS can still collide with a concurrent
	// one: the loser retries and finds the table.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if _, err = s.db.Exec(ctx, `CREATE TABLE IF NOT EXISTS evindex_schema (
			version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("schema table: %w", err)
	}
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE evindex_schema IN EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("lock schema: %w", err)
		}
		v, err := version(ctx, tx)
		if err != nil {
			return fmt.Errorf("schema version: %w", err)
		}
		if latest := pgmigrations.Latest(); v > latest {
			return fmt.Errorf("%w: database is at version %d, this build knows %d", store.ErrSchemaTooNew, v, latest)
		}
		for _, m := range pgmigrations.All {
			if m.Version <= v {
				continue
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO evindex_schema (version, name) VALUES ($1, $2)`, int64(m.Version), m.Name); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
			}
		}
		return nil
	})
}

// RedactDSN returns dsn with its password replaced by "xxxxx", for logs
// and status output. A DSN it cannot parse comes back as "(invalid DSN)".
func RedactDSN(dsn string) string {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "(invalid DSN)"
		}
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	fields := strings.Fields(dsn)
	for i, f := range fields {
		if k, _, ok := strings.Cut(f, "="); ok && strings.TrimSpace(k) == "password" {
			fields[i] = "password=xxxxx"
		}
	}
	return strings.Join(fields, " ")
}

// passwords extracts the passwords of the DSNs, so errors can be
// scrubbed of them whatever layer quoted them.
func passwords(dsns ...string) []string {
	var out []string
	for _, dsn := range dsns {
		if dsn == "" {
			continue
		}
		if cfg, err := pgx.ParseConfig(dsn); err == nil && cfg.Password != "" {
			out = append(out, cfg.Password)
			continue
		}
		// Unparseable: scrub what looks like one anyway.
		if u, err := url.Parse(dsn); err == nil {
			if p, ok := u.User.Password(); ok && p != "" {
				out = append(out, p)
			}
		}
		for _, f := range strings.Fields(dsn) {
			if k, v, ok := strings.Cut(f, "="); ok && k == "password" && v != "" {
				out = append(out, strings.Trim(v, "'"))
			}
		}
	}
	return out
}

// redactedError is an error whose message had the passwords cut out; it
// still unwraps to the original, so errors.Is keeps working.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact cuts the DSNs' passwords out of err's message.
func (s *Store) redact(err error) error {
	if err == nil || len(s.secrets) == 0 {
		return err
	}
	msg := err.Error()
	clean := msg
	for _, p := range s.secrets {
		clean = strings.ReplaceAll(clean, p, "xxxxx")
	}
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}
