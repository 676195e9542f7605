package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

// heldStore is the daemon's real store with a switch that holds every
// write: Apply waits until the writes are let go, as a write to a disk
// that hangs (a stuck NFS mount, a dying device) does.
type heldStore struct {
	store.Store
	mu   sync.Mutex
	hold chan struct{} // nil: writes pass
}

func (h *heldStore) Apply(ctx context.Context, batches ...store.Batch) error {
	h.mu.Lock()
	hold := h.hold
	h.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return h.Store.Apply(ctx, batches...)
}

// holdWrites makes every Apply from now on wait; the returned function
// lets them go.
func (h *heldStore) holdWrites() (release func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hold = make(chan struct{})
	hold := h.hold
	return func() {
		h.mu.Lock()
		h.hold = nil
		h.mu.Unlock()
		close(hold)
	}
}

// readyzBody is /readyz's answer.
type readyzBody struct {
	Status  string `json:"status"`
	Sources []struct {
		Name   string `json:"name"`
		State  string `json:"state"`
		Ready  bool   `json:"ready"`
		Reason string `json:"reason"`
	} `json:"sources"`
}

// TestReadyzNamesAStalledSource runs the daemon on a live Flow source and
// then holds its store's writes while the simulated chain goes on: the
// source stays "live" and its stream keeps moving the head, but nothing
// commits. Once that has lasted longer than the source's stall_threshold,
// /readyz is 503 naming the source and how long it has stalled (it said
// "lag N exceeds threshold 30", or 200 for a source whose head moves only
// with its commits), /healthz stays 200 (liveness: the process and the
// database are fine), and /v1/sources shows when the stall began. Let go,
// the writes commit and /readyz is 200 again.
func TestReadyzNamesAStalledSource(t *testing.T) {
	scfg := flowsim.DefaultConfig()
	scfg.History, scfg.BlockInterval = 200, 50*time.Millisecond
	sim, err := flowsim.Start(context.Background(), "127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

	dir := t.TempDir()
	const threshold = time.Second
	// flowConfig's source is its last entry: the key joins it.
	path := writeConfig(t, dir, flowConfig(filepath.Join(dir, "data"), sim.Addr())+fmt.Sprintf("    stall_threshold: %s\n", threshold))
	cfg, err := LoadConfigFile(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &storetest.LogBuffer{}
	log := zerolog.New(logs)
	heldCh := make(chan *heldStore, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runDaemon(ctx, cfg, env{getenv: noEnv, stdout: io.Discard, stderr: io.Discard}, &daemonHooks{
			listener: ln, logger: &log,
			store: func(st store.Store) store.Store { h := &heldStore{Store: st}; heldCh <- h; return h },
		})
	}()
	d := &daemon{t: t, cancel: cancel, done: done, addr: ln.Addr().String(), logs: logs}
	held := <-heldCh
	release := func() {}
	stopped := false
	defer func() {
		release()
		if !stopped {
			cancel()
			<-done
		}
	}()
	readyz := func() (int, readyzBody) {
		var b readyzBody
		return d.get("/readyz", &b), b
	}
	d.waitFor("caught up and ready", func() bool {
		s := d.source("flow-test")
		code, _ := readyz()
		return s.Checkpoint != nil && s.Checkpoint.Height >= scfg.History && code == 200
	})

	release = held.holdWrites()
	heldAt := time.Now()
	var reason string
	d.waitFor("/readyz naming the stalled source", func() bool {
		code, b := readyz()
		if code != 503 || len(b.Sources) != 1 {
			return false
		}
		reason = b.Sources[0].Reason
		return strings.Contains(reason, "stalled: source flow-test has committed nothing for")
	})
	t.Logf("writes held for %s: /readyz: %s", time.Since(heldAt).Round(time.Millisecond), reason)
	m := regexp.MustCompile(`committed nothing for (\S+) \(threshold 1s\)`).FindStringSubmatch(reason)
	if m == nil {
		t.Fatalf("the reason does not say how long the source has stalled against its threshold: %s", reason)
	}
	if stalledFor, err := time.ParseDuration(m[1]); err != nil || stalledFor < threshold {
		t.Fatalf("stalled for %q (%v), want at least the threshold %s", m[1], err, threshold)
	}
	if code := d.get("/healthz", nil); code != 200 {
		t.Fatalf("/healthz %d while writes hang: it is liveness and must stay 200", code)
	}
	var src struct {
		State        string     `json:"state"`
		HeadHeight   uint64     `json:"head_height"`
		StalledSince *time.Time `json:"stalled_since"`
		Checkpoint   struct {
			Height uint64 `json:"height"`
		} `json:"checkpoint"`
	}
	d.get("/v1/sources/flow-test", &src)
	if src.State != "live" || src.StalledSince == nil || src.HeadHeight <= src.Checkpoint.Height ||
		time.Since(*src.StalledSince) < threshold {
		t.Fatalf("/v1/sources while writes hang: %+v; want live, its head past its checkpoint, stalled since over %s ago", src, threshold)
	}

	release()
	release = func() {}
	d.waitFor("ready again once writes commit", func() bool { code, _ := readyz(); return code == 200 })
	if s := d.source("flow-test"); s.Checkpoint.Height <= src.Checkpoint.Height {
		t.Fatalf("ready again at checkpoint %d, stalled at %d", s.Checkpoint.Height, src.Checkpoint.Height)
	}
	stopped = true
	d.stop()
}
