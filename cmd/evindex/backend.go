package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/postgres"
)

// backend is the opened store of `evindex run` with what only some
// backends have.
type backend struct {
	st store.Store
	// where names the store for logs: the file, or the redacted DSN.
	where string
	// leases is set on a store that several processes share.
	leases store.Leaser
	// replicaLag is set when the API reads a streaming replica.
	replicaLag func(ctx context.Context) (time.Duration, bool, error)
}

// openBackend opens the store of store.backend.
func openBackend(ctx context.Context, cfg Config) (*backend, error) {
	if cfg.Store.Backend != BackendPostgres {
		st, err := bolt.Open(cfg.DataDir, bolt.Options{})
		if err != nil {
			if errors.Is(err, store.ErrLocked) {
				return nil, fmt.Errorf("%w (is another evindex running on this data dir?)", err)
			}
			return nil, err
		}
		return &backend{st: st, where: st.Path()}, nil
	}
	pg := cfg.Store.Postgres
	// A database that is down at start is the same as one that goes away
	// later: the error names it and the service manager restarts us.
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	opts := postgres.Options{ReadDSN: pg.ReadDSN}
	if len(cfg.Sources) > 0 {
		// An ingest process's transaction idle for half the TTL, or a
		// statement running for the TTL, is a paused writer's: the server
		// ends it, so its locks (the lease row, the rows it wrote) cannot
		// hold the takeover and the new owner's commits up.
		opts.IdleInTransactionTimeout = max(pg.LeaseTTL/2, 500*time.Millisecond)
		opts.StatementTimeout = pg.LeaseTTL
		// A writer paused in mid-COPY escapes both timeouts: the process
		// that takes its lease over ends its sessions by this name.
		opts.Instance = instanceName(cfg)
	}
	st, err := postgres.Open(octx, pg.DSN, opts)
	if err != nil {
		return nil, err
	}
	b := &backend{st: st, where: postgres.RedactDSN(pg.DSN), leases: st}
	if pg.ReadDSN != "" {
		b.replicaLag = st.ReplicaLag
		b.where += " (reads: " + postgres.RedactDSN(pg.ReadDSN) + ")"
	}
	return b, nil
}

// instanceName is this process's name as a source owner: instance from
// the config, else hostname:pid.
func instanceName(cfg Config) string {
	if cfg.Instance != "" {
		return cfg.Instance
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "evindex"
	}
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}

// leaseBoard keeps the lease table in memory, refreshed every third of
// the lease TTL, so /v1/sources and /readyz show every source's owner
// without a query per request.
type leaseBoard struct {
	leases store.Leaser
	every  time.Duration
	log    zerolog.Logger

	mu   sync.Mutex
	rows map[string]store.Lease
	at   time.Time // when rows were read
}

func (b *leaseBoard) run(ctx context.Context) {
	for {
		b.refresh(ctx)
		if indexer.Sleep(ctx, b.every) != nil {
			return
		}
	}
}

func (b *leaseBoard) refresh(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, b.every)
	defer cancel()
	ls, err := b.leases.Leases(rctx)
	if err != nil {
		if ctx.Err() == nil {
			b.log.Warn().Err(err).Msg("read the lease table")
		}
		return
	}
	rows := make(map[string]store.Lease, len(ls))
	for _, l := range ls {
		rows[l.Source] = l
	}
	b.mu.Lock()
	b.rows, b.at = rows, time.Now()
	b.mu.Unlock()
}

// live returns source's lease when an owner holds it and it has not
// expired. Expiry is the database's clock compared with ours: clocks apart
// by more than the TTL make this view wrong, never the fencing.
func (b *leaseBoard) live(source string) (store.Lease, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.rows[source]
	return l, ok && l.Owner != "" && l.Expires.After(time.Now())
}

// held lists the live leases.
func (b *leaseBoard) held() []store.Lease {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []store.Lease
	now := time.Now()
	for _, l := range b.rows {
		if l.Owner != "" && l.Expires.After(now) {
			out = append(out, l)
		}
	}
	return out
}

// sourceStatuses is what /v1/sources and /readyz show of the sources: each
// configured source's runner, and on a shared store, for a source another
// process ingests (configured here or not), that owner's last report from
// the lease table.
func sourceStatuses(runners []*indexer.Runner, board *leaseBoard) []store.SourceStatus {
	out := make([]store.SourceStatus, 0, len(runners))
	configured := map[string]bool{}
	for _, r := range runners {
		s := r.Status()
		configured[s.Name] = true
		if s.State == store.StateStandby && board != nil {
			if l, ok := board.live(s.Name); ok {
				s = remoteStatus(l, s)
			}
		}
		out = append(out, s)
	}
	if board == nil {
		return out
	}
	// A source another process ingests and this one does not run (an
	// API-only process) shows its owner's report too.
	for _, l := range board.held() {
		if !configured[l.Source] {
			out = append(out, remoteStatus(l, store.SourceStatus{Name: l.Source}))
		}
	}
	return out
}

// remoteStatus is the owner's report of a source held by another process,
// in standby here: its state is the owner's, so a healthy cluster reads
// "live" on every process. local supplies what the owner has not reported
// yet (a lease renewed for the first time a third of the TTL after it was
// taken).
func remoteStatus(l store.Lease, local store.SourceStatus) store.SourceStatus {
	s := local
	if l.Status != nil {
		s = *l.Status
		if local.LagThreshold != 0 {
			s.LagThreshold = local.LagThreshold
		}
		if local.StallThreshold != 0 {
			s.StallThreshold = local.StallThreshold
		}
	} else {
		s.State = store.StateStandby
	}
	s.Owner = l.Owner
	return s
}
