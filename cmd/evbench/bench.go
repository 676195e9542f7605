package main

import (
	"bufio"
	"context"
	"encoding/gob"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/entities"
	"github.com/onflow/flow/protobuf/go/flow/executiondata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/postgres"
)

// bench is the state of one run.
type bench struct {
	cfg    Config
	log    io.Writer
	dir    string
	layout chainLayout
	sim    *flowsim.Sim
	res    *Result

	ingestHeight uint64 // the height the ingestion phases stop at
	fillHeight   uint64 // the last height of the query databases

	pg *pgServer // nil: PostgreSQL is not measured
	// pgDSN is the PostgreSQL query database; pgBase is its size when
	// it was empty.
	pgDSN  string
	pgBase int64
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.log, "evbench: "+format+"\n", args...)
}

// Run runs every phase in order and returns the measurements. Progress
// lines go to log.
func Run(ctx context.Context, cfg Config, log io.Writer) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	began := time.Now()
	b := &bench{cfg: cfg, log: log, layout: layoutFor(cfg.Events, cfg.IngestEvents)}
	b.res = newResult(cfg)
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "evbench-")
		if err != nil {
			return nil, fmt.Errorf("work dir: %w", err)
		}
		dir = d
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("work dir: %w", err)
	}
	if !cfg.Keep {
		defer os.RemoveAll(dir)
	}
	b.dir = dir
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o700); err != nil {
			return nil, fmt.Errorf("-profile: %w", err)
		}
		profileDir = cfg.ProfileDir
		stop, err := startProfile(cfg.ProfileDir, "evbench", false)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	b.progress("N=%d events in the query databases, %d through each ingestion path, in %s (%d cores)",
		cfg.Events, cfg.IngestEvents, dir, runtime.NumCPU())
	b.progress("chain: one block every %v of block time, staking rewards every %d blocks (daily)", b.layout.Step, b.layout.RewardEvery)

	sim, err := flowsim.Start(ctx, "127.0.0.1:0", b.layout.simConfig(cfg.Seed))
	if err != nil {
		return nil, fmt.Errorf("start simulated access node: %w", err)
	}
	defer sim.Close()
	b.sim = sim
	// The ingestion phases stream the same heights again and again; with
	// their responses encoded once, flowsim's building them does not
	// share the two cores with what is measured (a real node sends
	// stored data from another machine).
	t := time.Now()
	if err := sim.PrecomputeBlocks(ctx, 1, b.layout.IngestHeights); err != nil {
		return nil, fmt.Errorf("simulated access node: %w", err)
	}
	b.progress("chain: stream responses of heights 1-%d encoded ahead in %.1fs", b.layout.IngestHeights, time.Since(t).Seconds())
	if b.pg, err = b.startPostgres(ctx); err != nil {
		return nil, err
	}
	if b.pg != nil {
		defer b.pg.stop()
	}

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"raw stream", b.rawStream},
		{"pre-built batches", b.capture},
		{"raw store", b.rawStore},
		{"end to end", b.endToEnd},
		{"SQLite peer ingestion", b.sqlitePeer},
		{"PostgreSQL end to end", b.pgEndToEnd},
		{"query databases", b.fill},
		{"queries", b.queries},
		{"resume", b.resume},
		{"backfill", b.backfill},
	}
	for i, s := range steps {
		b.progress("[%d/%d] %s", i+1, len(steps), s.name)
		t := time.Now()
		if err := s.fn(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		b.progress("[%d/%d] %s done in %.1fs", i+1, len(steps), s.name, time.Since(t).Seconds())
	}
	b.res.finish(time.Since(began))
	return b.res, nil
}

func (b *bench) path(name string) string { return filepath.Join(b.dir, name) }

// rawStream is limit (a): the node's event stream over loopback gRPC,
// protobuf-decoded and discarded, from height 1 until IngestEvents
// events have arrived. It fixes the height every ingestion phase stops at.
func (b *bench) rawStream(ctx context.Context) error {
	conn, err := grpc.NewClient(b.sim.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	stream, err := executiondata.NewExecutionDataAPIClient(conn).SubscribeEventsFromStartHeight(ctx,
		&executiondata.SubscribeEventsFromStartHeightRequest{
			StartBlockHeight:     1,
			HeartbeatInterval:    1,
			EventEncodingVersion: entities.EventEncodingVersion_JSON_CDC_V0,
		})
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	var events, payload int64
	var height uint64
	for events < b.cfg.IngestEvents {
		resp, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("stream at height %d: %w", height, err)
		}
		height = resp.GetBlockHeight()
		for _, e := range resp.GetEvents() {
			payload += int64(len(e.GetPayload()))
		}
		events += int64(len(resp.GetEvents()))
	}
	el := time.Since(start).Seconds()
	b.ingestHeight = height
	b.res.IngestEvents = events
	b.res.IngestHeights = height
	b.res.StreamEPS = float64(events) / el
	b.res.PayloadBytesPerEvent = float64(payload) / float64(events)
	b.progress("raw stream: %d events in %d heights in %.2fs: %.0f events/s", events, height, el, b.res.StreamEPS)
	return nil
}

