package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	pgmigrations "github.com/evindex/evindex/migrations/postgres"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/postgres"
	"github.com/evindex/evindex/store/postgres/pgtest"
)

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(ctx) })
	return c
}

// rowVersions lists every stored row's transaction id (xmin), so a test
// can tell whether a write touched rows at all.
func rowVersions(t *testing.T, c *pgx.Conn) []string {
	t.Helper()
	var out []string
	for _, table := range []string{"events", "event_addresses", "blocks", "rewards", "reward_aliases", "coverage", "node_status", "node_latest"} {
		rows, err := c.Query(ctx, "SELECT xmin::text FROM "+table+" ORDER BY 1")
		if err != nil {
			t.Fatal(err)
		}
		vs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, table)
		out = append(out, vs...)
	}
	return out
}

// TestReplayChangesNothing: writing a range again, as a source does after
// a restart, rewrites no record row: same rows, same versions, same counts.
func TestReplayChangesNothing(t *testing.T) {
	s, dsn := openPG(t)
	var batches []store.Batch
	for h := uint64(1); h <= 30; h++ {
		batches = append(batches, flowHeight(h))
	}
	if err := s.Apply(ctx, batches...); err != nil {
		t.Fatal(err)
	}
	c := connect(t, dsn)
	before := rowVersions(t, c)
	info, _ := s.Source(ctx, "flow")
	for range 2 {
		var again []store.Batch
		for h := uint64(1); h <= 30; h++ {
			b := flowHeight(h)
			b.Checkpoint = nil // the checkpoint row is meant to change: it carries updated_at
			again = append(again, b)
		}
		if err := s.Apply(ctx, again...); err != nil {
			t.Fatal(err)
		}
	}
	if after := rowVersions(t, c); !slices.Equal(before, after) {
		for i := range min(len(before), len(after)) {
			if before[i] != after[i] {
				t.Fatalf("a replay rewrote rows: %d row versions before, %d after; row %d differs (%s)", len(before), len(after), i, strings.Join(before[max(0, i-3):i+1], " "))
			}
		}
		t.Fatalf("a replay rewrote rows: %d row versions before, %d after", len(before), len(after))
	}
	if info2, _ := s.Source(ctx, "flow"); info2.Events != info.Events || info2.Events != 30*4+10 || info2.Blocks != 30 {
		t.Fatalf("counts after replay %d events %d blocks, before %d events; want 130 and 30", info2.Events, info2.Blocks, info.Events)
	}
}

// statementCounter counts the statements a store sends.
type statementCounter struct{ n atomic.Int64 }

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestApplyIsSetBased: an Apply of 500 heights (2,500 events, blocks,
// rewards, coverage and a checkpoint) sends no more statements than an
// Apply of one height: records go in bulk, never a statement per row.
func TestApplyIsSetBased(t *testing.T) {
	var counter statementCounter
	s, err := postgres.Open(ctx, pgtest.DSN(t), postgres.Options{Tracer: &counter})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	count := func(from, to uint64) int64 {
		var bs []store.Batch
		for h := from; h <= to; h++ {
			bs = append(bs, flowHeight(h))
		}
		counter.n.Store(0)
		if err := s.Apply(ctx, bs...); err != nil {
			t.Fatal(err)
		}
		return counter.n.Load()
	}
	count(1, 3) // the first Apply per connection makes the staging tables
	one := count(6, 6)
	many := count(100, 599)
	if many > one {
		t.Fatalf("Apply of 500 heights sent %d statements, of one height %d: some statement runs per record", many, one)
	}
	info, _ := s.Source(ctx, "flow")
	if info.Events != 4*504+168 || info.Blocks != 504 {
		t.Fatalf("stored %d events, %d blocks", info.Events, info.Blocks)
	}
}

// TestApplyIsAllOrNothing: when a later batch of a transaction fails in
// the database, the earlier batches' records and checkpoints are not kept.
func TestApplyIsAllOrNothing(t *testing.T) {
	s, _ := openPG(t)
	bad := store.Batch{Source: "pre", Nodes: []store.NodeStatus{{Node: "n", Time: t0, Details: []byte(`{"not json`)}}}
	err := s.Apply(ctx, flowHeight(1), flowHeight(2), bad)
	if err == nil {
		t.Fatal("Apply with malformed node details succeeded")
	}
	if _, found, _ := s.Checkpoint(ctx, "flow"); found {
		t.Fatal("checkpoint of a failed transaction was kept")
	}
	if p, _ := s.Events(ctx, store.EventQuery{}); len(p.Items) != 0 {
		t.Fatalf("%d events of a failed transaction were kept", len(p.Items))
	}
	if srcs, _ := s.Sources(ctx); len(srcs) != 0 {
		t.Fatalf("sources of a failed transaction were kept: %+v", srcs)
	}
	// A batch invalid before the transaction names the field.
	err = s.Apply(ctx, store.Batch{Source: "flow", Events: []store.Event{{Height: 1 << 63, Type: "t"}}})
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "events[0].height") {
		t.Fatalf("height 2^63: %v, want ErrInvalid naming events[0].height", err)
	}
	err = s.Apply(ctx, store.Batch{Source: "flow", Events: []store.Event{{Height: 1, Type: "t\xff"}}})
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "events[0].type") {
		t.Fatalf("invalid UTF-8 type: %v, want ErrInvalid naming events[0].type", err)
	}
}

