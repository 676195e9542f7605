package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/store/bolt"
)

// usedBytes is the high-water mark of a stopped database: the bytes its
// pages in use or free occupy. Pages freed while a read transaction is
// open cannot be reused, so long readers push it up.
func usedBytes(t *testing.T, dataDir string) (used int64, free int) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dataDir, bolt.FileName), 0o600, &bbolt.Options{ReadOnly: true, PreLoadFreelist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error { used = tx.Size(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return used, db.Stats().FreePageN
}

// ingestAll runs a daemon over a fresh Flow chain until it has every
// block, while readers (when not nil) hammer its API, and returns the data
// dir.
func ingestAll(t *testing.T, history uint64, readers func(addr string, stop <-chan struct{})) (string, *flowsim.Sim) {
	t.Helper()
	cfg := flowsim.DefaultConfig()
	cfg.Seed, cfg.History, cfg.BlockInterval = 7, history, 0
	sim, err := flowsim.Start(context.Background(), "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	// Every one of the 50 clients may be streaming at once: the cap on
	// concurrent streams (429 past it) is TestManySlowExportClients' to
	// show; here every request must be served while ingestion runs.
	d := startDaemon(t, writeConfig(t, dir, fmt.Sprintf(`data_dir: %s
http:
  max_streams: 64
sources:
  - name: %s
    kind: flow
    endpoint: %s
    start_height: 1
`, dataDir, worldFlow, sim.Addr())))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if readers != nil {
			readers(d.addr, stop)
		}
	}()
	d.waitFor("every block", func() bool {
		s := d.source(worldFlow)
		return s.Checkpoint != nil && s.Checkpoint.Height == sim.SealedHeight()
	})
	close(stop)
	<-done
	d.stop()
	return dataDir, sim
}

// TestLoad runs 50 concurrent API clients, at most 20 requests (and their next pages) each and
// none after the ingestion ended, against a daemon ingesting a long Flow
// history as fast as it can:
// no request may fail with a 5xx, and the file may not grow much beyond
// what the same ingestion needs without readers (long read transactions
// would keep freed pages from being reused).
func TestLoad(t *testing.T) {
	const clients = 50
	history, perClient := uint64(15000), 20 // at most 1000 requests, plus up to two more pages each
	if testing.Short() {
		history, perClient = 3000, 8
	}
	quietDir, _ := ingestAll(t, history, nil)
	quietUsed, quietFree := usedBytes(t, quietDir)

	paths := []string{
		"/v1/events?source=" + worldFlow + "&limit=200",
		"/v1/events?source=" + worldFlow + "&order=desc&limit=100",
		"/v1/events?type=" + flowsim.FlowTokenType("TokensDeposited") + "&limit=200",
		"/v1/events?format=ndjson&source=" + worldFlow + "&to_height=1000",
		"/v1/events?format=csv&source=" + worldFlow + "&from_height=1000&to_height=1500",
		"/v1/blocks?source=" + worldFlow + "&limit=500",
		"/v1/rewards?source=" + worldFlow + "&limit=1000",
		"/v1/rewards?format=parquet&source=" + worldFlow,
		"/v1/rewards/summary?group_by=day",
		"/v1/sources",
		"/v1/sources/" + worldFlow + "/coverage",
		"/v1/nodes",
		"/metrics",
		"/healthz",
	}
	var (
		requests, bytesRead atomic.Int64
		during              int64 // requests sent before ingestion ended
		mu                  sync.Mutex
		failures            []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	readers := func(addr string, stop <-chan struct{}) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 60 * time.Second}
		defer client.CloseIdleConnections()
		var wg sync.WaitGroup
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perClient; i++ {
					select {
					case <-stop:
						return
					default:
					}
					path := paths[(c+i)%len(paths)]
					// Follow the cursor of JSON lists for a page or two, as
					// a client paging through history does.
					for page := 0; page < 3 && path != ""; page++ {
						next, err := getOnce(client, "http://"+addr+path, &bytesRead)
						requests.Add(1)
						if err != nil {
							fail("%s: %v", path, err)
							break
						}
						path = next
					}
				}
			}()
		}
		<-stop
		during = requests.Load()
		wg.Wait()
	}
	loadDir, sim := ingestAll(t, history, readers)
	loadUsed, loadFree := usedBytes(t, loadDir)
	for _, f := range failures {
		t.Error(f)
	}
	t.Logf("%d requests (%d MiB) by %d clients, %d of them during the ingestion of %d blocks", requests.Load(), bytesRead.Load()>>20, clients, during, history)
	if during < clients {
		t.Errorf("only %d requests were sent during the ingestion", during)
	}
	t.Logf("pages in use or free: %d KiB with the readers (%d free pages), %d KiB without (%d free)", loadUsed>>10, loadFree, quietUsed>>10, quietFree)
	// Readers that each held their transaction for 150 ms made the file
	// need 20% more; the runs without a problem stay within 2%.
	if loadUsed > quietUsed*11/10+1<<20 {
		t.Errorf("the file needs %d KiB under read load, %d KiB without: readers keep freed pages from reuse", loadUsed>>10, quietUsed>>10)
	}
	st, err := bolt.Open(loadDir, bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	verifyFlow(t, st, sim, sim.SealedHeight())
}

// getOnce sends one GET and reads the whole answer. A 5xx, a transport
// error or a cut body is an error; it returns the path of the next page of
// a JSON list, or "".
func getOnce(client *http.Client, url string, n *atomic.Int64) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	n.Add(int64(len(body)))
	if err != nil {
		return "", fmt.Errorf("status %d, body cut after %d bytes: %w", resp.StatusCode, len(body), err)
	}
	if resp.StatusCode >= 500 {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	var page struct {
		NextCursor string `json:"next_cursor"`
	}
	if resp.Header.Get("Content-Type") == "application/json" && json.Unmarshal(body, &page) == nil && page.NextCursor != "" {
		u := resp.Request.URL
		q := u.Query()
		q.Set("cursor", page.NextCursor)
		return u.Path + "?" + q.Encode(), nil
	}
	return "", nil
}
