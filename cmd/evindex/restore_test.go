package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/store/bolt"
)

// TestBackupWhileIngestingThenRestore takes `evindex backup` of a daemon
// that is indexing all three simulators at full speed, then starts a new
// evindex on the copy: it must resume from the checkpoints inside the copy
// (not from scratch, not from where the first daemon got to) and end equal
// to the simulators' truth.
func TestBackupWhileIngestingThenRestore(t *testing.T) {
	history, at := uint64(8000), uint64(2000)
	if testing.Short() {
		history, at = 3000, 800
	}
	w := startWorld(t, worldOptions{flowHistory: history, blockInterval: 10 * time.Millisecond, layerInterval: 100 * time.Millisecond})
	dir := t.TempDir()
	d := startDaemon(t, writeConfig(t, dir, w.config(filepath.Join(dir, "data"))))
	d.waitFor("the backfill to be under way", func() bool {
		s := d.source(worldFlow)
		return s.Checkpoint != nil && s.Checkpoint.Height >= at
	})

	backup := filepath.Join(dir, "copy.db")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"backup", "--url", "http://" + d.addr, "-o", backup}, noEnv, &stdout, &stderr); err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr.String())
	}
	t.Logf("%s", strings.TrimSpace(stdout.String()))
	during := d.source(worldFlow)
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, mode %v, want 0600", err, fi.Mode().Perm())
	}
	// The daemon keeps going; it is stopped only so that it cannot touch
	// the simulators while the copy resumes.
	d.waitFor("ingestion to move past the backup", func() bool {
		s := d.source(worldFlow)
		return s.Checkpoint.Height > during.Checkpoint.Height+100
	})
	d.stop()

	// Restore: the copy is the whole database.
	restored := filepath.Join(dir, "restored")
	if err := os.Mkdir(restored, 0o700); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(restored, bolt.FileName), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	inCopy := inspectCrashed(t, restored, nil)
	t.Logf("checkpoints in the copy: %v", inCopy)
	if inCopy[worldFlow] >= during.Checkpoint.Height+100 {
		t.Fatalf("the copy holds checkpoint %d: not a snapshot from during the backup", inCopy[worldFlow])
	}
	// The copy's data alone already matches the chain up to its checkpoints.
	verifyFlowAt(t, restored, w, inCopy[worldFlow])

	// A fresh Presearch API with the same history. The copy's request
	// history misses the requests the first daemon made after the backup;
	// a real API still counts them, so right after a restore the source
	// can exceed the API's limit once (and then waits out the block).
	w.replacePresearch(t)
	streams := len(w.flow.Stats().StreamStarts)
	d2 := startDaemon(t, writeConfig(t, t.TempDir(), w.config(restored)))
	heads := w.heads()
	d2.waitFor("the restored copy to catch up", func() bool {
		for name, h := range heads {
			if s := d2.source(name); s.Checkpoint == nil || s.Checkpoint.Height < h {
				return false
			}
		}
		return true
	})
	d2.stop()
	starts := w.flow.Stats().StreamStarts[streams:]
	if len(starts) == 0 || starts[0] != inCopy[worldFlow]+1 {
		t.Fatalf("the restored daemon's first Flow stream started at %v, want the copy's checkpoint + 1 = %d", starts, inCopy[worldFlow]+1)
	}
	if !slices.IsSorted(starts) {
		t.Fatalf("stream starts %v went back", starts)
	}
	verifyWorld(t, w, restored)
}

// verifyFlowAt compares the Flow records of a stopped data dir with the
// chain up to height cp.
func verifyFlowAt(t *testing.T, dataDir string, w *world, cp uint64) {
	t.Helper()
	st, err := bolt.Open(dataDir, bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	verifyFlow(t, st, w.flow, cp)
}
