package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/postgres/pgtest"
)

// apiOnlyConfig is an evindex config with no sources on the database of
// dsn, reading readDSN when set.
func apiOnlyConfig(dsn, readDSN string, maxLag time.Duration) string {
	return fmt.Sprintf(`data_dir: ""
log: {level: info, format: json}
store:
  backend: postgres
  postgres: {dsn: '%s', read_dsn: '%s', lease_ttl: 2s, max_replay_lag: %s}
sources: []
`, dsn, readDSN, maxLag)
}

// body fetches a path and returns its status and bytes.
func body(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestAPIOnStreamingReplica: the world is indexed into a primary; an
// API-only process reading a streaming replica of it serves, once the
// replica has caught up, byte for byte the pages, exports and summaries an
// API-only process on the primary serves, and takes the primary's cursors.
// /readyz shows the replica's replay lag, and is 503 while replay is
// paused and the primary writes on.
func TestAPIOnStreamingReplica(t *testing.T) {
	ctx := context.Background()
	server := pgtest.StartOwn(t)
	dsn, err := server.CreateDatabase(ctx, "evindex")
	if err != nil {
		t.Fatal(err)
	}
	replica, err := server.Replica(ctx)
	if err != nil {
		t.Fatal(err)
	}
	replicaDSN := replica.DSN("evindex")

	w := startWorld(t, worldOptions{flowHistory: 3000})
	dir := t.TempDir()
	ingest := startDaemon(t, writeConfig(t, dir, w.pgConfig(dsn, 2*time.Second)))
	heads := w.heads()
	ingest.waitFor("the world is indexed", func() bool {
		for name, h := range heads {
			if s := ingest.source(name); s.Checkpoint == nil || s.Checkpoint.Height < h {
				return false
			}
		}
		return ingest.source(worldPre).Checkpoint != nil
	})
	ingest.stop()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := server.WaitReplay(wctx, replica); err != nil {
		t.Fatal(err)
	}

	primaryDir, replicaDir := t.TempDir(), t.TempDir()
	onPrimary := startDaemon(t, writeConfig(t, primaryDir, apiOnlyConfig(dsn, "", time.Second)))
	defer onPrimary.stop()
	onReplica := startDaemon(t, writeConfig(t, replicaDir, apiOnlyConfig(dsn, replicaDSN, time.Second)))
	defer onReplica.stop()

	paths := []string{
		"/v1/sources/" + worldFlow + "/coverage",
		"/v1/events?source=" + worldFlow + "&limit=1000",
		"/v1/events?source=" + worldFlow + "&order=desc&limit=77&type=" + flowsim.FlowTokenType("TokensDeposited"),
		"/v1/blocks?source=" + worldSM + "&limit=50",
		"/v1/rewards?limit=1000",
		"/v1/rewards/summary?group_by=day",
		"/v1/rewards/summary?group_by=epoch&source=" + worldSM,
		"/v1/nodes",
		"/v1/events?source=" + worldFlow + "&format=ndjson",
		"/v1/rewards?format=csv",
		"/v1/blocks?format=parquet&source=" + worldFlow,
	}
	for _, p := range paths {
		pc, pb := body(t, onPrimary.addr, p)
		rc, rb := body(t, onReplica.addr, p)
		if pc != http.StatusOK || rc != pc || rb != pb {
			t.Fatalf("GET %s: primary %d (%d bytes), replica %d (%d bytes)\nprimary: %.300s\nreplica: %.300s", p, pc, len(pb), rc, len(rb), pb, rb)
		}
		if len(pb) < 20 {
			t.Fatalf("GET %s: an empty answer %q proves nothing", p, pb)
		}
	}

	// Every page of the events, its cursor taken from the other process
	// each time, is the page the primary serves.
	cursor, pages := "", 0
	for {
		var pp, rp struct {
			Items      []eventView `json:"items"`
			NextCursor string      `json:"next_cursor"`
		}
		path := "/v1/events?limit=500&source=" + worldFlow + "&cursor=" + cursor
		onPrimary.get(path, &pp)
		onReplica.get(path, &rp)
		if len(pp.Items) != len(rp.Items) || pp.NextCursor != rp.NextCursor {
			t.Fatalf("page %d: primary %d items next %q, replica %d next %q", pages, len(pp.Items), pp.NextCursor, len(rp.Items), rp.NextCursor)
		}
		for i := range pp.Items {
			if pp.Items[i].Height != rp.Items[i].Height || pp.Items[i].TxID != rp.Items[i].TxID || pp.Items[i].EventIndex != rp.Items[i].EventIndex {
				t.Fatalf("page %d item %d differs", pages, i)
			}
		}
		pages++
		if pp.NextCursor == "" {
			break
		}
		cursor = pp.NextCursor
	}
	if pages < 3 {
		t.Fatalf("%d pages: too few to test cursors across processes", pages)
	}

	var ready struct {
		Status  string `json:"status"`
		Replica *struct {
			Ready            bool    `json:"ready"`
			ReplayLagSeconds float64 `json:"replay_lag_seconds"`
			Reason           string  `json:"reason"`
		} `json:"replica"`
	}
	if code := onReplica.get("/readyz", &ready); code != http.StatusOK || ready.Replica == nil || !ready.Replica.Ready {
		t.Fatalf("/readyz on the caught-up replica: %d %+v", code, ready)
	}
	t.Logf("caught up: %d paths and %d event pages the same on both; replay lag %.3fs", len(paths), pages, ready.Replica.ReplayLagSeconds)

	// Replay paused while the primary commits: the lag grows past
	// max_replay_lag (1s) and /readyz says so; resumed, it is ready again.
	conn, err := pgx.Connect(ctx, replica.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	pg := openPG(t, dsn)
	commit := func() {
		t.Helper()
		if err := pg.Apply(ctx, store.Batch{Source: "lag-probe", Kind: "flow", Checkpoint: &store.Checkpoint{Height: uint64(time.Now().UnixNano())}}); err != nil {
			t.Fatal(err)
		}
	}
	commit()
	onReplica.waitFor("/readyz is 503 with the replay lag", func() bool {
		commit()
		code := onReplica.get("/readyz", &ready)
		return code == http.StatusServiceUnavailable && ready.Replica != nil && strings.Contains(ready.Replica.Reason, "replay lag")
	})
	t.Logf("replay paused: /readyz 503, %s", ready.Replica.Reason)
	// The replica process reads the replica: what the primary has and
	// the replica has not replayed is not there yet.
	if code := onPrimary.get("/v1/sources/lag-probe", nil); code != http.StatusOK {
		t.Fatalf("primary: /v1/sources/lag-probe %d", code)
	}
	if code := onReplica.get("/v1/sources/lag-probe", nil); code != http.StatusNotFound {
		t.Fatalf("replica with replay paused: /v1/sources/lag-probe %d, want 404", code)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_wal_replay_resume()"); err != nil {
		t.Fatal(err)
	}
	onReplica.waitFor("/readyz is 200 again", func() bool { return onReplica.get("/readyz", &ready) == http.StatusOK })
	if code := onReplica.get("/v1/sources/lag-probe", nil); code != http.StatusOK {
		t.Fatalf("replica caught up: /v1/sources/lag-probe %d", code)
	}
}
