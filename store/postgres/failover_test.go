package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/postgres"
	"github.com/evindex/evindex/store/postgres/pgtest"
)

// commitHold is a tracer that holds a store's next fenced Apply right
// after its fence check, with the lease row locked and nothing committed,
// until release is closed: a commit in flight, as long as a test needs.
type commitHold struct {
	armed   atomic.Bool
	held    chan struct{} // closed when an Apply is held
	release chan struct{}
	once    sync.Once
}

// let releases the held Apply; the cleanup of a test that failed while
// holding it calls it too, so the store can close.
func (h *commitHold) let() { h.once.Do(func() { close(h.release) }) }

type heldFence struct{}

func newCommitHold() *commitHold {
	return &commitHold{held: make(chan struct{}), release: make(chan struct{})}
}

func (h *commitHold) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.HasPrefix(d.SQL, "SELECT owner, generation FROM leases") && h.armed.CompareAndSwap(true, false) {
		return context.WithValue(ctx, heldFence{}, true)
	}
	return ctx
}

// TraceQueryEnd runs once the fence's row is read, so its lock is held.
func (h *commitHold) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if ctx.Value(heldFence{}) != nil {
		close(h.held)
		<-h.release
	}
}

// applyHeld starts s.Apply(b) and returns once hold holds it after its
// fence; the channel gets Apply's result after hold.release is closed.
func applyHeld(t *testing.T, s *postgres.Store, hold *commitHold, b store.Batch) <-chan error {
	t.Helper()
	hold.armed.Store(true)
	t.Cleanup(hold.let)
	applied := make(chan error, 1)
	go func() { applied <- s.Apply(ctx, b) }()
	select {
	case <-hold.held:
	case err := <-applied:
		t.Fatalf("the apply ended before its fence was held: %v", err)
	}
	return applied
}

