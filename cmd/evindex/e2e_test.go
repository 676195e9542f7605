package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

// daemon is one `evindex run` started through run(), as main would.
type daemon struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan error
	addr   string
	logs   *storetest.LogBuffer
}

// startDaemon runs `evindex run --config path` and waits until it serves.
func startDaemon(t *testing.T, configPath string) *daemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{t: t, cancel: cancel, done: make(chan error, 1), logs: &storetest.LogBuffer{}}
	go func() {
		d.done <- run(ctx, []string{"run", "--config", configPath, "--log-format", "json", "--http-listen", "127.0.0.1:0"},
			func(string) string { return "" }, io.Discard, d.logs)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if addr := logField(d.logs.String(), "evindex serving", "addr"); addr != "" {
			d.addr = addr
			return d
		}
		select {
		case err := <-d.done:
			t.Fatalf("evindex run exited: %v\n%s", err, d.logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("evindex did not start serving:\n%s", d.logs.String())
	return nil
}

// stop sends the equivalent of SIGTERM and waits for a clean exit.
func (d *daemon) stop() {
	d.t.Helper()
	d.cancel()
	select {
	case err := <-d.done:
		if err != nil {
			d.t.Fatalf("evindex run: %v", err)
		}
	case <-time.After(10 * time.Second):
		d.t.Fatal("evindex did not stop")
	}
}

func logField(logs, msg, field string) string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["message"] == msg {
			if v, ok := m[field].(string); ok {
				return v
			}
		}
	}
	return ""
}

func (d *daemon) get(path string, into any) int {
	d.t.Helper()
	resp, err := http.Get("http://" + d.addr + path)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			d.t.Fatalf("GET %s: %v", path, err)
		}
	}
	return resp.StatusCode
}

func (d *daemon) waitFor(what string, cond func() bool) {
	d.t.Helper()
	for i := 0; i < 3000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.t.Fatalf("timed out waiting for %s\n%s", what, d.logs.String())
}

type sourceView struct {
	Name       string `json:"name"`
	State      string `json:"state"`
	Checkpoint *struct {
		Height uint64 `json:"height"`
	} `json:"checkpoint"`
	EventsIndexed uint64 `json:"events_indexed"`
	LastError     string `json:"last_error"`
	Owner         string `json:"owner"`
}

func (d *daemon) source(name string) sourceView {
	var s sourceView
	d.get("/v1/sources/"+name, &s)
	return s
}

type eventView struct {
	Source     string          `json:"source"`
	Height     uint64          `json:"height"`
	BlockID    string          `json:"block_id"`
	TxID       string          `json:"tx_id"`
	TxIndex    uint32          `json:"tx_index"`
	EventIndex uint32          `json:"event_index"`
	Type       string          `json:"type"`
	Payload    json.RawMessage `json:"payload"`
}

// allEvents pages through /v1/events with the cursor.
func (d *daemon) allEvents(query string) []eventView {
	var out []eventView
	cursor := ""
	for i := 0; i < 10000; i++ {
		var page struct {
			Items      []eventView `json:"items"`
			NextCursor string      `json:"next_cursor"`
		}
		if code := d.get("/v1/events?limit=1000&"+query+"&cursor="+cursor, &page); code != 200 {
			d.t.Fatalf("/v1/events: status %d", code)
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			return out
		}
		cursor = page.NextCursor
	}
	d.t.Fatal("pagination did not end")
	return nil
}

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "evindex.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func flowConfig(dataDir, endpoint string) string {
	return fmt.Sprintf(`data_dir: %s
store: {batch_max_records: 500, batch_max_delay: 20ms}
sources:
  - name: flow-test
    kind: flow
    endpoint: %s
    start_height: 1
`, dataDir, endpoint)
}

// eventKey is an event's identity.
func eventKey(height uint64, tx, ev uint32) string { return fmt.Sprintf("%d/%d/%d", height, tx, ev) }