// capture runs the Flow source itself (its decoder, over the same stream)
// into a file of transaction groups, grouped as the Runner groups them, so
// the raw store phases apply exactly the records ingestion writes.
func (b *bench) capture(ctx context.Context) error {
	f, err := os.Create(b.path("batches.gob"))
	if err != nil {
		return fmt.Errorf("batches file: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	enc := gob.NewEncoder(w)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var writing time.Duration
	sink := newGroupSink(func(_ context.Context, group []store.Batch) error {
		t := time.Now()
		defer func() { writing += time.Since(t) }()
		return enc.Encode(group)
	}, cancel)
	sink.stopHeight = b.ingestHeight
	start := time.Now()
	if err := runFlow(ctx, b.sim.Addr(), 1, sink); err != nil {
		return err
	}
	busy := time.Since(start) - writing
	if err := w.Flush(); err != nil {
		return fmt.Errorf("batches file: %w", err)
	}
	events, last := sink.taken()
	if last != b.ingestHeight {
		return fmt.Errorf("captured up to height %d, want %d", last, b.ingestHeight)
	}
	b.res.DecodeEPS = float64(events) / busy.Seconds()
	b.progress("pre-built batches: %d events through height %d; the Flow source alone ran at %.0f events/s", events, last, b.res.DecodeEPS)
	return f.Close()
}

// rawStore is limit (b) and its SQLite counterpart: the pre-built groups
// applied in a child process each, no network.
func (b *bench) rawStore(ctx context.Context) error {
	file := b.path("batches.gob")
	defer os.Remove(file)
	for _, p := range []struct {
		name string
		eps  *float64
		pg   bool
	}{{"store", &b.res.StoreEPS, false}, {"sqlite-store", &b.res.SQLiteStoreEPS, false}, {"pg-store", &b.res.PGStoreEPS, true}} {
		if p.pg && b.pg == nil {
			continue
		}
		dir := b.path("raw-" + p.name)
		var dsn string
		if p.pg {
			var err error
			if dsn, err = b.pg.database(ctx, "evbench_raw"); err != nil {
				return err
			}
		}
		r, err := runChild(ctx, b.log, phaseArgs{Name: p.name, Dir: dir, File: file, DSN: dsn}, nil)
		os.RemoveAll(dir)
		if err != nil {
			return err
		}
		*p.eps = float64(r.Events) / r.Seconds
		b.progress("%s: %d events applied in %.2fs: %.0f events/s", p.name, r.Events, r.Seconds, *p.eps)
	}
	return b.floor(ctx, file)
}

// endToEnd is the node -> Flow source -> Runner -> bbolt path in a child
// process; its database becomes the start of the evindex query database.
func (b *bench) endToEnd(ctx context.Context) error {
	cpu0, t0 := cpuSeconds(), time.Now()
	r, err := runChild(ctx, b.log, phaseArgs{Name: "ingest", Dir: b.path("evindex"), Addr: b.sim.Addr(), ToHeight: b.ingestHeight}, nil)
	if err != nil {
		return err
	}
	b.res.E2ECores = (r.CPUSeconds + cpuSeconds() - cpu0) / time.Since(t0).Seconds()
	b.res.E2EEPS = float64(r.Events) / r.Seconds
	b.res.PeakRSSMB = float64(r.PeakRSSKB) / 1024
	b.res.PeakAnonMB = float64(r.PeakAnonKB) / 1024
	b.progress("end to end: %d events in %.2fs: %.0f events/s, peak RSS %.0f MB", r.Events, r.Seconds, b.res.E2EEPS, b.res.PeakRSSMB)
	dir := b.path("evindex-go-gc")
	r, err = runChild(ctx, b.log, phaseArgs{Name: "ingest-go-gc", Dir: dir, Addr: b.sim.Addr(), ToHeight: b.ingestHeight}, nil)
	os.RemoveAll(dir)
	if err != nil {
		return err
	}
	b.res.E2EGoGCEPS = float64(r.Events) / r.Seconds
	b.res.GoGCPeakRSSMB = float64(r.PeakRSSKB) / 1024
	b.progress("end to end under Go's default GC: %.0f events/s, peak RSS %.0f MB", b.res.E2EGoGCEPS, b.res.GoGCPeakRSSMB)
	return nil
}

// sqlitePeer is the same path into SQLite; its database becomes the start
// of the SQLite query database.
func (b *bench) sqlitePeer(ctx context.Context) error {
	r, err := runChild(ctx, b.log, phaseArgs{Name: "sqlite-ingest", Dir: b.path("sqlite"), Addr: b.sim.Addr(), ToHeight: b.ingestHeight}, nil)
	if err != nil {
		return err
	}
	b.res.SQLiteEPS = float64(r.Events) / r.Seconds
	b.res.SQLitePeakRSSMB = float64(r.PeakRSSKB) / 1024
	b.progress("SQLite end to end: %d events in %.2fs: %.0f events/s, peak RSS %.0f MB", r.Events, r.Seconds, b.res.SQLiteEPS, b.res.SQLitePeakRSSMB)
	return nil
}

// pgEndToEnd is the node -> Flow source -> Runner (under a lease) ->
// PostgreSQL path in a child process, into a database of its own.
func (b *bench) pgEndToEnd(ctx context.Context) error {
	if b.pg == nil {
		return nil
	}
	dsn, err := b.pg.database(ctx, "evbench_e2e")
	if err != nil {
		return err
	}
	r, err := runChild(ctx, b.log, phaseArgs{Name: "pg-ingest", Addr: b.sim.Addr(), ToHeight: b.ingestHeight, DSN: dsn}, nil)
	if err != nil {
		return err
	}
	b.res.PGE2EEPS = float64(r.Events) / r.Seconds
	b.res.PGPeakRSSMB = float64(r.PeakRSSKB) / 1024
	b.progress("PostgreSQL end to end: %d events in %.2fs: %.0f events/s, peak RSS %.0f MB", r.Events, r.Seconds, b.res.PGE2EEPS, b.res.PGPeakRSSMB)
	return nil
}

// fill grows both query databases to N events with the same records: the
// Flow source's own decoder over the node's stream, written straight
// through store.Apply (opened with NoSync, THIS IS ONLY FOR THE BULK FILL)
// and the SQLite writer (synchronous=OFF), in large transactions, in
// parallel. Nothing here is timed.
func (b *bench) fill(ctx context.Context) error {
	st, err := bolt.Open(b.path("evindex"), bolt.Options{NoSync: true})
	if err != nil {
		return err
	}
	defer st.Close()
	sqlPath := filepath.Join(b.path("sqlite"), sqliteFileName)
	db, err := openSQLite(sqlPath, true)
	if err != nil {
		return err
	}
	defer db.Close()
	w, err := newSQLiteWriter(db)
	if err != nil {
		return err
	}
	defer w.Close()

	cp, _, err := st.Checkpoint(ctx, sourceName)
	if err != nil {
		return err
	}
	sqlCP, err := sqliteCheckpoint(db)
	if err != nil {
		return err
	}
	from := min(cp.Height, sqlCP) + 1
	var base int64
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM events WHERE source = ? AND height < ?`, sourceName, from).Scan(&base); err != nil {
		return fmt.Errorf("count sqlite events: %w", err)
	}

	type writer struct {
		name  string
		apply func(context.Context, ...store.Batch) error
		ch    chan []store.Batch
		err   error
	}
	writers := []*writer{{name: "evindex", apply: st.Apply}, {name: "sqlite", apply: w.Apply}}
	var pgst *postgres.Store
	if b.pg != nil {
		// The PostgreSQL query database is filled from height 1 (its
		// end-to-end run went to a database of its own, past the others'
		// height); the other two skip what they hold already.
		if b.pgDSN, err = b.pg.database(ctx, "evbench_query"); err != nil {
			return err
		}
		if b.pgBase, err = databaseBytes(ctx, b.pgDSN); err != nil {
			return err
		}
		if pgst, err = postgres.Open(ctx, b.pgDSN, postgres.Options{}); err != nil {
			return err
		}
		defer pgst.Close()
		boltApply, sqlApply := st.Apply, w.Apply
		writers[0].apply = func(ctx context.Context, g ...store.Batch) error { return boltApply(ctx, above(g, cp.Height)...) }
		writers[1].apply = func(ctx context.Context, g ...store.Batch) error { return sqlApply(ctx, above(g, sqlCP)...) }
		writers = append(writers, &writer{name: "postgresql", apply: pgst.Apply})
		from, base = 1, 0
	}
	var wg sync.WaitGroup
	for _, wr := range writers {
		wr.ch = make(chan []store.Batch, 2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := range wr.ch {
				if wr.err == nil {
					if err := wr.apply(ctx, g...); err != nil {
						wr.err = fmt.Errorf("%s: %w", wr.name, err)
					}
				}
			}
		}()
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lastLog := time.Now()
	sink := newGroupSink(func(ctx context.Context, group []store.Batch) error {
		for _, wr := range writers {
			select {
			case wr.ch <- group:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}, cancel)
	sink.maxRecords = 50_000
	sink.stopEvents = max(b.cfg.Events-base, 1)
	sink.minHeight = max(cp.Height, sqlCP)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if time.Since(lastLog) >= 10*time.Second {
					lastLog = time.Now()
					n, h := sink.taken()
					b.progress("query databases: %d of %d events (height %d)", base+n, b.cfg.Events, h)
				}
			}
		}
	}()
	runErr := runFlow(fctx, b.sim.Addr(), from, sink)
	close(done)
	for _, wr := range writers {
		close(wr.ch)
	}
	wg.Wait()
	if runErr != nil {
		return runErr
	}
	for _, wr := range writers {
		if wr.err != nil {
			return wr.err
		}
	}
	_, b.fillHeight = sink.taken()
	if b.fillHeight == 0 {
		b.fillHeight = max(cp.Height, sqlCP)
	}
	info, err := st.Source(ctx, sourceName)
	if err != nil {
		return err
	}
	var sqlEvents int64
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM events`).Scan(&sqlEvents); err != nil {
		return fmt.Errorf("count sqlite events: %w", err)
	}
	if int64(info.Events) != sqlEvents {
		b.res.note("the query databases differ: evindex holds %d events, SQLite %d", info.Events, sqlEvents)
	}
	b.res.Events = int64(info.Events)
	b.res.Heights = b.fillHeight
	if err := st.Close(); err != nil {
		return err
	}
	fi, err := os.Stat(st.Path())
	if err != nil {
		return fmt.Errorf("database size: %w", err)
	}
	b.res.DBBytesPerEvent = float64(fi.Size()) / float64(info.Events)
	if err := bucketBytes(st.Path(), float64(info.Events), b.res.DBBytesByBucket); err != nil {
		return err
	}
	sqlBytes, err := sqliteFileBytes(db, sqlPath)
	if err != nil {
		return err
	}
	b.res.SQLiteBytesPerEvent = float64(sqlBytes) / float64(sqlEvents)
	if pgst != nil {
		in, err := pgst.Source(ctx, sourceName)
		if err != nil {
			return err
		}
		if in.Events != info.Events {
			b.res.note("the query databases differ: evindex holds %d events, PostgreSQL %d", info.Events, in.Events)
		}
		n, err := databaseBytes(ctx, b.pgDSN)
		if err != nil {
			return err
		}
		b.res.PGBytesPerEvent = float64(n-b.pgBase) / float64(in.Events)
		b.progress("query databases: PostgreSQL %.0f bytes/event", b.res.PGBytesPerEvent)
	}
	b.progress("query databases: %d events through height %d; evindex %.0f bytes/event, SQLite %.0f bytes/event",
		info.Events, b.fillHeight, b.res.DBBytesPerEvent, b.res.SQLiteBytesPerEvent)
	return nil
}

// above keeps the batches of group past height h, for a writer that
// holds everything up to h already.
func above(group []store.Batch, h uint64) []store.Batch {
	out := group[:0:0]
	for _, b := range group {
		top := uint64(0)
		if b.Checkpoint != nil {
			top = b.Checkpoint.Height
		}
		for i := range b.Blocks {
			top = max(top, b.Blocks[i].Height)
		}
		for i := range b.Events {
			top = max(top, b.Events[i].Height)
		}
		if top > h {
			out = append(out, b)
		}
	}
	return out
}

// resume restarts ingestion on the full query database in a new process,
// with new blocks waiting at the node, and times the process from its
// start to the first new event committed.
func (b *bench) resume(ctx context.Context) error {
	if b.sim.SealedHeight() <= b.fillHeight {
		b.sim.Produce(b.fillHeight - b.sim.SealedHeight() + 1000)
	}
	var firstAt time.Duration
	start := time.Now()
	r, err := runChild(ctx, b.log, phaseArgs{Name: "resume", Dir: b.path("evindex"), Addr: b.sim.Addr()}, func(r phaseResult) {
		if r.FirstEvent && firstAt == 0 {
			firstAt = time.Since(start)
		}
	})
	if err != nil {
		return err
	}
	if firstAt == 0 {
		return fmt.Errorf("no first event reported")
	}
	b.res.ResumeMS = float64(firstAt.Microseconds()) / 1000
	b.res.ResumeOpenMS = r.OpenMS
	b.res.ResumePeakRSSMB = float64(r.PeakRSSKB) / 1024
	b.progress("resume: first new event committed %.0f ms after process start (store open %.1f ms)", b.res.ResumeMS, r.OpenMS)
	return nil
}