// TestPagesNeverSkipOrRepeatDuringIngestion pages through the events of
// a source while another goroutine appends heights: every row that was
// there when paging began appears exactly once, in order.
func TestPagesNeverSkipOrRepeatDuringIngestion(t *testing.T) {
	s, _ := openPG(t)
	var first []store.Batch
	for h := uint64(1); h <= 200; h++ {
		first = append(first, flowHeight(h))
	}
	if err := s.Apply(ctx, first...); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	stop := make(chan struct{})
	go func() {
		defer close(done)
		for h := uint64(201); h <= 400; h++ {
			select {
			case <-stop:
				return
			default:
			}
			// Rewrites of old heights too: they must not move rows.
			if err := s.Apply(ctx, flowHeight(h), flowHeight(h-200)); err != nil {
				done <- err
				return
			}
		}
	}()
	for _, q := range []store.EventQuery{{Source: "flow", Limit: 7}, {Address: "f919ee77447b7497", Limit: 5},
		{Types: []string{"A.1654653399040a61.FlowToken.TokensDeposited"}, Limit: 9}} {
		got, _ := walk(t, "events", func(c string) (store.Page[store.Event], error) { q.Cursor = c; return s.Events(ctx, q) })
		seen := map[string]bool{}
		var last string
		for _, e := range got {
			k := fmt.Sprintf("%020d/%010d/%010d", e.Height, e.TxIndex, e.EventIndex)
			if seen[k] {
				t.Fatalf("row %s repeated", k)
			}
			if k < last {
				t.Fatalf("row %s after %s", k, last)
			}
			seen[k], last = true, k
		}
		for h := uint64(1); h <= 200; h++ {
			for _, e := range flowHeight(h).Events {
				k := fmt.Sprintf("%020d/%010d/%010d", e.Height, e.TxIndex, e.EventIndex)
				if matches(q, &e) && !seen[k] {
					t.Fatalf("row %s, stored before paging began, was skipped", k)
				}
			}
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestCursorWorksOnAnotherProcess: a cursor handed out by one store (one
// API process) continues on another store of the same database.
func TestCursorWorksOnAnotherProcess(t *testing.T) {
	a, dsn := openPG(t)
	var bs []store.Batch
	for h := uint64(1); h <= 20; h++ {
		bs = append(bs, flowHeight(h))
	}
	if err := a.Apply(ctx, bs...); err != nil {
		t.Fatal(err)
	}
	b, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p1, err := a.Events(ctx, store.EventQuery{Limit: 10})
	if err != nil || p1.Next == "" {
		t.Fatal(p1.Next, err)
	}
	onA, _ := a.Events(ctx, store.EventQuery{Limit: 10, Cursor: p1.Next})
	onB, err := b.Events(ctx, store.EventQuery{Limit: 10, Cursor: p1.Next})
	if err != nil || len(onB.Items) != 10 || fmt.Sprint(onA) != fmt.Sprint(onB) {
		t.Fatalf("page 2 on another process: %v, %d items", err, len(onB.Items))
	}
	for name, c := range map[string]string{"garbage": "!!", "other list": "YmxhaA", "short key": "ZQA"} {
		if _, err := b.Events(ctx, store.EventQuery{Cursor: c}); !errors.Is(err, store.ErrCursorInvalid) {
			t.Errorf("%s cursor: %v, want ErrCursorInvalid", name, err)
		}
	}
	if _, err := b.Blocks(ctx, store.BlockQuery{Cursor: p1.Next}); !errors.Is(err, store.ErrCursorInvalid) {
		t.Errorf("an events cursor on blocks: %v, want ErrCursorInvalid", err)
	}
}

// TestSchema: migrations run once at open, also when two processes open
// a new database at the same time; a database of a newer build is refused.
func TestSchema(t *testing.T) {
	dsn := pgtest.DSN(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(ctx, dsn, postgres.Options{})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != pgmigrations.Latest() {
		t.Fatalf("schema version %d (%v), want %d", v, err, pgmigrations.Latest())
	}
	s.Close()
	c := connect(t, dsn)
	var steps int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM evindex_schema").Scan(&steps); err != nil || steps != len(pgmigrations.All) {
		t.Fatalf("%d schema rows (%v), want %d", steps, err, len(pgmigrations.All))
	}
	if _, err := c.Exec(ctx, "INSERT INTO evindex_schema (version, name) VALUES ($1, 'from the future')", int64(pgmigrations.Latest()+1)); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(ctx, dsn, postgres.Options{})
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("version %d", pgmigrations.Latest()+1)) {
		t.Errorf("the error does not say the version: %v", err)
	}
}

// TestPasswordNeverInErrors: connection failures and malformed DSNs give
// errors without the password; RedactDSN hides it for logs.
func TestPasswordNeverInErrors(t *testing.T) {
	const pw = "Sup3r-s3cret"
	srv := pgtest.Shared(t)
	dead := srv.Port + 1 // nobody listens there (or it refuses us)
	for name, dsn := range map[string]string{
		"url, dead port":       fmt.Sprintf("postgres://evindex:%s@127.0.0.1:%d/x?sslmode=disable&connect_timeout=2", pw, dead),
		"key=value, dead port": fmt.Sprintf("host=127.0.0.1 port=%d user=evindex password=%s dbname=x sslmode=disable connect_timeout=2", dead, pw),
		"malformed url":        fmt.Sprintf("postgres://evindex:%s@127.0.0.1:notaport/x", pw),
		"unknown parameter":    fmt.Sprintf("postgres://evindex:%s@127.0.0.1:%d/x?sslmode=bogus", pw, srv.Port),
		"no such database":     fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/does_not_exist?sslmode=disable", pw, srv.Port),
	} {
		_, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err == nil {
			t.Errorf("%s: open succeeded", name)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
		if got := postgres.RedactDSN(dsn); strings.Contains(got, pw) {
			t.Errorf("%s: RedactDSN kept the password: %s", name, got)
		}
	}
	// The shared server trusts every local connection, so a password is
	// accepted and ignored: a working store's errors are scrubbed too.
	good := strings.Replace(pgtest.DSN(t), "postgres@", "postgres:"+pw+"@", 1)
	s, err := postgres.Open(ctx, good, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Events(ctx, store.EventQuery{}); err == nil || strings.Contains(err.Error(), pw) {
		t.Errorf("query on a closed store: %v", err)
	}
}

// TestSummaryEqualsRowsInEveryZone: rewards at odd times; in each zone
// and grouping the buckets' sums and counts add up to the rows exactly,
// and every reward lies in its bucket.
func TestSummaryEqualsRowsInEveryZone(t *testing.T) {
	s, _ := openPG(t)
	var rs []store.Reward
	want := new(big.Int)
	for i := 0; i < 500; i++ {
		r := smReward(uint64(i), "s1", "sm1a", fmt.Sprintf("%d99999999999999999", i+1))
		r.Time = t0.Add(time.Duration(i) * 17 * time.Hour / 3)
		v, _ := new(big.Int).SetString(r.RawAmount, 10)
		want.Add(want, v)
		rs = append(rs, r)
	}
	if err := s.Apply(ctx, store.Batch{Source: "sm", Rewards: rs,
		Epochs: &store.Epochs{Genesis: t0, BlockDuration: 5 * time.Minute, BlocksPerEpoch: 288}}); err != nil {
		t.Fatal(err)
	}
	for _, zone := range []string{"UTC", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe", "Pacific/Chatham"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatalf("zone %s: %v", zone, err)
		}
		for _, g := range []string{store.GroupDay, store.GroupWeek, store.GroupMonth, store.GroupEpoch} {
			rows, err := s.RewardSummary(ctx, store.SummaryQuery{GroupBy: g, Location: loc})
			if err != nil {
				t.Fatal(err)
			}
			got, n := new(big.Int), uint64(0)
			for _, row := range rows {
				got.Add(got, row.RawAmount)
				n += row.Count
			}
			if got.Cmp(want) != 0 || n != 500 {
				t.Fatalf("%s %s: summary %s over %d rows, want %s over 500", zone, g, got, n, want)
			}
			if g == store.GroupEpoch {
				continue
			}
			for _, r := range rs {
				start, _ := store.BucketOf(r.Time.In(loc), g)
				if !slices.ContainsFunc(rows, func(row store.SummaryRow) bool { return row.BucketStart.Equal(start) }) {
					t.Fatalf("%s %s: no bucket %v for a reward at %v", zone, g, start, r.Time)
				}
			}
		}
	}
}

// TestReplicaReadsMatchPrimary: a store reading a streaming replica
// answers like the primary once the replica has caught up, while
// checkpoints are read from the primary at once.
func TestReplicaReadsMatchPrimary(t *testing.T) {
	srv := pgtest.Shared(t)
	dsn := pgtest.DSN(t)
	primary, err := postgres.Open(ctx, dsn, postgres.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	replica, err := srv.Replica(rctx)
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Stop()
	onReplica := strings.Replace(dsn, fmt.Sprintf(":%d/", srv.Port), fmt.Sprintf(":%d/", replica.Port), 1)
	api, err := postgres.Open(ctx, dsn, postgres.Options{ReadDSN: onReplica, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	for _, step := range history() {
		if err := primary.Apply(ctx, step...); err != nil {
			t.Fatal(err)
		}
		if cp, found, err := api.Checkpoint(ctx, step[len(step)-1].Source); err != nil || (step[len(step)-1].Checkpoint != nil && !found) {
			t.Fatalf("checkpoint through the replica store: %v %v %v", cp, found, err)
		}
	}
	if err := srv.WaitReplay(rctx, replica); err != nil {
		t.Fatal(err)
	}
	compare(t, primary, api)
	if err := api.Apply(ctx, flowHeight(99)); err != nil {
		t.Fatalf("a store with a replica writes to the primary: %v", err)
	}
}

// TestLeases: one owner at a time; renew and release; an expired lease is
// taken with a new generation; the same owner name does not take a live
// lease back.
func TestLeases(t *testing.T) {
	s, _ := openPG(t)
	a, err := s.AcquireLease(ctx, "flow", "host-a:1", time.Minute)
	if err != nil || a.Generation != 1 || a.Owner != "host-a:1" || !a.Expires.After(time.Now().Add(50*time.Second)) {
		t.Fatalf("first acquire: %+v %v", a, err)
	}
	for _, owner := range []string{"host-b:2", "host-a:1"} {
		if _, err := s.AcquireLease(ctx, "flow", owner, time.Minute); !errors.Is(err, store.ErrLeaseHeld) || !strings.Contains(err.Error(), "host-a:1") {
			t.Fatalf("acquire of a live lease by %s: %v, want ErrLeaseHeld naming host-a:1", owner, err)
		}
	}
	if _, err := s.AcquireLease(ctx, "sm", "host-b:2", time.Minute); err != nil {
		t.Fatalf("another source is free: %v", err)
	}
	a.Status = &store.SourceStatus{Name: "flow", Kind: "flow", State: store.StateLive, HeadHeight: 120350, Lag: 5,
		Checkpoint: &store.Checkpoint{Height: 120345, Time: t0}, LastError: "stream reset", Progress: &store.Progress{Done: 1, Total: 9, ETA: time.Second}}
	renewed, err := s.RenewLease(ctx, a, 2*time.Minute)
	if err != nil || !renewed.Expires.After(a.Expires) || renewed.Generation != a.Generation {
		t.Fatalf("renew: %+v %v", renewed, err)
	}
	renewed.Status = nil // a renewal without a report keeps the last one
	if renewed, err = s.RenewLease(ctx, renewed, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if ls, err := s.Leases(ctx); err != nil || len(ls) != 2 || !reflect.DeepEqual(ls[0].Status, a.Status) || ls[1].Status != nil {
		t.Fatalf("leases with status: %+v %v, want flow's status %+v", ls, err, a.Status)
	}
	if err := s.ReleaseLease(ctx, renewed); err != nil {
		t.Fatal(err)
	}
	b, err := s.AcquireLease(ctx, "flow", "host-b:2", time.Millisecond)
	if err != nil || b.Generation != 2 {
		t.Fatalf("acquire after release: %+v %v, want generation 2", b, err)
	}
	if _, err := s.RenewLease(ctx, a, time.Minute); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("renew by the former owner: %v, want ErrLeaseLost", err)
	}
	// b's lease expires (in the database's clock): c takes it over.
	var c store.Lease
	for i := 0; ; i++ {
		c, err = s.AcquireLease(ctx, "flow", "host-c:3", time.Minute)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrLeaseHeld) || i > 1000 {
			t.Fatalf("acquire of an expired lease: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if c.Generation != 3 {
		t.Fatalf("takeover generation %d, want 3", c.Generation)
	}
	if err := s.ReleaseLease(ctx, b); err != nil { // no longer b's: nothing happens
		t.Fatal(err)
	}
	ls, err := s.Leases(ctx)
	if err != nil || len(ls) != 2 || ls[0].Source != "flow" || ls[0].Owner != "host-c:3" || ls[1].Owner != "host-b:2" {
		t.Fatalf("leases %+v %v", ls, err)
	}
	if ls[0].Status != nil {
		t.Fatalf("a new owner starts without the former owner's status: %+v", ls[0].Status)
	}
}

// TestFencedApply: a writer whose lease was taken over cannot commit,
// even though its lease row still exists: its batch fails with
// ErrLeaseLost and writes nothing; the new owner's batches commit.
func TestFencedApply(t *testing.T) {
	s, _ := openPG(t)
	old, err := s.AcquireLease(ctx, "flow", "old", time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	b := flowHeight(1)
	b.Lease = &old
	if err := s.Apply(ctx, b); err != nil {
		t.Fatalf("apply under a held lease: %v", err)
	}
	var cur store.Lease
	for i := 0; ; i++ { // old pauses past its lease; new takes over
		if cur, err = s.AcquireLease(ctx, "flow", "new", time.Minute); err == nil {
			break
		}
		if i > 1000 {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	late := flowHeight(2)
	late.Lease = &old
	err = s.Apply(ctx, late)
	if !errors.Is(err, store.ErrLeaseLost) || !strings.Contains(err.Error(), `"new"`) {
		t.Fatalf("apply by the former owner: %v, want ErrLeaseLost naming the new owner", err)
	}
	if cp, _, _ := s.Checkpoint(ctx, "flow"); cp.Height != 1 {
		t.Fatalf("checkpoint %d after a fenced apply, want 1", cp.Height)
	}
	if p, _ := s.Blocks(ctx, store.BlockQuery{}); len(p.Items) != 1 {
		t.Fatalf("%d blocks after a fenced apply, want 1", len(p.Items))
	}
	// A lease on a source without any lease row fences as well.
	stray := store.Batch{Source: "sm", Lease: &store.Lease{Owner: "old", Generation: 1}}
	if err := s.Apply(ctx, stray); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("apply with a lease nobody granted: %v", err)
	}
	next := flowHeight(2)
	next.Lease = &cur
	if err := s.Apply(ctx, next); err != nil {
		t.Fatalf("apply by the new owner: %v", err)
	}
	if cp, _, _ := s.Checkpoint(ctx, "flow"); cp.Height != 2 {
		t.Fatalf("checkpoint %d, want 2", cp.Height)
	}
}

// matches is the part of an EventQuery's filter the ingestion test uses.
func matches(q store.EventQuery, e *store.Event) bool {
	return (q.Source == "" || e.Source == "flow") &&
		(q.Address == "" || slices.Contains(e.Addresses, q.Address)) &&
		(len(q.Types) == 0 || slices.Contains(q.Types, e.Type))
}

// TestMigratesAnOlderSchema: a database left at version 1 by an earlier
// build is brought to the latest version at open, keeping its rows.
func TestMigratesAnOlderSchema(t *testing.T) {
	dsn := pgtest.DSN(t)
	c := connect(t, dsn)
	_, err := c.Exec(ctx, `CREATE TABLE evindex_schema (version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
		`+pgmigrations.All[0].SQL+`; INSERT INTO evindex_schema (version, name) VALUES (1, 'init');
		INSERT INTO leases VALUES ('flow', 'old-host:1', 4, now() - interval '1 hour')`)
	if err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, _ := s.SchemaVersion(ctx); v != pgmigrations.Latest() {
		t.Fatalf("version %d after open, want %d", v, pgmigrations.Latest())
	}
	l, err := s.AcquireLease(ctx, "flow", "new-host:2", time.Minute)
	if err != nil || l.Generation != 5 {
		t.Fatalf("takeover of the kept lease: %+v %v, want generation 5", l, err)
	}
}

// TestCheckFindsBrokenInvariants: Check passes on what Apply wrote and
// names each invariant a damaged database breaks.
func TestCheckFindsBrokenInvariants(t *testing.T) {
	s, dsn := openPG(t)
	var bs []store.Batch
	for h := uint64(1); h <= 12; h++ {
		bs = append(bs, flowHeight(h))
	}
	if err := s.Apply(ctx, bs...); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("check of a sound database: %v", err)
	}
	c := connect(t, dsn)
	if _, err := c.Exec(ctx, `UPDATE sources SET events = events + 1; DELETE FROM event_addresses WHERE height = 3;
		INSERT INTO coverage VALUES ('flow', 13, 20)`); err != nil {
		t.Fatal(err)
	}
	err := s.Check(ctx)
	if !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("check of a damaged database: %v, want ErrCorrupt", err)
	}
	for _, want := range []string{"event count", "without an address row", "overlapping or touching"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("check does not report %q: %v", want, err)
		}
	}
	// Leave it sound for the cleanup's check.
	if _, err := c.Exec(ctx, `UPDATE sources SET events = events - 1; DELETE FROM coverage WHERE from_height = 13;
		INSERT INTO event_addresses SELECT DISTINCT a, source, height, tx_index, event_index FROM events, unnest(addresses) a WHERE height = 3 AND a <> ''`); err != nil {
		t.Fatal(err)
	}
}
