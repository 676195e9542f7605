package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/storetest"
)

var (
	crashKills = flag.Int("crash.kills", 20, "how many times TestCrashLoop SIGKILLs evindex (-short: at most 6)")
	crashSeed  = flag.Uint64("crash.seed", 0, "seed of TestCrashLoop's kill moments; 0 picks one (the test logs it)")
)

// process is one evindex binary run.
type process struct {
	t    *testing.T
	cmd  *exec.Cmd
	logs *storetest.LogBuffer
	out  *storetest.LogBuffer
	done chan struct{}
	err  error // Wait's result, once done is closed
}

func startProcess(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{t: t, logs: &storetest.LogBuffer{}, out: &storetest.LogBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.logs
	p.cmd.Env = append(os.Environ(), "EVINDEX_TOKEN=") // nothing from the host
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitServing waits for the "evindex serving" log line and returns the
// API address.
func (p *process) waitServing() string {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if addr := logField(p.logs.String(), "evindex serving", "addr"); addr != "" {
			return addr
		}
		if p.exited() {
			p.t.Fatalf("evindex exited (%v) before serving:\n%s", p.err, p.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.t.Fatalf("evindex did not start serving:\n%s", p.logs.String())
	return ""
}

// kill sends SIGKILL: no deferred function, no final commit, no close.
func (p *process) kill() {
	p.t.Helper()
	if p.exited() {
		p.t.Fatalf("evindex had already exited (%v):\n%s", p.err, p.logs.String())
	}
	if err := p.cmd.Process.Kill(); err != nil {
		p.t.Fatal(err)
	}
	<-p.done
}

// stop sends SIGTERM and waits for a clean exit.
func (p *process) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("evindex did not stop on SIGTERM:\n%s", p.logs.String())
	}
	if p.err != nil {
		p.t.Fatalf("evindex exited with %v after SIGTERM:\n%s", p.err, p.logs.String())
	}
}

// exitCode runs the binary to the end and returns its exit code and output.
func runBinary(t *testing.T, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	p := startProcess(t, bin, args...)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("evindex %v did not finish", args)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0, p.out.String(), p.logs.String()
	case errors.As(p.err, &ee) && ee.Exited():
		return ee.ExitCode(), p.out.String(), p.logs.String()
	default:
		t.Fatalf("evindex %v: %v (a crash, not an exit)\nstdout:\n%s\nstderr:\n%s", args, p.err, p.out.String(), p.logs.String())
		return 0, "", ""
	}
}

// sourcesOf reads /v1/sources of a running evindex.
func sourcesOf(addr string) (map[string]sourceView, error) {
	resp, err := http.Get("http://" + addr + "/v1/sources")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Items []sourceView `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	out := map[string]sourceView{}
	for _, s := range body.Items {
		out[s.Name] = s
	}
	return out, nil
}

// inspectCrashed opens the data dir of a killed evindex: the file must
// open and pass the integrity check, no checkpoint may have gone back and
// every source's coverage must be one range ending at its checkpoint.
func inspectCrashed(t *testing.T, dataDir string, prev map[string]uint64) map[string]uint64 {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dataDir, bolt.FileName)); errors.Is(err, os.ErrNotExist) {
		return prev // killed before the store was created
	}
	ctx := context.Background()
	st, err := bolt.Open(dataDir, bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("after a crash the file does not open: %v", err)
	}
	defer st.Close()
	if err := st.Check(ctx); err != nil {
		t.Fatalf("after a crash: %v", err)
	}
	cps := map[string]uint64{}
	for _, name := range []string{worldFlow, worldSM, worldPre} {
		cp, found, err := st.Checkpoint(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			if _, had := prev[name]; had {
				t.Fatalf("%s: the checkpoint vanished after a crash", name)
			}
			continue
		}
		if cp.Height < prev[name] {
			t.Fatalf("%s: checkpoint went back from %d to %d after a crash", name, prev[name], cp.Height)
		}
		cps[name] = cp.Height
		cov, err := st.Coverage(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(cov) > 1 || (len(cov) == 1 && cov[0].To != cp.Height) {
			t.Fatalf("%s: coverage %+v with checkpoint %d after a crash", name, cov, cp.Height)
		}
	}
	return cps
}

// TestCrashLoop runs the real binary against all three simulators, kills
// it with SIGKILL at random moments (startup, backfill, live), restarts it
// each time, and finally checks that the stored history equals the
// simulators' truth: nothing missing, nothing twice, coverage contiguous,
// `evindex check` clean. -crash.kills=N kills more often; -crash.seed
// replays a failure's kill moments.
func TestCrashLoop(t *testing.T) {
	bin := evindexBinary(t)
	kills := *crashKills
	if testing.Short() && kills > 6 {
		kills = 6
	}
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("kill moments from seed %d (replay: go test -run TestCrashLoop ./cmd/evindex -crash.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))

	w := startWorld(t, worldOptions{flowHistory: 12000, blockInterval: 20 * time.Millisecond, layerInterval: 100 * time.Millisecond})
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	cfg := writeConfig(t, dir, w.config(dataDir))
	args := []string{"run", "--config", cfg, "--http-listen", "127.0.0.1:0"}

	cps := map[string]uint64{}
	for i := 1; i <= kills; i++ {
		p := startProcess(t, bin, args...)
		// Mostly within the first second (opening, backfill); every fifth
		// run lives longer so some kills hit the live phase.
		limit := 1200 * time.Millisecond
		if i%5 == 0 {
			limit = 3 * time.Second
		}
		after := time.Duration(rng.Int64N(int64(limit)))
		select {
		case <-p.done:
			t.Fatalf("run %d: evindex exited on its own (%v):\n%s", i, p.err, p.logs.String())
		case <-time.After(after):
		}
		p.kill()
		cps = inspectCrashed(t, dataDir, cps)
		t.Logf("kill %2d after %4dms: checkpoints flow %d, spacemesh %d, presearch %d", i, after.Milliseconds(), cps[worldFlow], cps[worldSM], cps[worldPre])
	}

	// A last, clean run catches up with the heads as they were when it
	// started, then stops on SIGTERM.
	p := startProcess(t, bin, args...)
	addr := p.waitServing()
	heads := w.heads()
	deadline := time.Now().Add(90 * time.Second)
	for {
		srcs, err := sourcesOf(addr)
		if err == nil {
			caught := true
			for name, h := range heads {
				if s := srcs[name]; s.Checkpoint == nil || s.Checkpoint.Height < h {
					caught = false
				}
			}
			if caught {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no catch-up to %v: %+v (%v)\n%s", heads, srcs, err, p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.stop()
	if strings.Contains(p.logs.String(), `"level":"error"`) {
		t.Errorf("the final run logged errors:\n%s", p.logs.String())
	}

	code, out, errOut := runBinary(t, bin, "check", "--data", dataDir)
	if code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("evindex check: exit %d\n%s%s", code, out, errOut)
	}
	final := verifyWorld(t, w, dataDir)
	t.Logf("after %d kills: %s", kills, fmt.Sprint(final))
}
