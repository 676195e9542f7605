package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
)

// sampleDB writes a store with a few thousand events into dir and returns
// the file's bytes.
func sampleDB(t *testing.T, dir string) []byte {
	t.Helper()
	st, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for h := uint64(1); h <= 600; h += 50 {
		b := store.Batch{Source: "flow-x", Kind: "flow"}
		for i := h; i < h+50; i++ {
			bt := base.Add(time.Duration(i) * time.Second)
			for e := uint32(0); e < 6; e++ {
				b.Events = append(b.Events, store.Event{Height: i, BlockID: fmt.Sprintf("%064x", i), BlockTime: bt,
					TxID: fmt.Sprintf("%064x", i*10+uint64(e/2)), TxIndex: e / 2, EventIndex: e, Type: "A.1.Token.Deposited",
					Contract: "A.1.Token", Addresses: []string{fmt.Sprintf("%016x", i%7)},
					Payload: json.RawMessage(fmt.Sprintf(`{"type":"Event","value":{"n":%d,"pad":%q}}`, i, strings.Repeat("x", 64)))})
			}
			b.Blocks = append(b.Blocks, store.Block{Height: i, BlockID: fmt.Sprintf("%064x", i), BlockTime: bt, EventCount: 6})
			b.Rewards = append(b.Rewards, store.Reward{Account: fmt.Sprintf("node%d", i%3), Kind: "flow_node_reward",
				ID: fmt.Sprint(i), Height: i, HasHeight: true, Time: bt, RawAmount: fmt.Sprint(i * 1000), Unit: "FLOW", Decimals: 8})
		}
		b.Checkpoint = &store.Checkpoint{Height: h + 49}
		b.Coverage = &store.Range{From: h, To: h + 49}
		if err := st.Apply(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, bolt.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// outcome is what one command does with one damaged file.
type outcome int

const (
	// refuses: exit 1 with one line naming the file, what is wrong and
	// what to do (evindex check, a backup); never a trace.
	refuses outcome = iota
	// same: an export of a list whose pages are all sound exits 0 with
	// output byte for byte the export of the undamaged file. Export does
	// not read the whole file (an export of one list must not cost a
	// check of every other), and it is how an operator without a backup
	// saves what can still be read; it checks the meta pages, the free
	// list and the schema at open and every page it reads, so what it
	// writes is whole and right, or it fails.
	same
	// serves: `run` starts, answers /healthz and stops cleanly (exit 0) on
	// SIGTERM. The daemon checks at open what every command checks (meta
	// pages, free list, schema); a full check would read the whole file at
	// every start. A write or read that meets a damaged page later fails
	// that source, or that request, naming the file
	// (TestDaemonOnADamagedFile). A single damaged meta page is bbolt's
	// own recovery from a torn write: the file is read as of the commit
	// the other one names and the first commit rewrites it.
	serves
	// creates: an empty file is a new database to run and migrate, as
	// when it was made with touch; check and export refuse it.
	creates
)

func (o outcome) String() string {
	return [...]string{"refuses", "same", "serves", "creates"}[o]
}

// TestCorruptFile is the damaged-file matrix: a database file damaged in
// the ways disks and people do, and every command that opens one (run,
// check, migrate, export of events and of rewards) run on it as the real
// binary, each cell with the outcome it must have. check refuses every
// one; migrate rewrites the file, so it checks the whole of it first and
// refuses every one too.
func TestCorruptFile(t *testing.T) {
	bin := evindexBinary(t)
	sampleDir := t.TempDir()
	good := sampleDB(t, sampleDir)
	layout := pageLayout(t, sampleDir)
	const page = 4096
	t.Logf("sample file: %d bytes; pages in use below %d: %d leaf, %d branch, freelist %d",
		len(good), layout.hwm, len(layout.leaves), len(layout.branches), layout.freelist)
	events, rewards, byAddr := layout.trees["events"], layout.trees["rewards"], layout.trees["events_by_address"]
	if len(events.branches) == 0 || len(events.leaves) < 3 || len(rewards.leaves) < 2 || len(byAddr.leaves) < 2 {
		t.Fatalf("the sample's trees are too small to damage one part of: events %+v, rewards %+v, events_by_address %+v", events, rewards, byAddr)
	}
	overwrite := func(raw []byte, pg int, seed uint64) []byte {
		out := bytes.Clone(raw)
		r := rand.New(rand.NewPCG(seed, seed))
		for i := pg * page; i < (pg+1)*page && i < len(out); i++ {
			out[i] = byte(r.Uint32())
		}
		return out
	}
	zero := func(raw []byte, from, to int) []byte {
		out := bytes.Clone(raw)
		clear(out[from:to])
		return out
	}
	// flip inverts the bytes of a page's elements and data, past its
	// header, as a disk that returns another sector's bits does: the
	// page still names itself right.
	flip := func(raw []byte, pg int) []byte {
		out := bytes.Clone(raw)
		for i := pg*page + 16; i < (pg+1)*page; i++ {
			out[i] ^= 0xff
		}
		return out
	}
	evLeaf, evLastLeaf, evBranch := events.leaves[len(events.leaves)/2], events.leaves[len(events.leaves)-1], events.branches[0]
	half := layout.hwm / 2 * page
	R, S, V, C := refuses, same, serves, creates
	cases := []struct {
		name string
		file []byte
		// What run, migrate, export events and export rewards do; check
		// refuses every file.
		run, migrate, exportEvents, exportRewards outcome
	}{
		{"Empty", []byte{}, C, C, R, R},
		{"NotADatabase", []byte(strings.Repeat("this is a text file, not a database\n", 400)), R, R, R, R},
		{"TruncatedInHeader", good[:100], R, R, R, R},
		{"TruncatedToOnePage", good[:page], R, R, R, R},
		{"TruncatedBelowItsPages", good[:half], R, R, R, R},
		{"TruncatedByOnePage", good[:(layout.hwm-1)*page], R, R, R, R},
		{"BothMetaPagesZeroed", zero(good, 0, 2*page), R, R, R, R},
		{"BothMetaPagesGarbage", overwrite(overwrite(good, 0, 1), 1, 2), R, R, R, R},
		// bbolt opens these from the other meta page (its checker then
		// asserted on the damaged one in a goroutine of its own). A
		// reader would see the file as of the commit before the last.
		{"FirstPageZeroed", zero(good, 0, page), V, R, R, R},
		{"SecondMetaPageZeroed", zero(good, page, 2*page), V, R, R, R},
		{"SecondMetaPageChecksumWrong", patch(good, page+16+48, []byte{0xee}), V, R, R, R},
		{"FreelistPageGarbage", overwrite(good, layout.freelist, 3), R, R, R, R},
		{"UsedPagesZeroed", zero(good, half, layout.hwm*page), R, R, R, R},
		// Data pages: found by check and by what reads them.
		{"EventsLeafPageGarbage", overwrite(good, evLeaf, 4), V, R, R, S},
		{"EventsLastLeafPageGarbage", overwrite(good, evLastLeaf, 5), V, R, R, S},
		{"EventsBranchPageGarbage", overwrite(good, evBranch, 6), V, R, R, S},
		{"EventsLeafPageZeroed", zero(good, evLeaf*page, (evLeaf+1)*page), V, R, R, S},
		{"EventsLeafPageFlipped", flip(good, evLeaf), V, R, R, S},
		{"RewardsLeafPageGarbage", overwrite(good, rewards.leaves[0], 7), V, R, S, R},
		{"RewardsLeafPageFlipped", flip(good, rewards.leaves[len(rewards.leaves)-1]), V, R, S, R},
		{"IndexLeafPageGarbage", overwrite(good, byAddr.leaves[0], 8), V, R, S, S},
		{"IndexLeafPageFlipped", flip(good, byAddr.leaves[len(byAddr.leaves)-1]), V, R, S, S},
		{"SeveralPagesGarbage", overwrite(overwrite(good, rewards.leaves[0], 9), byAddr.leaves[0], 10), V, R, S, R},
		// A page that names another page ("self identifies as
		// 18446744073709551615"), or none of the page types.
		{"EventsLeafPageIDWrong", patch(good, evLeaf*page, bytes.Repeat([]byte{0xff}, 8)), V, R, R, S},
		{"EventsBranchPageFlagsCleared", patch(good, evBranch*page+8, []byte{0, 0}), V, R, R, S},
		// Everything of the file reads, but a core bucket is gone: every
		// query and write would meet it missing.
		{"MissingCoreBucket", withoutBucket(t, good, "events_by_tx"), R, R, R, R},
		{"MissingRewardsBucket", withoutBucket(t, good, "rewards"), R, R, R, R},
	}

	exports := map[string][]string{
		"events":  {"--format", "ndjson", "events"},
		"rewards": {"--format", "csv", "rewards"},
	}
	export := func(t *testing.T, dir, list string) (code int, out []byte, stderr string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), list)
		code, _, stderr = runBinary(t, bin, append([]string{"export", "--data-dir", dir, "-o", path}, exports[list]...)...)
		if code == 0 {
			var err error
			if out, err = os.ReadFile(path); err != nil {
				t.Fatal(err)
			}
		} else if _, err := os.Stat(path); err == nil {
			t.Fatalf("export %s failed (exit %d) and left %s behind", list, code, path)
		}
		return code, out, stderr
	}
	sound := map[string][]byte{}
	for list := range exports {
		code, out, stderr := export(t, sampleDir, list)
		if code != 0 || len(out) == 0 {
			t.Fatalf("export %s of the sound file: exit %d: %s", list, code, stderr)
		}
		sound[list] = out
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, bolt.FileName)
			reset := func() { // migrate and run may write to it
				t.Helper()
				if err := os.WriteFile(path, c.file, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			reset()
			code, out, errOut := runBinary(t, bin, "check", "--data-dir", dir)
			t.Logf("check: exit %d: %s", code, strings.TrimSpace(errOut))
			if code == 0 {
				t.Fatalf("evindex check passed a damaged file:\n%s", out)
			}
			assertRefuses(t, "check", code, errOut, path)

			for _, list := range []string{"events", "rewards"} {
				want := c.exportEvents
				if list == "rewards" {
					want = c.exportRewards
				}
				reset()
				code, got, errOut := export(t, dir, list)
				t.Logf("export %s (want %s): exit %d: %s", list, want, code, strings.TrimSpace(errOut))
				switch want {
				case refuses:
					assertRefuses(t, "export "+list, code, errOut, path)
				case same:
					assertNoCrash(t, "export "+list, errOut)
					if code != 0 {
						t.Fatalf("export %s: exit %d, want a clean export of its undamaged pages:\n%s", list, code, errOut)
					}
					if !bytes.Equal(got, sound[list]) {
						t.Fatalf("export %s exited 0 with %d bytes that differ from the sound file's %d", list, len(got), len(sound[list]))
					}
				default:
					t.Fatalf("no such export outcome %s", want)
				}
			}

			reset()
			code, out, errOut = runBinary(t, bin, "migrate", "--data-dir", dir)
			t.Logf("migrate (want %s): exit %d: %s", c.migrate, code, strings.TrimSpace(errOut))
			switch c.migrate {
			case refuses:
				assertRefuses(t, "migrate", code, errOut, path)
				if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, c.file) {
					t.Fatalf("migrate refused the file but changed it (%v)", err)
				}
			case creates:
				if code != 0 || !strings.Contains(out, "schema version") {
					t.Fatalf("migrate: exit %d, want a new database:\n%s%s", code, out, errOut)
				}
			default:
				t.Fatalf("no such migrate outcome %s", c.migrate)
			}

			reset()
			args := []string{"run", "--data-dir", dir, "--http-listen", "127.0.0.1:0", "--log-format", "json"}
			switch c.run {
			case refuses:
				code, _, errOut := runBinary(t, bin, args...)
				t.Logf("run (want refuses): exit %d: %s", code, strings.TrimSpace(errOut))
				assertRefuses(t, "run", code, errOut, path)
			case serves, creates:
				p := startProcess(t, bin, args...)
				addr := p.waitServing()
				if code := getStatus("http://" + addr + "/healthz"); code != http.StatusOK {
					t.Fatalf("run: /healthz %d on a file whose damage is past what it reads at start:\n%s", code, p.logs.String())
				}
				p.stop()
				assertNoCrash(t, "run", p.logs.String())
				t.Logf("run (want %s): served and stopped cleanly", c.run)
			default:
				t.Fatalf("no such run outcome %s", c.run)
			}
		})
	}
}

