package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/storetest"
)

// The bar for exports: a million rows in each format with the exporting
// process's peak RSS under 100 MB.
const (
	scaleRowsFull    = 1_000_000
	scaleRowsDefault = 20_000
	scaleRSSLimitKiB = 100 << 10
)

// TestExportsInBoundedMemory fills a store with rewards, exports them with
// the real binary in every format, from the data dir and through a running
// daemon, and checks each exporting process's peak RSS and that every
// export holds exactly the rows and raw amounts the JSON API serves.
//
// By default it exports 20,000 rows, which checks the plumbing but not the
// bound. The million-row measurement takes two to four minutes on two
// cores (a third of it filling a 1.9 GB store), so it runs when asked:
//
//	EVINDEX_SCALE=1 go test -run TestExportsInBoundedMemory -v -timeout 30m ./cmd/evindex
//
// EVINDEX_SCALE_ROWS sets any other row count.
func TestExportsInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and fills a store")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads peak memory from Linux's /proc")
	}
	rows := scaleRowsDefault
	if os.Getenv("EVINDEX_SCALE") != "" {
		rows = scaleRowsFull
	}
	if v := os.Getenv("EVINDEX_SCALE_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("EVINDEX_SCALE_ROWS=%q: want a positive row count", v)
		}
		rows = n
	}
	bin := evindexBinary(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")

	start := time.Now()
	want := fillRewards(t, data, rows)
	fi, err := os.Stat(filepath.Join(data, bolt.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("filled %d rewards in %v; evindex.db is %.0f MB", rows, time.Since(start).Round(time.Second), float64(fi.Size())/1e6)

	formats := []string{"ndjson", "csv", "parquet"}
	for _, format := range formats {
		t.Run("Data/"+format, func(t *testing.T) {
			out := filepath.Join(dir, "rewards-data."+format)
			run := runChild(t, bin, "export", "--data", data, "--format", format, "-o", out, "rewards")
			run.report(t)
			got := readExportTotals(t, format, out)
			want.assertEqual(t, format+" export from --data", got)
			os.Remove(out)
		})
	}

	// The same through a running daemon. Here the exporting process only
	// copies bytes; the daemon's heap is checked when it stops.
	d := startChildDaemon(t, bin, data)
	t.Run("JSONPages", func(t *testing.T) {
		got := jsonPageTotals(t, d.addr)
		want.assertEqual(t, "JSON API pages", got)
	})
	for _, format := range formats {
		t.Run("URL/"+format, func(t *testing.T) {
			out := filepath.Join(dir, "rewards-url."+format)
			run := runChild(t, bin, "export", "--url", "http://"+d.addr, "--format", format, "-o", out, "rewards")
			run.report(t)
			got := readExportTotals(t, format, out)
			want.assertEqual(t, format+" export through --url", got)
			os.Remove(out)
		})
	}
	d.stop(t)
	d.report(t)
	t.Logf("%d rows exported in every format in %v", rows, time.Since(start).Round(time.Second))
}

// rewardTotals are what an export must add up to: rows and the exact sum
// of raw_amount per unit.
type rewardTotals struct {
	rows int
	sums map[string]*big.Int
}

func newRewardTotals() *rewardTotals { return &rewardTotals{sums: map[string]*big.Int{}} }

func (r *rewardTotals) add(t *testing.T, unit, raw string) {
	v, ok := new(big.Int).SetString(raw, 10)
	if !ok {
		t.Fatalf("row %d: raw_amount %q is not an integer", r.rows, raw)
	}
	s := r.sums[unit]
	if s == nil {
		s = new(big.Int)
		r.sums[unit] = s
	}
	s.Add(s, v)
	r.rows++
}

func (r *rewardTotals) assertEqual(t *testing.T, what string, got *rewardTotals) {
	t.Helper()
	if got.rows != r.rows {
		t.Fatalf("%s: %d rows, want %d", what, got.rows, r.rows)
	}
	units := make([]string, 0, len(r.sums))
	for u := range r.sums {
		units = append(units, u)
	}
	slices.Sort(units)
	for _, u := range units {
		if g := got.sums[u]; g == nil || g.Cmp(r.sums[u]) != 0 {
			t.Fatalf("%s: raw_amount sum of %s is %v, want %v", what, u, g, r.sums[u])
		}
	}
	if len(got.sums) != len(r.sums) {
		t.Fatalf("%s: units %v, want %v", what, got.sums, r.sums)
	}
}

// scaleReward is reward i of the fill: three sources of realistic shape
// (Flow node and delegator rewards with 8 decimals, Spacemesh smesher
// rewards with 9, Presearch hourly periods with 18 decimals and amounts
// beyond 64 bits), 100 accounts each, one reward per account and step.
func scaleReward(i int) store.Reward {
	const accounts = 100
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	step := i / 3
	acct := step % accounts
	round := step / accounts
	switch i % 3 {
	case 0:
		height := uint64(80_000_000 + round*600 + acct)
		node := fmt.Sprintf("%064x", 0xf10_0000+acct)
		r := store.Reward{Source: "flow-scale", Account: node, Kind: "flow_node_reward",
			ID: fmt.Sprintf("%d/0/%d", height, acct), Height: height, HasHeight: true,
			Time: base.Add(time.Duration(round) * 7 * 24 * time.Hour / 100), Unit: "FLOW", Decimals: 8,
			RawAmount: strconv.FormatUint(uint64(1_234_567_890+i*7919), 10)}
		r.Details = fmt.Appendf(nil, `{"tx_id":"%064x","event_type":"A.8624b52f9ddcd04a.FlowIDTableStaking.RewardsPaid"}`, i)
		if acct%4 == 3 {
			r.Kind = "flow_delegator_reward"
			r.Aliases = []string{node + "/" + strconv.Itoa(acct)}
		}
		return r
	case 1:
		layer := uint64(40_000 + round)
		coinbase := fmt.Sprintf("sm1qqqqqq%032x", acct)
		smesher := fmt.Sprintf("%064x", 0x5e5_0000+acct)
		total := uint64(3_000_000_000 + i*104_729)
		return store.Reward{Source: "sm-scale", Account: coinbase, Kind: "smesher_reward",
			ID: smesher + "/" + strconv.FormatUint(layer, 10), Height: layer, HasHeight: true,
			Time: base.Add(time.Duration(round) * 5 * time.Minute), Unit: "SMH", Decimals: 9,
			RawAmount: strconv.FormatUint(total, 10), Aliases: []string{smesher},
			Details: fmt.Appendf(nil, `{"smesher":"%s","coinbase":"%s","layer":%d,"epoch":%d,"layer_reward":"%d","fee":"0","total":"%d"}`,
				smesher, coinbase, layer, layer/4032, total, total)}
	default:
		start := base.Add(time.Duration(round) * time.Hour)
		raw := new(big.Int).Mul(big.NewInt(int64(12_345_678+i)), big.NewInt(1_000_000_000_000))
		return store.Reward{Source: "presearch-scale", Account: fmt.Sprintf("pk%030x", 0x9e_0000+acct), Kind: "presearch_period",
			ID: start.Format(time.RFC3339), Time: start, PeriodStart: start, PeriodEnd: start.Add(time.Hour),
			Unit: "PRE", Decimals: 18, RawAmount: raw.String(),
			Details: fmt.Appendf(nil, `{"avg_uptime_score":100,"total_pre_earned":%s,"avg_latency_ms":41.5}`, raw)}
	}
}

// fillRewards writes rows rewards through Apply in big batches and
// returns their totals. NoSync is for the fill only; the exports open the
// file normally.
func fillRewards(t *testing.T, dir string, rows int) *rewardTotals {
	t.Helper()
	st, err := bolt.Open(dir, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	want := newRewardTotals()
	const batchRows = 50_000
	kinds := map[string]string{"flow-scale": "flow", "sm-scale": "spacemesh", "presearch-scale": "presearch"}
	for lo := 0; lo < rows; lo += batchRows {
		bySource := map[string]*store.Batch{}
		for i := lo; i < min(lo+batchRows, rows); i++ {
			r := scaleReward(i)
			want.add(t, r.Unit, r.RawAmount)
			b := bySource[r.Source]
			if b == nil {
				b = &store.Batch{Source: r.Source, Kind: kinds[r.Source]}
				bySource[r.Source] = b
			}
			b.Rewards = append(b.Rewards, r)
		}
		batches := make([]store.Batch, 0, len(bySource))
		for _, b := range bySource {
			batches = append(batches, *b)
		}
		if err := st.Apply(context.Background(), batches...); err != nil {
			t.Fatalf("fill: %v", err)
		}
	}
	return want
}

// childRun is one finished child process and its resource use.
type childRun struct {
	args    []string
	maxRSS  int64 // KiB, from the kernel's rusage
	floor   int64 // KiB, this test's RSS when the child started
	peakRSS rssSample
	took    time.Duration
}

// rssSample is what /proc/PID/status showed at the biggest sample: the
// split between heap (anon) and the memory-mapped database file.
type rssSample struct{ anon, file int64 } // KiB

func (r *childRun) report(t *testing.T) {
	t.Helper()
	t.Logf("%s: peak RSS %.1f MB (floor %.1f MB; sampled peak: %.1f MB anon + %.1f MB file-backed), %v",
		strings.Join(r.args, " "), float64(r.maxRSS)/1024, float64(r.floor)/1024, float64(r.peakRSS.anon)/1024, float64(r.peakRSS.file)/1024,
		r.took.Round(100*time.Millisecond))
	if r.maxRSS >= scaleRSSLimitKiB {
		t.Errorf("%s: peak RSS %.1f MB, want under %d MB", r.args[0], float64(r.maxRSS)/1024, scaleRSSLimitKiB>>10)
	}
}

// runChild runs the binary to completion, sampling its memory while it
// runs, and fails the test on a non-zero exit.
func runChild(t *testing.T, bin string, args ...string) *childRun {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	floor := resetPeakRSS(t)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sampler := sampleRSS(cmd.Process.Pid)
	err := cmd.Wait()
	peak := sampler()
	if err != nil {
		t.Fatalf("evindex %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("evindex %s wrote to stderr (not a terminal, so no progress bar):\n%s", strings.Join(args, " "), stderr.String())
	}
	return &childRun{args: args, maxRSS: cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss, floor: floor, peakRSS: peak, took: time.Since(start)}
}

// resetPeakRSS makes this process's peak RSS its current, small RSS and
// returns it. Go starts children with vfork semantics (the child runs on
// the parent's memory until exec), and Linux carries that memory's peak
// into the child's ru_maxrss at exec: without the reset every child would
// report the test's own peak. What remains is a floor: a child's ru_maxrss
// is at least this much, which errs on the side of failing.
func resetPeakRSS(t *testing.T) (floorKiB int64) {
	t.Helper()
	// Two collections: the first moves sync.Pool contents to the victim
	// cache, the second frees them.
	runtime.GC()
	debug.FreeOSMemory()
	// "5" resets the peak RSS to the current RSS (proc(5), clear_refs).
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset peak RSS: %v", err)
	}
	s, _ := readRSS(os.Getpid())
	return s.anon + s.file
}

// sampleRSS polls /proc/PID/status every 20 ms until stop is called and
// returns the sample with the biggest total. It explains the kernel's
// peak, it does not replace it: a sample can miss a short spike.
func sampleRSS(pid int) (stop func() rssSample) {
	done := make(chan struct{})
	var peak rssSample
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if s, ok := readRSS(pid); ok && s.anon+s.file > peak.anon+peak.file {
				peak = s
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() rssSample { close(done); wg.Wait(); return peak }
}

func readRSS(pid int) (rssSample, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return rssSample{}, false
	}
	var s rssSample
	for line := range strings.Lines(string(raw)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "RssAnon:":
			s.anon = v
		case "RssFile:":
			s.file = v
		}
	}
	return s, true
}

// childDaemon is `evindex run` serving a data dir with no sources.
type childDaemon struct {
	cmd    *exec.Cmd
	addr   string
	logs   *storetest.LogBuffer
	done   chan error
	sample func() rssSample
	floor  int64
	run    *childRun
}

func startChildDaemon(t *testing.T, bin, data string) *childDaemon {
	t.Helper()
	d := &childDaemon{logs: &storetest.LogBuffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(bin, "run", "--data-dir", data, "--http-listen", "127.0.0.1:0", "--log-format", "json")
	d.cmd.Stderr = d.logs
	d.floor = resetPeakRSS(t)
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.sample = sampleRSS(d.cmd.Process.Pid)
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if d.addr = logField(d.logs.String(), "evindex serving", "addr"); d.addr != "" {
			return d
		}
		select {
		case err := <-d.done:
			t.Fatalf("evindex run exited: %v\n%s", err, d.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("evindex run did not start serving:\n%s", d.logs.String())
	return nil
}

func (d *childDaemon) stop(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("evindex run: %v\n%s", err, d.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("evindex run did not stop on SIGTERM")
	}
	d.run = &childRun{args: d.cmd.Args[1:], maxRSS: d.cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss, floor: d.floor, peakRSS: d.sample()}
}

// report checks the daemon's heap, not its whole RSS: the daemon reads
// the store through bbolt's memory map and keeps the pages of the file it
// has read resident (clean page cache the kernel takes back under
// pressure), so after serving a full export its RSS holds most of the
// file. The export commands hand those pages back; a daemon cannot do that
// safely from outside the store, because the store remaps the file as it
// grows. The anonymous part is sampled every 20 ms.
func (d *childDaemon) report(t *testing.T) {
	t.Helper()
	r := d.run
	t.Logf("%s: peak RSS %.1f MB (floor %.1f MB; sampled peak: %.1f MB anon + %.1f MB of mapped file and binary)",
		strings.Join(r.args, " "), float64(r.maxRSS)/1024, float64(r.floor)/1024, float64(r.peakRSS.anon)/1024, float64(r.peakRSS.file)/1024)
	if r.peakRSS.anon >= scaleRSSLimitKiB {
		t.Errorf("daemon's anonymous memory reached %.1f MB while serving exports, want under %d MB", float64(r.peakRSS.anon)/1024, scaleRSSLimitKiB>>10)
	}
}

// jsonPageTotals pages through /v1/rewards a thousand rows at a time.
func jsonPageTotals(t *testing.T, addr string) *rewardTotals {
	t.Helper()
	got := newRewardTotals()
	cursor := ""
	for range 1 << 20 {
		resp, err := http.Get("http://" + addr + "/v1/rewards?limit=1000&cursor=" + cursor)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Items []struct {
				RawAmount string `json:"raw_amount"`
				Unit      string `json:"unit"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("/v1/rewards page after %d rows: status %d, %v", got.rows, resp.StatusCode, err)
		}
		for _, it := range page.Items {
			got.add(t, it.Unit, it.RawAmount)
		}
		if page.NextCursor == "" {
			return got
		}
		cursor = page.NextCursor
	}
	t.Fatal("pagination did not end")
	return nil
}

// readExportTotals reads an export file back with a reader of its format.
func readExportTotals(t *testing.T, format, path string) *rewardTotals {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := newRewardTotals()
	switch format {
	case "ndjson":
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var row struct {
				RawAmount string `json:"raw_amount"`
				Unit      string `json:"unit"`
			}
			if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
				t.Fatalf("ndjson line %d: %v", got.rows+1, err)
			}
			got.add(t, row.Unit, row.RawAmount)
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	case "csv":
		r := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
		r.ReuseRecord = true
		header, err := r.Read()
		if err != nil {
			t.Fatalf("csv header: %v", err)
		}
		raw, unit := slices.Index(header, "raw_amount"), slices.Index(header, "unit")
		if raw < 0 || unit < 0 {
			t.Fatalf("csv header %v lacks raw_amount or unit", header)
		}
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("csv row %d: %v", got.rows+1, err)
			}
			got.add(t, rec[unit], rec[raw])
		}
	case "parquet":
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		pf, err := parquet.OpenFile(f, fi.Size())
		if err != nil {
			t.Fatalf("open parquet: %v", err)
		}
		type row struct {
			RawAmount [16]byte `parquet:"raw_amount,decimal(0:38)"`
			Unit      string   `parquet:"unit"`
		}
		groups := pf.RowGroups()
		for _, g := range groups {
			r := parquet.NewGenericRowGroupReader[row](g)
			buf := make([]row, 4096)
			for {
				n, err := r.Read(buf)
				for _, x := range buf[:n] {
					got.add(t, x.Unit, new(big.Int).SetBytes(x.RawAmount[:]).String())
				}
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("parquet row %d: %v", got.rows+1, err)
				}
			}
			r.Close()
		}
		if int64(got.rows) != pf.NumRows() {
			t.Fatalf("parquet footer says %d rows, read %d", pf.NumRows(), got.rows)
		}
		t.Logf("parquet: %d row groups", len(groups))
	default:
		t.Fatalf("no reader for %q", format)
	}
	return got
}
