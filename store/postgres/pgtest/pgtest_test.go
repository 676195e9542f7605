package pgtest_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evindex/evindex/store/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestSchemasAreFreshAndSeparate: each DSN starts empty and a table made
// through one is not seen through another.
func TestSchemasAreFreshAndSeparate(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.DSN(t), pgtest.DSN(t)
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, "CREATE TABLE x (v int); INSERT INTO x VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var found bool
	if err := cb.QueryRow(ctx, "SELECT to_regclass('x') IS NOT NULL").Scan(&found); err != nil {
		t.Fatal(err)
	}
	if found {
		t.Fatalf("%s sees a table made through another DSN", b)
	}
	if _, err := cb.Exec(ctx, "CREATE TABLE x (v text)"); err != nil {
		t.Fatalf("the same name in another schema: %v", err)
	}
	var fsync string
	if err := ca.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "on" {
		t.Fatalf("fsync = %q (%v), want on", fsync, err)
	}
}

// TestReplicaFollowsAndCrashRecovers: a streaming replica sees committed
// rows once caught up, refuses writes, and a killed primary restarts with
// every committed row.
func TestReplicaFollowsAndCrashRecovers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := pgtest.StartOwn(t)
	r, err := s.Replica(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "CREATE TABLE x (v int); INSERT INTO x SELECT generate_series(1, 1000)"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	if err := s.WaitReplay(ctx, r); err != nil {
		t.Fatal(err)
	}
	rc, err := pgx.Connect(ctx, r.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close(ctx)
	var n int
	if err := rc.QueryRow(ctx, "SELECT count(*) FROM x").Scan(&n); err != nil || n != 1000 {
		t.Fatalf("replica has %d rows (%v), want 1000", n, err)
	}
	if _, err := rc.Exec(ctx, "INSERT INTO x VALUES (0)"); err == nil {
		t.Fatal("the replica accepted a write")
	}

	if err := s.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	c, err = pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := c.QueryRow(ctx, "SELECT count(*) FROM x").Scan(&n); err != nil || n != 1000 {
		t.Fatalf("after a crash the primary has %d rows (%v), want 1000", n, err)
	}
}