// assertRefuses checks a command's answer to a damaged file: exit 1, one
// line naming the file and saying what to do, no trace.
func assertRefuses(t *testing.T, what string, code int, stderr, path string) {
	t.Helper()
	assertErrorNamesFile(t, what, code, stderr, path)
	assertOneLine(t, what, stderr)
}

// assertOneLine checks that a command's error output is one line that
// says what to do about the damage.
func assertOneLine(t *testing.T, what, stderr string) {
	t.Helper()
	if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
		t.Fatalf("%s: %d lines of error, want one:\n%s", what, n+1, stderr)
	}
	if !strings.Contains(stderr, "evindex check") && !strings.Contains(stderr, "backup") {
		t.Fatalf("%s: the error does not say what to do (evindex check, a backup): %s", what, stderr)
	}
}

// assertNoCrash checks that a command's output shows no crash.
func assertNoCrash(t *testing.T, what, stderr string) {
	t.Helper()
	for _, bad := range []string{"panic", "goroutine ", "SIGBUS", "SIGSEGV", "fatal error"} {
		if strings.Contains(stderr, bad) {
			t.Fatalf("%s: the output shows a crash (%q):\n%s", what, bad, stderr)
		}
	}
}

// patch is raw with b written at off.
func patch(raw []byte, off int, b []byte) []byte {
	out := bytes.Clone(raw)
	copy(out[off:], b)
	return out
}

