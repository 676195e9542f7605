package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/postgres"
	"github.com/evindex/evindex/store/postgres/pgtest"
)

// The scale-out tests run several evindex processes on one PostgreSQL
// database (store/postgres/pgtest), sharing the world's sources through
// leases.

// openPG is the test's own view of the database the processes share.
func openPG(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// owners maps each world source to the instance holding a live lease on
// it (by the database's clock), "" when none does.
func owners(t *testing.T, st *postgres.Store) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ls, err := st.Leases(ctx)
	out := map[string]string{worldFlow: "", worldSM: "", worldPre: ""}
	if err != nil {
		return out // the database is restarting: nobody is known to own anything
	}
	now := time.Now() // the server runs on this machine: one clock
	for _, l := range ls {
		if _, ok := out[l.Source]; ok && l.Owner != "" && l.Expires.After(now) {
			out[l.Source] = l.Owner
		}
	}
	return out
}

// instanceOf is the default instance name of a process: hostname:pid.
func instanceOf(t *testing.T, p *process) string {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return host + ":" + strconv.Itoa(p.cmd.Process.Pid)
}

// eventually polls cond every 20 ms until it holds, failing after limit.
func eventually(t *testing.T, what string, limit time.Duration, cond func() bool, logs ...*process) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, p := range logs {
				fmt.Fprintf(&b, "\n--- pid %d:\n%s", p.cmd.Process.Pid, tailLines(p.logs.String(), 40))
			}
			t.Fatalf("timed out after %v waiting until %s%s", limit, what, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func allOwnedBy(o map[string]string, owner string) bool {
	for _, v := range o {
		if v != owner {
			return false
		}
	}
	return true
}

// checkpoints reads every world source's checkpoint from the primary. A
// few attempts: after a restart of the server the pool's first use of a
// connection of before fails.
func checkpoints(t *testing.T, st store.Store) map[string]uint64 {
	t.Helper()
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		out := map[string]uint64{}
		for _, name := range []string{worldFlow, worldSM, worldPre} {
			var cp store.Checkpoint
			var found bool
			if cp, found, err = st.Checkpoint(context.Background(), name); err != nil {
				break
			}
			if found {
				out[name] = cp.Height
			}
		}
		if err == nil {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal(err)
	return nil
}

// TestFencingPausedOwner: process a owns every source; SIGSTOP holds it
// past its lease, b takes every source over and ingests; on SIGCONT a's
// next write is refused, a logs that it lost the lease and goes to
// standby, and the database ends up exactly the simulators' truth with no
// checkpoint gone back.
func TestFencingPausedOwner(t *testing.T) {
	bin := evindexBinary(t)
	dsn := pgtest.DSN(t)
	pg := openPG(t, dsn)
	w := startWorld(t, worldOptions{flowHistory: 2000, blockInterval: 20 * time.Millisecond, layerInterval: 100 * time.Millisecond})
	cfg := writeConfig(t, t.TempDir(), w.pgConfig(dsn, 2*time.Second))
	args := []string{"run", "--config", cfg, "--http-listen", "127.0.0.1:0"}

	a := startProcess(t, bin, args...)
	a.waitServing()
	nameA := instanceOf(t, a)
	eventually(t, "a owns every source", 20*time.Second, func() bool { return allOwnedBy(owners(t, pg), nameA) }, a)
	b := startProcess(t, bin, args...)
	addrB := b.waitServing()
	nameB := instanceOf(t, b)
	// b names a as the owner only once its own runner has found a holding
	// the lease (standby); the state it shows is then a's report (live,
	// backfilling), "standby" only until a first renews with its status,
	// so a loaded machine that starts b late sees no "standby" at all.
	eventually(t, "b shows every source owned by a", 20*time.Second, func() bool {
		srcs, err := sourcesOf(addrB)
		if err != nil || len(srcs) != 3 {
			return false
		}
		for _, s := range srcs {
			if s.Owner != nameA {
				return false
			}
		}
		return true
	}, b)

	if err := syscall.Kill(a.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			_ = syscall.Kill(a.cmd.Process.Pid, syscall.SIGCONT)
		}
	}()
	eventually(t, "b owns every source", 20*time.Second, func() bool { return allOwnedBy(owners(t, pg), nameB) }, b)
	taken := checkpoints(t, pg)
	eventually(t, "b ingests flow", 20*time.Second, func() bool { return checkpoints(t, pg)[worldFlow] > taken[worldFlow] }, b)

	if err := syscall.Kill(a.cmd.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	eventually(t, "a logs that it lost the lease of every source", 20*time.Second, func() bool {
		return strings.Count(a.logs.String(), "lost the lease") >= 3
	}, a)
	for name, h := range checkpoints(t, pg) {
		if h < taken[name] {
			t.Fatalf("%s: checkpoint went back from %d to %d after the paused owner resumed", name, taken[name], h)
		}
	}
	for _, line := range strings.Split(a.logs.String(), "\n") {
		if strings.Contains(line, "lost the lease") {
			t.Logf("a: %s", line)
		}
	}
	if !strings.Contains(a.logs.String(), store.ErrLeaseLost.Error()) {
		t.Fatalf("a's log does not say the store refused it:\n%s", a.logs.String())
	}
	if !allOwnedBy(owners(t, pg), nameB) {
		t.Fatalf("after SIGCONT the sources are owned by %v, want all by %s", owners(t, pg), nameB)
	}

	// b catches up with the heads; a, in standby, writes nothing.
	heads := w.heads()
	eventually(t, "b catches up", 60*time.Second, func() bool {
		cps := checkpoints(t, pg)
		return cps[worldFlow] >= heads[worldFlow] && cps[worldSM] >= heads[worldSM]
	}, b)
	a.stop()
	b.stop()
	verifyWorldIn(t, w, pg)
}

var failoverKills = flag.Int("failover.kills", 10, "how many owners TestFailoverCrashLoop SIGKILLs (-short: at most 4)")

// inspectShared checks the shared database between kills: no checkpoint
// went back and every source's coverage is one range reaching its
// checkpoint. It returns the checkpoints.
func inspectShared(t *testing.T, st store.Store, prev map[string]uint64) map[string]uint64 {
	t.Helper()
	ctx := context.Background()
	cps := checkpoints(t, st)
	for name, h := range prev {
		if cps[name] < h {
			t.Fatalf("%s: checkpoint went back from %d to %d", name, h, cps[name])
		}
	}
	for name, h := range cps {
		cov, err := st.Coverage(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		// The other process writes on meanwhile: the coverage, read after
		// the checkpoint, may reach further, never less far.
		if len(cov) != 1 || cov[0].To < h {
			t.Fatalf("%s: coverage %+v with checkpoint %d", name, cov, h)
		}
	}
	return cps
}

// TestFailoverCrashLoop: two ingest processes with the same config share
// one database and the three simulators. -failover.kills times (default
// 10, at most 4 with -short) the process that owns sources is killed with SIGKILL mid-ingest and
// started again; the other takes its sources over within about the lease
// TTL. Once, between kills, the database itself is killed (pg_ctl -m
// immediate) and restarted while both ingest. At the end every source's
// events, blocks and rewards equal the simulators' truth, coverage is one
// range per source and no checkpoint ever went back.
func TestFailoverCrashLoop(t *testing.T) {
	bin := evindexBinary(t)
	server := pgtest.StartOwn(t)
	ctx := context.Background()
	dsn, err := server.CreateDatabase(ctx, "evindex")
	if err != nil {
		t.Fatal(err)
	}
	pg := openPG(t, dsn)
	w := startWorld(t, worldOptions{flowHistory: 12000, blockInterval: 20 * time.Millisecond, layerInterval: 100 * time.Millisecond})
	const ttl = 2 * time.Second
	cfg := writeConfig(t, t.TempDir(), w.pgConfig(dsn, ttl))
	args := []string{"run", "--config", cfg, "--http-listen", "127.0.0.1:0"}
	start := func() *process {
		p := startProcess(t, bin, args...)
		p.waitServing()
		return p
	}
	procs := []*process{start(), start()}
	byName := func() map[string]*process {
		m := map[string]*process{}
		for _, p := range procs {
			m[instanceOf(t, p)] = p
		}
		return m
	}
	// ownedOnce waits until every source has a live owner among procs.
	ownedOnce := func(what string) map[string]string {
		var o map[string]string
		eventually(t, what, 30*time.Second, func() bool {
			o = owners(t, pg)
			names := byName()
			for _, v := range o {
				if names[v] == nil {
					return false
				}
			}
			return true
		}, procs...)
		return o
	}

	kills := *failoverKills
	if testing.Short() && kills > 4 {
		kills = 4 // the race run; the full 10 run in go test ./...
	}
	cps := map[string]uint64{}
	for i := 1; i <= kills; i++ {
		if i == kills/2+1 {
			// The database crashes while the owners ingest and comes back
			// on the same port: the processes reconnect, renew or retake
			// the leases and resume from the checkpoints.
			ownedOnce("before the database crash every source has a live owner")
			before := checkpoints(t, pg)
			time.Sleep(300 * time.Millisecond)
			if err := server.Kill(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)
			if err := server.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			cps = inspectShared(t, pg, cps)
			eventually(t, "flow ingests again after the database restart", 60*time.Second, func() bool {
				return checkpoints(t, pg)[worldFlow] > max(before[worldFlow], cps[worldFlow])
			}, procs...)
			t.Logf("database killed (pg_ctl -m immediate) mid-ingest at flow %d and restarted; flow ingests again", cps[worldFlow])
		}
		o := ownedOnce(fmt.Sprintf("kill %d: every source has a live owner", i))
		// Kill the process that owns the most sources.
		count := map[string]int{}
		for _, v := range o {
			count[v]++
		}
		victim := ""
		for name, n := range count {
			if victim == "" || n > count[victim] || n == count[victim] && name < victim {
				victim = name
			}
		}
		p := byName()[victim]
		// Let it ingest a little under its leases before it dies.
		time.Sleep(time.Duration(200+100*(i%5)) * time.Millisecond)
		p.kill()
		cps = inspectShared(t, pg, cps)
		t.Logf("kill %2d: %s owned %d sources; checkpoints flow %d, spacemesh %d, presearch %d",
			i, victim, count[victim], cps[worldFlow], cps[worldSM], cps[worldPre])
		for j := range procs {
			if procs[j] == p {
				procs[j] = start()
			}
		}
	}

	// The survivors catch up with the heads as they are now, then stop.
	ownedOnce("after the kills every source has a live owner")
	heads := w.heads()
	eventually(t, "the processes catch up with the simulators", 90*time.Second, func() bool {
		c := checkpoints(t, pg)
		return c[worldFlow] >= heads[worldFlow] && c[worldSM] >= heads[worldSM] && c[worldPre] > 0
	}, procs...)
	for _, p := range procs {
		p.stop()
	}
	inspectShared(t, pg, cps)
	final := verifyWorldIn(t, w, pg)
	t.Logf("after %d owner kills and a database crash: %v", kills, final)
}

// TestPostgresPasswordStaysOut: the DSN's password is in no log line, no
// /v1/sources or /metrics answer of a running process, and in no error of
// one that cannot reach its replica.
func TestPostgresPasswordStaysOut(t *testing.T) {
	const password = "pg-pass-0f1e2d"
	dsn := withPassword(pgtest.DSN(t), password)
	w := startWorld(t, worldOptions{flowHistory: 500})
	d := startDaemon(t, writeConfig(t, t.TempDir(), w.pgConfig(dsn, 2*time.Second)))
	d.waitFor("a source owned by this process", func() bool {
		s := d.source(worldFlow)
		return s.Owner != "" && s.Checkpoint != nil
	})
	for _, p := range []string{"/v1/sources", "/metrics", "/readyz", "/healthz"} {
		if _, b := body(t, d.addr, p); strings.Contains(b, password) {
			t.Fatalf("GET %s shows the password:\n%s", p, b)
		}
	}
	d.stop()
	if strings.Contains(d.logs.String(), password) {
		t.Fatalf("the log shows the password:\n%s", d.logs.String())
	}

	bad := regexp.MustCompile(`@127\.0\.0\.1:[0-9]+/`).ReplaceAllString(dsn, "@127.0.0.1:1/") // nothing listens on port 1
	cfg := writeConfig(t, t.TempDir(), strings.Replace(w.pgConfig(dsn, 2*time.Second), "lease_ttl:", "read_dsn: '"+bad+"', lease_ttl:", 1))
	var errOut strings.Builder
	err := run(context.Background(), []string{"run", "--config", cfg, "--http-listen", "127.0.0.1:0"}, noEnv, io.Discard, &errOut)
	if err == nil {
		t.Fatal("run with an unreachable replica started")
	}
	if msg := err.Error() + errOut.String(); strings.Contains(msg, password) || !strings.Contains(msg, "replica") {
		t.Fatalf("the error of an unreachable replica: %s", msg)
	}
}