// waitingOnLease reports whether a session other than watch's waits for
// a lock of the lease table.
func waitingOnLease(t *testing.T, watch *pgx.Conn) bool {
	t.Helper()
	var n int
	if err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE wait_event_type = 'Lock' AND query LIKE '%leases%' AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// passes waits until done delivers what a lease call returned while a
// commit is held, and fails the test as soon as that call waits for the
// commit's lock instead.
func passes(t *testing.T, watch *pgx.Conn, what string, done <-chan error) error {
	t.Helper()
	for i := 0; ; i++ {
		select {
		case err := <-done:
			return err
		default:
		}
		if waitingOnLease(t, watch) {
			t.Fatalf("%s waits for the owner's commit in flight", what)
		}
		if i > 4000 {
			t.Fatalf("%s never returned", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTakeoverWaitsForAnInflightCommit: while a former owner's Apply
// holds the lease row (its fence check done, its commit not yet), a
// takeover of the expired lease waits for that commit; the former owner's
// data lands before the new owner starts, never after.
func TestTakeoverWaitsForAnInflightCommit(t *testing.T) {
	hold := newCommitHold()
	s, dsn := openPGWith(t, postgres.Options{Tracer: hold})
	old, err := s.AcquireLease(ctx, "flow", "old", time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	first := flowHeight(1)
	first.Lease = &old
	applied := applyHeld(t, s, hold, first)
	got := make(chan error, 1)
	go func() {
		for {
			_, err := s.AcquireLease(ctx, "flow", "new", time.Minute)
			if !errors.Is(err, store.ErrLeaseHeld) { // held until old's millisecond has passed
				got <- err
				return
			}
		}
	}()
	// The takeover blocks on the row lock.
	watch := connect(t, dsn)
	for i := 0; !waitingOnLease(t, watch); i++ {
		select {
		case err := <-got:
			t.Fatalf("the takeover did not wait for the in-flight commit: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
		if i > 4000 {
			t.Fatal("the takeover never reached the lease row")
		}
	}
	hold.let()
	if err := <-applied; err != nil {
		t.Fatalf("the former owner's commit in flight: %v", err)
	}
	if err := <-got; err != nil {
		t.Fatalf("takeover after the commit: %v", err)
	}
	if cp, _, _ := s.Checkpoint(ctx, "flow"); cp.Height != 1 {
		t.Fatalf("checkpoint %d after the takeover, want the former owner's 1", cp.Height)
	}
	late := flowHeight(2)
	late.Lease = &old
	if err := s.Apply(ctx, late); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("the former owner's next commit: %v, want ErrLeaseLost", err)
	}
}

// TestRenewalPassesTheOwnersCommit: while the owner's Apply holds the
// lease row, the owner still renews its lease, and another process's
// attempt on the live lease answers ErrLeaseHeld, neither waiting for the
// commit. On a loaded server a commit can outlast a third of the TTL: a
// renewal queued behind it let the lease expire under a live owner, and
// every standby attempt queued the owner's next commit behind it.
func TestRenewalPassesTheOwnersCommit(t *testing.T) {
	hold := newCommitHold()
	s, dsn := openPGWith(t, postgres.Options{Tracer: hold})
	l, err := s.AcquireLease(ctx, "flow", "owner", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	first := flowHeight(1)
	first.Lease = &l
	applied := applyHeld(t, s, hold, first)
	watch := connect(t, dsn)

	renewed := make(chan error, 1)
	go func() {
		next, err := s.RenewLease(ctx, l, 2*time.Minute)
		if err == nil && !next.Expires.After(l.Expires) {
			err = fmt.Errorf("renewed until %s, was %s", next.Expires, l.Expires)
		}
		renewed <- err
	}()
	if err := passes(t, watch, "the owner's renewal", renewed); err != nil {
		t.Fatalf("renewal during the owner's commit: %v", err)
	}
	other, err := postgres.Open(ctx, dsn, postgres.Options{Instance: "standby"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tried := make(chan error, 1)
	go func() {
		_, err := other.AcquireLease(ctx, "flow", "standby", time.Minute)
		tried <- err
	}()
	if err := passes(t, watch, "a standby's attempt", tried); !errors.Is(err, store.ErrLeaseHeld) || !strings.Contains(err.Error(), "owner") {
		t.Fatalf("attempt on the live lease during its owner's commit: %v, want ErrLeaseHeld naming the owner", err)
	}

	hold.let()
	if err := <-applied; err != nil {
		t.Fatalf("the owner's commit: %v", err)
	}
	if cp, _, _ := s.Checkpoint(ctx, "flow"); cp.Height != 1 {
		t.Fatalf("checkpoint %d, want 1", cp.Height)
	}
}

// TestCrashKeepsWholeTransactions kills the server (pg_ctl -m immediate)
// while a writer commits heights, restarts it, and finds every
// acknowledged commit, and no commit in part: the checkpoint's height and
// the records agree exactly.
func TestCrashKeepsWholeTransactions(t *testing.T) {
	srv := pgtest.StartOwn(t)
	c := connect(t, srv.DSN("postgres"))
	if _, err := c.Exec(ctx, "CREATE DATABASE evindex"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	s, err := postgres.Open(ctx, srv.DSN("evindex"), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	acked := make(chan uint64, 1000)
	done := make(chan error, 1)
	go func() {
		defer close(acked)
		for h := uint64(1); ; h += 10 {
			var bs []store.Batch
			for i := h; i < h+10; i++ {
				bs = append(bs, flowHeight(i))
			}
			if err := s.Apply(ctx, bs...); err != nil {
				done <- err
				return
			}
			acked <- h + 9
		}
	}()
	var last uint64
	for last < 200 {
		last = <-acked
	}
	kctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := srv.Kill(kctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("Apply went on after the server died")
	}
	for h := range acked {
		last = h
	}
	s.Close()
	if err := srv.Restart(kctx); err != nil {
		t.Fatal(err)
	}
	s, err = postgres.Open(ctx, srv.DSN("evindex"), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cp, found, err := s.Checkpoint(ctx, "flow")
	if err != nil || !found || cp.Height < last {
		t.Fatalf("checkpoint %d (%v, %v) after the crash, the last acknowledged commit was %d", cp.Height, found, err, last)
	}
	info, err := s.Source(ctx, "flow")
	if err != nil {
		t.Fatal(err)
	}
	want := uint64(0)
	for h := uint64(1); h <= cp.Height; h++ {
		want += uint64(len(flowHeight(h).Events))
	}
	p, err := s.Events(ctx, store.EventQuery{FromHeight: u64(cp.Height + 1), Limit: 1})
	if err != nil || len(p.Items) != 0 || info.Events != want || info.Blocks != cp.Height {
		t.Fatalf("after the crash: checkpoint %d, %d events (want %d), %d blocks, events past the checkpoint: %v %v",
			cp.Height, info.Events, want, info.Blocks, p.Items, err)
	}
	if cov, _ := s.Coverage(ctx, "flow"); fmt.Sprint(cov) != fmt.Sprint([]store.Range{{From: 1, To: cp.Height}}) {
		t.Fatalf("coverage %v, want 1..%d", cov, cp.Height)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
