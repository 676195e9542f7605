package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/indexer/flow/flowsim"
)

// slowAnswer is the bound on a /v1/sources answer in the slow-client
// tests. It is no latency target: the answer is a map lookup and one short
// read, normally a few milliseconds, and a reader that held the writer
// made it take 8 s and more for as long as the reader lived. 4 s tells the
// two apart with room for a loaded two-core CI machine.
const slowAnswer = 4 * time.Second

// startFlowBinary runs the evindex binary on a simulated Flow node with
// the given history, the source backfilling at requestsPerSecond range
// calls (0: live, one block each 20 ms), and returns the process and its
// API address.
func startFlowBinary(t *testing.T, history uint64, requestsPerSecond int) (*process, string) {
	t.Helper()
	cfg := flowsim.DefaultConfig()
	cfg.Seed, cfg.History, cfg.BlockInterval = 12, history, 20*time.Millisecond
	sim, err := flowsim.Start(context.Background(), "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	dir := t.TempDir()
	backfill := ""
	if requestsPerSecond > 0 {
		backfill = fmt.Sprintf("    backfill: {workers: 2, requests_per_second: %d}\n", requestsPerSecond)
	}
	conf := writeConfig(t, dir, fmt.Sprintf(`data_dir: %s
http: {listen: "127.0.0.1:0"}
sources:
  - name: flow-test
    kind: flow
    endpoint: %s
    start_height: 1
%s`, filepath.Join(dir, "data"), sim.Addr(), backfill))
	p := startProcess(t, evindexBinary(t), "run", "--config", conf)
	return p, p.waitServing()
}

// flowState reads flow-test's state and checkpoint, and how long the
// answer took.
func flowState(t *testing.T, addr string) (state string, checkpoint uint64, took time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := http.Get("http://" + addr + "/v1/sources/flow-test")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s sourceView
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	took = time.Since(start)
	if s.Checkpoint != nil {
		checkpoint = s.Checkpoint.Height
	}
	return s.State, checkpoint, took
}

// waitCheckpoint polls until flow-test's checkpoint reaches height.
func waitCheckpoint(t *testing.T, p *process, addr string, height uint64) {
	t.Helper()
	for i := 0; ; i++ {
		if _, cp, _ := flowState(t, addr); cp >= height {
			return
		}
		if p.exited() || i == 6000 {
			t.Fatalf("checkpoint never reached %d:\n%s", height, p.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openStalled sends a GET on a raw connection and reads only the status
// line, as a client on a slow link that has stopped reading.
func openStalled(t *testing.T, addr, path string) (net.Conn, int) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		t.Fatalf("GET %s: %v", path, err)
	}
	var code int
	fmt.Sscanf(strings.TrimPrefix(line, "HTTP/1.1 "), "%d", &code)
	return c, code
}

// TestManySlowExportClients opens 200 ndjson, 20 csv and 20 parquet exports
// that stop reading, against the real binary while it ingests: past the
// cap they are refused with 429, the process's peak RSS (VmHWM) stays
// under 256 MB, and the source stays live and keeps committing. Without
// the cap, 200 such clients took the daemon from 65 to 456 MB and the
// mix to 778 MB.
func TestManySlowExportClients(t *testing.T) {
	const maxRSS = 256 << 20
	p, addr := startFlowBinary(t, 30_000, 0)
	waitCheckpoint(t, p, addr, 30_000)
	_, before, _ := flowState(t, addr)

	codes := map[int]int{}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 240 {
		format := "ndjson"
		switch {
		case i%12 == 5:
			format = "csv"
		case i%12 == 11:
			format = "parquet"
		}
		c, code := openStalled(t, addr, "/v1/events?source=flow-test&format="+format)
		conns = append(conns, c)
		codes[code]++
	}
	t.Logf("answers to 240 stalled exports: %v", codes)
	if codes[http.StatusOK] == 0 || codes[http.StatusOK] > 16 || codes[http.StatusTooManyRequests] != 240-codes[http.StatusOK] {
		t.Errorf("answers %v: want at most the cap (16) served and every other one 429", codes)
	}
	// Ingestion goes on while the served exports are stalled.
	slow := 0
	for i := 0; ; i++ {
		state, cp, took := flowState(t, addr)
		if took > slowAnswer {
			slow++
		}
		if state != "live" && state != "backfilling" {
			t.Fatalf("source %s with the exports open", state)
		}
		if cp > before+50 {
			break
		}
		if i == 3000 {
			t.Fatalf("checkpoint stuck at %d (was %d) with the exports open", cp, before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if slow > 0 {
		t.Errorf("%d /v1/sources answers took longer than %v", slow, slowAnswer)
	}
	rss := vmHWM(t, p.cmd.Process.Pid)
	t.Logf("peak RSS (VmHWM) with 240 stalled exports: %.1f MB", float64(rss)/(1<<20))
	if rss > maxRSS {
		t.Errorf("peak RSS %.1f MB, more than %d MB", float64(rss)/(1<<20), maxRSS>>20)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	p.stop()
}

// TestSlowBackupDuringBackfill reads a backup at about 300 KB/s while the
// source backfills, the file growing: ingestion keeps committing and
// /v1/sources keeps answering. A backup that held bbolt's read
// transaction at the client's pace had stalled every commit and query
// behind the growing file's remap.
func TestSlowBackupDuringBackfill(t *testing.T) {
	history := uint64(400_000)
	if testing.Short() {
		history = 150_000
	}
	p, addr := startFlowBinary(t, history, 10)
	waitCheckpoint(t, p, addr, 5_000)

	resp, err := http.Get("http://" + addr + "/v1/admin/backup")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("backup: %s", resp.Status)
	}
	_, start, _ := flowState(t, addr)
	var (
		read, commits, slow int
		last                = start
		buf                 = make([]byte, 30<<10)
	)
	// 30 KB every 100 ms, for at most 15 s or until the backup ends.
	for round := 0; round < 150; round++ {
		n, err := io.ReadFull(resp.Body, buf)
		read += n
		state, cp, took := flowState(t, addr)
		if took > slowAnswer {
			slow++
		}
		if cp > last {
			commits++
			last = cp
		}
		if state != "backfilling" && state != "live" {
			t.Fatalf("source %s during the backup", state)
		}
		if err != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("read %d KB of the backup; checkpoint %d -> %d in %d steps; %d slow answers", read>>10, start, last, commits, slow)
	if slow > 0 {
		t.Errorf("%d /v1/sources answers took longer than %v during the backup", slow, slowAnswer)
	}
	if commits < 5 || last < start+1_000 {
		t.Errorf("checkpoint %d -> %d in %d steps while the backup was read slowly: ingestion was held", start, last, commits)
	}
	resp.Body.Close()
	p.stop()
}