// withoutBucket is the file raw with one top-level bucket deleted through
// bbolt, as a bad tool or a half-applied edit could leave it.
func withoutBucket(t *testing.T, raw []byte, name string) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), bolt.FileName)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte(name)) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// layout is where a bbolt file keeps what.
type layout struct {
	hwm              int // pages below this are in use or free
	freelist         int
	leaves, branches []int
	// trees are the pages of each top-level bucket's B-tree (none for a
	// bucket small enough to live inline in its parent).
	trees map[string]tree
}

// tree is one bucket's pages.
type tree struct{ branches, leaves []int }

// treePages walks the B-tree rooted at page root in the file's bytes:
// a branch page's elements name their child pages (bbolt's page layout:
// a 16-byte header of id, flags, count, overflow; then count branch
// elements of pos, ksize uint32 and pgid uint64).
func treePages(t *testing.T, raw []byte, root int) tree {
	t.Helper()
	const page = 4096
	var tr tree
	var walk func(id, depth int)
	walk = func(id, depth int) {
		if depth > 10 || (id+1)*page > len(raw) {
			t.Fatalf("page %d: not a page of a sound tree", id)
		}
		p := raw[id*page:]
		switch flags := binary.LittleEndian.Uint16(p[8:]); flags {
		case 0x02:
			tr.leaves = append(tr.leaves, id)
		case 0x01:
			tr.branches = append(tr.branches, id)
			for i := range int(binary.LittleEndian.Uint16(p[10:])) {
				walk(int(binary.LittleEndian.Uint64(p[16+i*16+8:])), depth+1)
			}
		default:
			t.Fatalf("page %d of a tree has flags %#x", id, flags)
		}
	}
	walk(root, 0)
	return tr
}

