package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/postgres"
	"github.com/evindex/evindex/store/postgres/pgtest"
)

// TestTakeoverWaitsForAnInflightCommit: while a former owner's Apply
// holds the lease row (its fence check done, its commit not yet), a
// takeover of the expired lease waits for that commit; the former owner's
// data lands before the new owner starts, never after.
func TestTakeoverWaitsForAnInflightCommit(t *testing.T) {
	s, dsn := openPG(t)
	old, err := s.AcquireLease(ctx, "flow", "old", time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// The in-flight commit: the same share lock Apply's fence takes.
	c := connect(t, dsn)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM leases WHERE source = 'flow' FOR SHARE`); err != nil {
		t.Fatal(err)
	}
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
	for i := 0; ; i++ {
		var waiting int
		if err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO leases%'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 1 {
			break
		}
		select {
		case err := <-got:
			t.Fatalf("the takeover did not wait for the in-flight commit: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
		if i > 4000 {
			t.Fatal("the takeover never reached the lease row")
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO blocks VALUES ('flow', 1, 'b', 0, 0, '')`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("takeover after the commit: %v", err)
	}
	late := flowHeight(2)
	late.Lease = &old
	if err := s.Apply(ctx, late); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("the former owner's next commit: %v, want ErrLeaseLost", err)
	}
	if _, err := c.Exec(ctx, `DELETE FROM blocks`); err != nil { // leave the counts sound for Check
		t.Fatal(err)
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
