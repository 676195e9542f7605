package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

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

// TestCorruptFile damages a database file in the ways disks and people do
// and runs the real binary on it: `evindex check` must exit 1 with one
// line naming the file (never a panic, a signal or a hang), and `evindex
// run` must refuse to start on a file it cannot open.
func TestCorruptFile(t *testing.T) {
	bin := evindexBinary(t)
	sampleDir := t.TempDir()
	good := sampleDB(t, sampleDir)
	layout := pageLayout(t, sampleDir)
	const page = 4096
	t.Logf("sample file: %d bytes; pages in use below %d: %d leaf, %d branch, freelist %d",
		len(good), layout.hwm, len(layout.leaves), len(layout.branches), layout.freelist)
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
	leaf := layout.leaves[len(layout.leaves)/2]
	lastLeaf := layout.leaves[len(layout.leaves)-1]
	branch := layout.branches[len(layout.branches)/2]
	half := layout.hwm / 2 * page
	cases := []struct {
		name string
		file []byte
		// opens: the damage is where bbolt looks only during a full
		// check, so `run` may start; `check` must find it.
		opens bool
	}{
		{name: "Empty", file: []byte{}, opens: true}, // run starts a new database in it
		{name: "NotADatabase", file: []byte(strings.Repeat("this is a text file, not a database\n", 400))},
		{name: "TruncatedInHeader", file: good[:100]},
		{name: "TruncatedToOnePage", file: good[:page]},
		{name: "TruncatedBelowItsPages", file: good[:half]},
		{name: "TruncatedByOnePage", file: good[:(layout.hwm-1)*page]},
		{name: "BothMetaPagesZeroed", file: zero(good, 0, 2*page)},
		{name: "BothMetaPagesGarbage", file: overwrite(overwrite(good, 0, 1), 1, 2)},
		{name: "FreelistPageGarbage", file: overwrite(good, layout.freelist, 3)},
		{name: "LeafPageGarbage", file: overwrite(good, leaf, 4), opens: true},
		{name: "LastLeafPageGarbage", file: overwrite(good, lastLeaf, 5), opens: true},
		{name: "BranchPageGarbage", file: overwrite(good, branch, 6), opens: true},
		{name: "LeafPageZeroed", file: zero(good, leaf*page, (leaf+1)*page), opens: true},
		{name: "SeveralPagesGarbage", file: overwrite(overwrite(good, layout.leaves[1], 7), layout.branches[0], 8), opens: true},
		{name: "UsedPagesZeroed", file: zero(good, half, layout.hwm*page), opens: true},
		// bbolt opens these from the other meta page; its checker then
		// asserted on the damaged one in a goroutine of its own.
		{name: "FirstPageZeroed", file: zero(good, 0, page), opens: true},
		{name: "SecondMetaPageZeroed", file: zero(good, page, 2*page), opens: true},
		// A page that names another page ("self identifies as
		// 18446744073709551615"), or none of the page types.
		{name: "LeafPageIDWrong", file: patch(good, leaf*page, bytes.Repeat([]byte{0xff}, 8)), opens: true},
		{name: "BranchPageFlagsCleared", file: patch(good, branch*page+8, []byte{0, 0}), opens: true},
		// Everything of the file reads, but a core bucket is gone: every
		// query and write would meet it missing.
		{name: "MissingCoreBucket", file: withoutBucket(t, good, "events_by_tx")},
		{name: "MissingRewardsBucket", file: withoutBucket(t, good, "rewards")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, bolt.FileName)
			if err := os.WriteFile(path, c.file, 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runBinary(t, bin, "check", "--data", dir)
			first, _, _ := strings.Cut(strings.TrimSpace(errOut), "\n")
			t.Logf("check: exit %d: %s", code, first)
			if code == 0 {
				t.Fatalf("evindex check passed a damaged file:\n%s", out)
			}
			assertErrorNamesFile(t, "check", code, errOut, path)

			assertOneLine(t, "check", errOut)

			// export and migrate may succeed where the damage is in pages
			// they do not read; they must never crash, and a failure is
			// one line naming the file.
			for _, args := range [][]string{
				{"export", "--data", dir, "--format", "ndjson", "-o", filepath.Join(t.TempDir(), "e.ndjson"), "events"},
				{"export", "--data", dir, "--format", "csv", "-o", filepath.Join(t.TempDir(), "r.csv"), "rewards"},
				{"migrate", "--data", dir},
			} {
				if err := os.WriteFile(path, c.file, 0o600); err != nil { // migrate may have written to it
					t.Fatal(err)
				}
				code, _, errOut := runBinary(t, bin, args...)
				t.Logf("%s: exit %d: %s", args[0], code, strings.TrimSpace(errOut))
				if code != 0 || !c.opens {
					assertErrorNamesFile(t, args[0], code, errOut, path)
					assertOneLine(t, args[0], errOut)
				}
			}
			if !c.opens {
				code, _, errOut := runBinary(t, bin, "run", "--data-dir", dir, "--http-listen", "127.0.0.1:0")
				assertErrorNamesFile(t, "run", code, errOut, path)
				assertOneLine(t, "run", errOut)
			}
		})
	}
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
}

func pageLayout(t *testing.T, dir string) layout {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, bolt.FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var l layout
	err = db.View(func(tx *bbolt.Tx) error {
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
	for _, bad := range []string{"panic", "goroutine ", "SIGBUS", "SIGSEGV", "fatal error"} {
		if strings.Contains(stderr, bad) {
			t.Fatalf("%s: the output shows a crash (%q):\n%s", what, bad, stderr)
		}
	}
	if code != 1 {
		t.Fatalf("%s: exit %d, want 1:\n%s", what, code, stderr)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(stderr), "\n")
	if !strings.HasPrefix(first, "evindex: ") || !strings.Contains(first, path) {
		t.Fatalf("%s: the error %q does not name %s", what, first, path)
	}
}