func pageLayout(t *testing.T, dir string) layout {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, bolt.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw, err := os.ReadFile(filepath.Join(dir, bolt.FileName))
	if err != nil {
		t.Fatal(err)
	}
	l := layout{trees: map[string]tree{}}
	err = db.View(func(tx *bbolt.Tx) error {
		err := tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			if root := int(b.Root()); root != 0 {
				l.trees[string(name)] = treePages(t, raw, root)
			}
			return nil
		})
		if err != nil {
			return err
		}
		l.hwm = int(tx.Size() / 4096)
		for id := 2; id < l.hwm; id++ {
			p, err := tx.Page(id)
			if err != nil || p == nil {
				return fmt.Errorf("page %d: %v", id, err)
			}
			switch p.Type {
			case "leaf":
				l.leaves = append(l.leaves, id)
			case "branch":
				l.branches = append(l.branches, id)
			case "freelist":
				l.freelist = id
			}
			id += p.OverflowCount
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.leaves) < 3 || len(l.branches) < 1 || l.freelist == 0 {
		t.Fatalf("the sample file is too small to damage in every way: %+v", l)
	}
	return l
}

// assertErrorNamesFile checks that a command failed with exit code 1 and
// an error line naming the file, and did not crash.
func assertErrorNamesFile(t *testing.T, what string, code int, stderr, path string) {
	t.Helper()
	assertNoCrash(t, what, stderr)
	if code != 1 {
		t.Fatalf("%s: exit %d, want 1:\n%s", what, code, stderr)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(stderr), "\n")
	if !strings.HasPrefix(first, "evindex: ") || !strings.Contains(first, path) {
		t.Fatalf("%s: the error %q does not name %s", what, first, path)
	}
}

