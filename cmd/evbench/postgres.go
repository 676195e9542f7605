package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/indexer/flow"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/postgres"
	"github.com/evindex/evindex/store/postgres/pgtest"
)

// The PostgreSQL columns: the same pre-built batches, the same Flow
// source under the same Runner, the same queries through the same API,
// on a PostgreSQL 15 server of this machine (fsync on, default settings).
// With -pg-dsn evbench uses that server (it creates and drops its own
// databases there); without it, it starts a throwaway one as the tests do
// when the server binaries are installed, and leaves the columns empty
// with a note when they are not.

// pgServer is where the PostgreSQL phases run.
type pgServer struct {
	admin string // a DSN of the server's maintenance database
	stop  func()
}

// startPostgres connects to cfg.PostgresDSN or starts a throwaway server;
// nil (with a note) when neither is possible.
func (b *bench) startPostgres(ctx context.Context) (*pgServer, error) {
	if b.cfg.PostgresDSN != "" {
		return &pgServer{admin: b.cfg.PostgresDSN, stop: func() {}}, nil
	}
	s, err := pgtest.Start(ctx)
	if errors.Is(err, pgtest.ErrNoServer) {
		b.res.note("PostgreSQL not measured: %v, or pass -pg-dsn", err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("start postgresql: %w", err)
	}
	b.progress("postgresql: a throwaway PostgreSQL 15 server on 127.0.0.1:%d", s.Port)
	return &pgServer{admin: s.DSN("postgres"), stop: func() { _ = s.Stop() }}, nil
}

// database makes a fresh, empty database on the server and returns its
// DSN.
func (p *pgServer) database(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, p.admin)
	if err != nil {
		return "", fmt.Errorf("postgresql: %w", err)
	}
	defer conn.Close(context.Background())
	id := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("postgresql: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+id); err != nil {
		return "", fmt.Errorf("postgresql: %w", err)
	}
	u, err := url.Parse(p.admin)
	if err != nil {
		return "", fmt.Errorf("-pg-dsn: want a postgres:// URL")
	}
	u.Path = "/" + name
	return u.String(), nil
}

// databaseBytes is the size of the database at dsn on disk (tables,
// indexes, TOAST and free space map, as pg_database_size counts them).
func databaseBytes(ctx context.Context, dsn string) (int64, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, fmt.Errorf("postgresql: %w", err)
	}
	defer conn.Close(context.Background())
	var n int64
	// A checkpoint first, so the size is of the data, not of what the
	// WAL has yet to write back (pg_database_size does not count WAL).
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return 0, fmt.Errorf("postgresql checkpoint: %w", err)
	}
	err = conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&n)
	return n, err
}

// phasePGStore is the raw store on PostgreSQL: Apply of the pre-built
// groups into an empty database, synchronous commit as in production.
func phasePGStore(ctx context.Context, ph phaseArgs) (phaseResult, error) {
	st, err := postgres.Open(ctx, ph.DSN, postgres.Options{})
	if err != nil {
		return phaseResult{}, err
	}
	defer st.Close()
	return timeApply(ctx, ph.File, st.Apply)
}

// phasePGIngest is the end-to-end path into PostgreSQL: the Flow source
// under the Runner holding the source's lease, as a process of a shared
// deployment does, so every commit is fenced.
func phasePGIngest(ctx context.Context, ph phaseArgs) (phaseResult, error) {
	st, err := postgres.Open(ctx, ph.DSN, postgres.Options{IdleInTransactionTimeout: 5 * time.Second})
	if err != nil {
		return phaseResult{}, err
	}
	defer st.Close()
	lease := &indexer.LeaseConfig{Leases: st, Owner: "evbench", TTL: 10 * time.Second}
	return ingestPhase(ctx, ph, st, lease)
}

// ingestPhase runs the Flow source from height 1 under the Runner on st
// until the checkpoint reaches ph.ToHeight.
func ingestPhase(ctx context.Context, ph phaseArgs, st store.Store, lease *indexer.LeaseConfig) (phaseResult, error) {
	src, err := flow.New(flow.Config{Name: sourceName, Endpoint: ph.Addr, StartHeight: 1})
	if err != nil {
		return phaseResult{}, fmt.Errorf("flow source: %w", err)
	}
	m := indexer.NewMetrics(nil)
	r := indexer.NewRunner(st, src, indexer.RunnerConfig{
		BatchMaxRecords: batchMaxRecords, BatchMaxDelay: batchMaxDelay, Logger: zerolog.Nop(), Metrics: m, Lease: lease})
	events := m.EventsCommitted.WithLabelValues(sourceName)

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- r.Run(rctx) }()
	res, at, err := waitCommitted(ctx, errc, ph.ToHeight, func() (uint64, float64) {
		if cp := r.Status().Checkpoint; cp != nil {
			return cp.Height, counterValue(events)
		}
		return 0, 0
	}, 2*time.Millisecond)
	res.Seconds = at.Sub(start).Seconds()
	cancel()
	if runErr := <-errc; err == nil && runErr != nil {
		err = runErr
	}
	return res, err
}
