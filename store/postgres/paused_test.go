package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/postgres"
)

// blockedRows is a COPY source that hands over nothing until release is
// closed: the client side of a writer paused (SIGSTOP) in mid-COPY.
type blockedRows struct{ release chan struct{} }

func (b blockedRows) Next() bool             { <-b.release; return false }
func (b blockedRows) Values() ([]any, error) { return nil, nil }
func (b blockedRows) Err() error             { return errors.New("released") }

// TestTakeoverEndsAWriterPausedInACopy: a former owner paused in the middle
// of a COPY holds its lease row's lock, and the server acts on
// neither statement_timeout nor idle_in_transaction_session_timeout while
// it waits for COPY data. The process taking the expired lease over ends
// that session (Options.Instance names it), so the takeover does not wait
// for as long as the pause lasts, and the paused transaction stores
// nothing.
func TestTakeoverEndsAWriterPausedInACopy(t *testing.T) {
	s, dsn := openPG(t)
	if _, err := s.AcquireLease(ctx, "flow", "old", time.Millisecond); err != nil {
		t.Fatal(err)
	}

	// The paused writer: a session of instance "old" that took Apply's
	// fence lock and then stopped sending COPY data.
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = "evindex old"
	cfg.RuntimeParams["statement_timeout"] = "500"
	cfg.RuntimeParams["idle_in_transaction_session_timeout"] = "500"
	paused, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer paused.Close(context.Background())
	tx, err := paused.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM leases WHERE source = 'flow' FOR KEY SHARE`); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	copied := make(chan error, 1)
	go func() {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"blocks"},
			[]string{"source", "height", "block_id", "block_time_ns", "event_count", "status"}, blockedRows{release})
		copied <- err
	}()
	defer func() { close(release); <-copied }()
	watch := connect(t, dsn)
	for i := 0; ; i++ {
		var inCopy int
		if err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'evindex old' AND query LIKE 'copy%' AND state = 'active'`).Scan(&inCopy); err != nil {
			t.Fatal(err)
		}
		if inCopy == 1 {
			break
		}
		if i > 2000 {
			t.Fatal("the writer never reached its COPY")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Past both of the paused session's timeouts: it still holds the row.
	time.Sleep(time.Second)

	taker, err := postgres.Open(ctx, dsn, postgres.Options{Instance: "new", StatementTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer taker.Close()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var got store.Lease
	for {
		got, err = taker.AcquireLease(tctx, "flow", "new", time.Minute)
		if err == nil || tctx.Err() != nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("takeover from a writer paused in mid-COPY: %v", err)
	}
	if got.Owner != "new" || got.Generation != 2 {
		t.Fatalf("lease after the takeover: %+v", got)
	}
	var blocks int
	if err := watch.QueryRow(ctx, `SELECT count(*) FROM blocks`).Scan(&blocks); err != nil {
		t.Fatal(err)
	}
	if blocks != 0 {
		t.Fatalf("%d blocks stored by the paused writer's ended transaction", blocks)
	}
}