// TestDaemonOnADamagedFile runs the real binary on a file whose page that
// new events are written to is damaged (the events bucket's last leaf, a
// page nothing reads at start): the source's next commit meets it. The
// daemon marks that source failed with a last_error naming the file, the
// damage and what to do, does not retry it, and goes on serving what it
// can read (/v1/sources, the first events, blocks, /healthz) until it is
// stopped, then exits 0; never a panic or exit 2. bbolt's assertion in
// the writer had killed it ("Page expected to be: 15332, but self
// identifies as 18446744073709551615", exit 2).
func TestDaemonOnADamagedFile(t *testing.T) {
	bin := evindexBinary(t)
	scfg := flowsim.DefaultConfig()
	scfg.History, scfg.BlockInterval = 2000, 0 // new blocks only when the test produces them
	sim, err := flowsim.Start(context.Background(), "127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	args := []string{"run", "--config", writeConfig(t, dir, flowConfig(dataDir, sim.Addr())), "--http-listen", "127.0.0.1:0", "--log-format", "json"}

	p := startProcess(t, bin, args...)
	addr := p.waitServing()
	waitSource := func(what string, cond func(s sourceView) bool) sourceView {
		t.Helper()
		for range 3000 {
			if srcs, err := sourcesOf(addr); err == nil && cond(srcs["flow-test"]) {
				return srcs["flow-test"]
			}
			if p.exited() {
				t.Fatalf("evindex exited (%v) waiting for %s:\n%s", p.err, what, p.logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		// What the source showed last, next to the node's head, says
		// whether it did not receive or did not commit.
		srcs, err := sourcesOf(addr)
		t.Fatalf("timed out waiting for %s (source %+v, checkpoint %+v, %v; node's sealed height %d):\n%s",
			what, srcs["flow-test"], srcs["flow-test"].Checkpoint, err, sim.SealedHeight(), p.logs.String())
		return sourceView{}
	}
	waitSource("the history indexed", func(s sourceView) bool { return s.Checkpoint != nil && s.Checkpoint.Height == sim.SealedHeight() })
	p.stop()

	events := pageLayout(t, dataDir).trees["events"]
	if len(events.leaves) < 2 {
		t.Fatalf("the events bucket has %d leaf pages; the test damages the last and reads the first", len(events.leaves))
	}
	path := filepath.Join(dataDir, bolt.FileName)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	last := events.leaves[len(events.leaves)-1]
	r := rand.New(rand.NewPCG(11, 11))
	for i := last * page; i < (last+1)*page; i++ {
		raw[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	sim.Produce(100)
	p = startProcess(t, bin, args...)
	addr = p.waitServing()
	failed := waitSource("the source failed", func(s sourceView) bool { return s.State == "failed" })
	t.Logf("last_error: %s", failed.LastError)
	for _, want := range []string{path, "database file is corrupt", "evindex check", "backup"} {
		if !strings.Contains(failed.LastError, want) {
			t.Errorf("last_error does not say %q: %s", want, failed.LastError)
		}
	}
	// Still serving what it can read.
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v (the daemon died?)\n%s", path, err, p.logs.String())
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, path := range []string{"/healthz", "/v1/sources", "/v1/events?source=flow-test&limit=5", "/v1/blocks?source=flow-test&limit=5"} {
		if code, body := get(path); code != http.StatusOK || (strings.HasPrefix(path, "/v1/") && !strings.Contains(body, `"flow-test"`)) {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not live: failed") {
		t.Errorf("/readyz %d %s: want 503 for the failed source", code, body)
	}
	// A read of the damaged page is an error answer, and the process lives on.
	if code, body := get("/v1/events?source=flow-test&order=desc&limit=5"); code != http.StatusInternalServerError {
		t.Errorf("GET the damaged page's events: %d %s, want 500", code, body)
	}
	if code, _ := get("/v1/sources"); code != http.StatusOK {
		t.Errorf("/v1/sources after a read of the damaged page: %d", code)
	}
	// Failed for good: no retry hammering the damaged page.
	if s := waitSource("the state again", func(sourceView) bool { return true }); s.State != "failed" {
		t.Errorf("the source went %q after failing on a damaged file", s.State)
	}
	p.stop()
	assertNoCrash(t, "run", p.logs.String())
	if n := strings.Count(p.logs.String(), "source failed; not retrying"); n != 1 {
		t.Errorf("the failure was logged %d times, want once:\n%s", n, p.logs.String())
	}
}
