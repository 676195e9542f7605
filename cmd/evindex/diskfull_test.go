package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/store/bolt"
)

// mountTmpfs mounts a tmpfs of the given size on dir and unmounts it at
// cleanup. It skips the test where mounting is not allowed.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs to fill needs root")
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0755"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); the full-disk test needs one", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

func resizeTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, "size="+size); err != nil {
		t.Fatalf("grow the tmpfs: %v", err)
	}
}

func reconnects(t *testing.T, d *daemon, name string) uint64 {
	t.Helper()
	var s struct {
		Reconnects uint64 `json:"reconnects"`
	}
	d.get("/v1/sources/"+name, &s)
	return s.Reconnects
}

// TestDiskFull indexes into a 2 MiB filesystem until it is full: the
// source must pause as "retrying" with the cause in its last error, the
// file must stay sound and keep serving what it has, and once there is
// space again ingestion must resume where it stopped and end with every
// record of the chain, once.
func TestDiskFull(t *testing.T) {
	mnt := t.TempDir()
	mountTmpfs(t, mnt, "2m")

	cfg := flowsim.DefaultConfig()
	cfg.Seed, cfg.History, cfg.BlockInterval = 7, 5000, 0
	sim, err := flowsim.Start(context.Background(), "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dataDir := filepath.Join(mnt, "data")
	conf := writeConfig(t, t.TempDir(), fmt.Sprintf(`data_dir: %s
store: {batch_max_records: 2000, batch_max_delay: 20ms}
sources:
  - name: %s
    kind: flow
    endpoint: %s
    start_height: 1
`, dataDir, worldFlow, sim.Addr()))
	d := startDaemon(t, conf)

	var full sourceView
	d.waitFor("the disk to fill", func() bool {
		full = d.source(worldFlow)
		return full.State == "retrying" && strings.Contains(full.LastError, "no space left on device")
	})
	t.Logf("disk full at checkpoint %d: state %s, last error %q", full.Checkpoint.Height, full.State, full.LastError)
	if full.Checkpoint == nil || full.Checkpoint.Height >= sim.SealedHeight() {
		t.Fatalf("the disk filled with the checkpoint at %+v of %d", full.Checkpoint, sim.SealedHeight())
	}
	// The API keeps serving what is stored; the readiness probe says why
	// it is not ready.
	if code := d.get("/healthz", nil); code != 200 {
		t.Fatalf("/healthz: %d while the disk is full", code)
	}
	if got := len(d.allEvents(fmt.Sprintf("source=%s&to_height=%d", worldFlow, full.Checkpoint.Height))); got == 0 {
		t.Fatal("no events served while the disk is full")
	}
	var ready map[string]any
	if code := d.get("/readyz", &ready); code != 503 {
		t.Fatalf("/readyz: %d while the disk is full, want 503", code)
	}
	// It stays paused, without losing its place, while the disk stays
	// full: the next attempt fails the same way.
	first := reconnects(t, d, worldFlow)
	d.waitFor("another attempt on the full disk", func() bool { return reconnects(t, d, worldFlow) > first })
	if s := d.source(worldFlow); s.State != "retrying" || s.Checkpoint.Height < full.Checkpoint.Height || !strings.Contains(s.LastError, "no space") {
		t.Fatalf("while full: state %s, checkpoint %d (was %d), last error %q", s.State, s.Checkpoint.Height, full.Checkpoint.Height, s.LastError)
	}

	resizeTmpfs(t, mnt, "256m")
	d.waitFor("ingestion to resume and catch up", func() bool {
		s := d.source(worldFlow)
		return s.State == "live" && s.Checkpoint != nil && s.Checkpoint.Height == sim.SealedHeight()
	})
	d.stop()

	st, err := bolt.Open(dataDir, bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(context.Background()); err != nil {
		t.Fatalf("after the disk was full: %v", err)
	}
	verifyFlow(t, st, sim, sim.SealedHeight())
}