// assertMatchesTruth compares the served events of heights 1..to with what
// the simulated chain holds: same identities, same payloads, no duplicate.
func assertMatchesTruth(t *testing.T, d *daemon, sim *flowsim.Sim, to uint64) {
	t.Helper()
	truth, err := sim.Events(1, to, flowsim.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, b := range truth {
		for _, e := range b.Events {
			want[eventKey(b.Height, e.TransactionIndex, e.EventIndex)] = hex.EncodeToString(e.TransactionId)
		}
	}
	got := map[string]bool{}
	for _, e := range d.allEvents(fmt.Sprintf("source=flow-test&to_height=%d", to)) {
		k := eventKey(e.Height, e.TxIndex, e.EventIndex)
		if got[k] {
			t.Fatalf("event %s served twice", k)
		}
		got[k] = true
		if tx, ok := want[k]; !ok {
			t.Fatalf("event %s is not on the chain", k)
		} else if tx != e.TxID {
			t.Fatalf("event %s: tx %s, chain says %s", k, e.TxID, tx)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d events stored for heights 1..%d, the chain has %d", len(got), to, len(want))
	}
}

func TestRunIndexesFlowAndServesIt(t *testing.T) {
	cfg := flowsim.DefaultConfig()
	cfg.History, cfg.BlockInterval = 400, 0
	sim, err := flowsim.Start(context.Background(), "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dir := t.TempDir()
	d := startDaemon(t, writeConfig(t, dir, flowConfig(filepath.Join(dir, "data"), sim.Addr())))
	d.waitFor("ready", func() bool { return d.get("/readyz", nil) == 200 })
	d.waitFor("checkpoint at the head", func() bool {
		s := d.source("flow-test")
		return s.Checkpoint != nil && s.Checkpoint.Height == sim.SealedHeight()
	})
	if s := d.source("flow-test"); s.State != "live" {
		t.Fatalf("state %q, want live", s.State)
	}
	assertMatchesTruth(t, d, sim, sim.SealedHeight())
	var cov struct {
		Ranges []store.Range `json:"ranges"`
	}
	d.get("/v1/sources/flow-test/coverage", &cov)
	if len(cov.Ranges) != 1 || cov.Ranges[0].From != 1 || cov.Ranges[0].To != sim.SealedHeight() {
		t.Fatalf("coverage %+v, want one range 1..%d", cov.Ranges, sim.SealedHeight())
	}
	d.stop()
}

func TestRunRestartedTenTimesLosesAndRepeatsNothing(t *testing.T) {
	cfg := flowsim.DefaultConfig()
	cfg.History, cfg.BlockInterval = 100, 0
	sim, err := flowsim.Start(context.Background(), "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dir := t.TempDir()
	path := writeConfig(t, dir, flowConfig(filepath.Join(dir, "data"), sim.Addr()))
	for i := 0; i < 10; i++ {
		d := startDaemon(t, path)
		// Stop at a different point each time: some runs mid-stream,
		// some right after start.
		sim.Produce(uint64(20 + 13*i))
		if i%3 != 2 {
			target := sim.SealedHeight() - uint64(i*3)
			d.waitFor("progress", func() bool {
				s := d.source("flow-test")
				return s.Checkpoint != nil && s.Checkpoint.Height >= target
			})
		}
		d.stop()
	}
	d := startDaemon(t, path)
	d.waitFor("caught up", func() bool {
		s := d.source("flow-test")
		return s.Checkpoint != nil && s.Checkpoint.Height == sim.SealedHeight()
	})
	assertMatchesTruth(t, d, sim, sim.SealedHeight())
	var cov struct {
		Ranges []store.Range `json:"ranges"`
	}
	d.get("/v1/sources/flow-test/coverage", &cov)
	if len(cov.Ranges) != 1 {
		t.Fatalf("coverage %+v, want one contiguous range", cov.Ranges)
	}
	d.stop()
}

func TestSecondRunOnSameDataDirExitsNamingTheFile(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "data_dir: "+filepath.Join(dir, "data")+"\n")
	d := startDaemon(t, path)
	defer d.stop()
	var stderr bytes.Buffer
	start := time.Now()
	err := run(context.Background(), []string{"run", "--config", path, "--http-listen", "127.0.0.1:0"}, func(string) string { return "" }, io.Discard, &stderr)
	if err == nil {
		t.Fatal("a second evindex on the same data dir started")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the second run took %v to give up", took) // a hang, not a timing measurement
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, "data", "evindex.db")) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("error %q does not say the file is locked", err)
	}
	if code := exitCode(err, io.Discard); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := writeConfig(t, dir, "data_dir: x\nsources:\n  - name: f\n    kind: flow\n    endpont: 127.0.0.1:1\n")
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"NoCommand", nil, 2, "command"},
		{"UnknownCommand", []string{"frobnicate"}, 2, "frobnicate"},
		{"Help", []string{"--help"}, 0, ""},
		{"RunHelp", []string{"run", "--help"}, 0, ""},
		{"DemoHelp", []string{"demo", "--help"}, 0, ""},
		{"SimHelp", []string{"sim", "flow", "--help"}, 0, ""},
		{"ExportHelp", []string{"export", "--help"}, 0, ""},
		{"BackupHelp", []string{"backup", "--help"}, 0, ""},
		{"CheckHelp", []string{"check", "--help"}, 0, ""},
		{"MigrateHelp", []string{"migrate", "--help"}, 0, ""},
		{"Version", []string{"version"}, 0, ""},
		{"UnknownFlag", []string{"run", "--colour"}, 2, "colour"},
		{"BadConfigKey", []string{"run", "--config", bad}, 2, "sources[0].endpont"},
		{"MissingConfig", []string{"run", "--config", filepath.Join(dir, "nope.yaml")}, 2, "nope.yaml"},
		{"FlowWithoutEndpoint", []string{"run", "--config", writeConfig(t, t.TempDir(), "sources: [{name: f, kind: flow}]\n")}, 2, "sources[0].endpoint"},
		{"CheckWithoutData", []string{"check"}, 2, "--data"},
		{"CheckMissingDir", []string{"check", "--data", filepath.Join(dir, "none")}, 1, "evindex.db"},
		{"SimWithoutKind", []string{"sim"}, 2, "flow"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), c.args, func(string) string { return "" }, &out, &errOut)
			code := exitCode(err, &errOut)
			if code != c.code {
				t.Fatalf("exit %d (%v), want %d", code, err, c.code)
			}
			if c.msg != "" && !strings.Contains(errOut.String(), c.msg) {
				t.Fatalf("message %q does not mention %q", errOut.String(), c.msg)
			}
			if c.code == 0 && c.name != "Version" && !strings.Contains(out.String(), "Usage") {
				t.Fatalf("--help printed no usage: %q", out.String())
			}
		})
	}
}
