package main

import (
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/postgres"
	"github.com/evindex/evindex/store/postgres/pgtest"
	"github.com/evindex/evindex/store/storetest"
)

// withPassword puts a password into a pgtest DSN. The test servers trust
// loopback connections, so it is never checked, but every output is
// searched for it.
func withPassword(dsn, password string) string {
	return strings.Replace(dsn, "postgres://postgres@", "postgres://postgres:"+password+"@", 1)
}

// runDemoFor indexes `evindex demo` into dir until it is ready, has
// rewards and a missed_reward alert, then stops it.
func runDemoFor(t *testing.T, dir string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &storetest.LogBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--data", dir, "--http", "127.0.0.1:0"}, noEnv, io.Discard, logs)
	}()
	var addr string
	waitUntil(t, logs, done, "the demo serves", func() bool {
		addr = logField(logs.String(), "evindex serving", "addr")
		return addr != ""
	})
	base := "http://" + addr
	waitUntil(t, logs, done, "/readyz is 200", func() bool { return getStatus(base+"/readyz") == http.StatusOK })
	waitUntil(t, logs, done, "rewards of every source", func() bool {
		var srcs struct {
			Items []struct {
				Rewards uint64 `json:"rewards_indexed"`
			} `json:"items"`
		}
		if getJSON(base+"/v1/sources", &srcs) != nil || len(srcs.Items) != 3 {
			return false
		}
		for _, s := range srcs.Items {
			if s.Rewards == 0 {
				return false
			}
		}
		return true
	})
	// The demo's misses fire missed_reward alerts, evaluated after the
	// commits that make them provable: wait for one, so the copy has
	// alerts and their notifications to carry.
	waitUntil(t, logs, done, "a missed_reward alert of sm-demo", func() bool {
		var alerts struct {
			Items []json.RawMessage `json:"items"`
		}
		return getJSON(base+"/v1/alerts?source=sm-demo&rule=missed_reward&limit=1", &alerts) == nil && len(alerts.Items) > 0
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("evindex demo: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("evindex demo did not stop")
	}
}

// rewardSum is the exact sum of a source's raw reward amounts, read
// through the summary (the store's own exact sum) rather than the rows.
func rewardSum(t *testing.T, st interface {
	RewardSummary(context.Context, store.SummaryQuery) ([]store.SummaryRow, error)
}, source string) string {
	t.Helper()
	rows, err := st.RewardSummary(context.Background(), store.SummaryQuery{RewardQuery: store.RewardQuery{Source: source}, GroupBy: store.GroupMonth})
	if err != nil {
		t.Fatal(err)
	}
	sum := new(big.Int)
	for _, r := range rows {
		sum.Add(sum, r.RawAmount)
	}
	return sum.String()
}

// TestCopyDemoIntoPostgres copies the demo's data dir into an empty
// database: every source's counters, checkpoint, coverage and exact
// reward sum are the same on both sides (read back independently of the
// command's own verification), a second copy is refused unless --force,
// and the password of the DSN is in no output.
func TestCopyDemoIntoPostgres(t *testing.T) {
	const password = "copy-s3cret-pw"
	dsn := withPassword(pgtest.DSN(t), password)
	dir := filepath.Join(t.TempDir(), "demo")
	runDemoFor(t, dir)

	var out, errOut strings.Builder
	err := run(context.Background(), []string{"copy", "--data", dir, "--to-dsn", dsn}, noEnv, &out, &errOut)
	if err != nil {
		t.Fatalf("evindex copy: %v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "copied and verified 3 sources") || !strings.Contains(errOut.String(), "records copied") {
		t.Fatalf("copy output:\n%s\nprogress:\n%s", out.String(), errOut.String())
	}

	ctx := context.Background()
	from, err := bolt.Open(dir, bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	to, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer to.Close()
	want, err := from.Sources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 3 {
		t.Fatalf("the demo stored %d sources, want 3", len(want))
	}
	for _, w := range want {
		g, err := to.Source(ctx, w.Name)
		if err != nil {
			t.Fatal(err)
		}
		if g.Kind != w.Kind || g.Events != w.Events || g.Blocks != w.Blocks || g.Rewards != w.Rewards || g.Checkpoint == nil ||
			g.Checkpoint.Height != w.Checkpoint.Height || g.Checkpoint.BlockID != w.Checkpoint.BlockID {
			t.Fatalf("%s: copied %+v, the file has %+v", w.Name, g, w)
		}
		wc, _ := from.Coverage(ctx, w.Name)
		gc, _ := to.Coverage(ctx, w.Name)
		if len(gc) != len(wc) || len(gc) == 0 || gc[0] != wc[0] {
			t.Fatalf("%s: coverage copied %v, the file has %v", w.Name, gc, wc)
		}
		if w.Kind == "spacemesh" {
			wm, _ := totalsOf(ctx, from, w.Name)
			gm, _ := totalsOf(ctx, to, w.Name)
			if gm.Missed != wm.Missed || wm.Missed == 0 {
				t.Fatalf("%s: %d missed rewards after the copy, the file has %d (and must have some)", w.Name, gm.Missed, wm.Missed)
			}
			// The demo's misses fired missed_reward alerts: the episodes
			// and their pending notifications move with the records.
			if gm.Alerts != wm.Alerts || wm.Alerts == 0 || gm.Outbox != wm.Outbox {
				t.Fatalf("%s: %d alerts (outbox %d) after the copy, the file has %d (outbox %d), and must have some", w.Name, gm.Alerts, gm.Outbox, wm.Alerts, wm.Outbox)
			}
		}
		if g, w := rewardSum(t, to, w.Name), rewardSum(t, from, w.Name); g != w || w == "0" {
			t.Fatalf("%s: copied rewards sum to %s, the file's to %s", w, g, w)
		}
	}

	t.Run("NonEmptyTargetRefused", func(t *testing.T) {
		var out, errOut strings.Builder
		err := run(context.Background(), []string{"copy", "--data", dir, "--to-dsn", dsn}, noEnv, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), "--force") || exitCode(err, io.Discard) != 1 {
			t.Fatalf("a second copy: %v, want a refusal naming --force", err)
		}
		if strings.Contains(err.Error()+out.String()+errOut.String(), password) {
			t.Fatalf("the password is in the output: %v", err)
		}
	})
	t.Run("Force", func(t *testing.T) {
		var out, errOut strings.Builder
		err := run(context.Background(), []string{"copy", "--data", dir, "--force"},
			func(k string) string { return map[string]string{"EVINDEX_TO_DSN": dsn}[k] }, &out, &errOut)
		if err != nil || !strings.Contains(out.String(), "copied and verified 3 sources") {
			t.Fatalf("copy --force: %v\n%s%s", err, out.String(), errOut.String())
		}
	})
	if strings.Contains(out.String()+errOut.String(), password) {
		t.Fatalf("the password is in the output:\n%s%s", out.String(), errOut.String())
	}
}

// TestCopyThenRunResumes: the world indexed into a bbolt data dir is
// copied into PostgreSQL, and `evindex run` with the same sources on the
// database resumes each from its copied checkpoint: the database ends up
// exactly the simulators' truth, one coverage range per source from the
// first height, no checkpoint below the copied one.
func TestCopyThenRunResumes(t *testing.T) {
	w := startWorld(t, worldOptions{flowHistory: 3000, blockInterval: 20 * time.Millisecond, layerInterval: 100 * time.Millisecond})
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	d := startDaemon(t, writeConfig(t, dir, w.config(dataDir)))
	d.waitFor("a first stretch of every source", func() bool {
		for _, name := range []string{worldFlow, worldSM, worldPre} {
			if s := d.source(name); s.Checkpoint == nil {
				return false
			}
		}
		return d.source(worldFlow).Checkpoint.Height > 1000
	})
	d.stop()

	dsn := pgtest.DSN(t)
	var out, errOut strings.Builder
	if err := run(context.Background(), []string{"copy", "--data", dataDir, "--to-dsn", dsn}, noEnv, &out, &errOut); err != nil {
		t.Fatalf("evindex copy: %v\n%s%s", err, out.String(), errOut.String())
	}
	pg := openPG(t, dsn)
	copied := checkpoints(t, pg)
	t.Logf("copied: %s", strings.TrimSpace(out.String()))

	pgDir := t.TempDir()
	p := startDaemon(t, writeConfig(t, pgDir, w.pgConfig(dsn, 2*time.Second)))
	heads := w.heads()
	p.waitFor("run on the copy catches up", func() bool {
		for name, h := range heads {
			if s := p.source(name); s.Checkpoint == nil || s.Checkpoint.Height < h {
				return false
			}
		}
		return true
	})
	p.stop()
	final := verifyWorldIn(t, w, pg)
	for name, h := range copied {
		if final[name] < h {
			t.Fatalf("%s: checkpoint %d is below the copied %d", name, final[name], h)
		}
	}
	t.Logf("resumed from %v to %v", copied, final)
}
