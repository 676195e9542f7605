package main

import (
	"bufio"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/indexer/flow"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
)

// Each measured ingestion phase runs in a child process of its own (this
// binary with -phase), so the peak RSS it reports (VmHWM) is that phase's
// alone and no heap of another phase slows its garbage collector. The
// simulated access node stays in the parent: it is the upstream, not part
// of the indexer.

// phaseResult is what a child prints as its last stdout line.
type phaseResult struct {
	Events    int64   `json:"events"`
	Seconds   float64 `json:"seconds"`
	Height    uint64  `json:"height"`
	PeakRSSKB int64   `json:"peak_rss_kb"`
	RSSAnonKB int64   `json:"rss_anon_kb"`
	RSSFileKB int64   `json:"rss_file_kb"`
	// PeakAnonKB is the largest sampled RssAnon (heap without mapped files).
	PeakAnonKB int64   `json:"peak_anon_kb"`
	CPUSeconds float64 `json:"cpu_seconds"`
	OpenMS     float64 `json:"open_ms,omitempty"`
	// FirstEvent is set on the early line of the resume phase.
	FirstEvent   bool    `json:"first_event,omitempty"`
	FirstEventMS float64 `json:"first_event_ms,omitempty"`
}

// stallTimeout ends a phase whose checkpoint stopped moving.
const stallTimeout = 60 * time.Second

func runPhase(ctx context.Context, ph phaseArgs, stdout io.Writer) error {
	var (
		res phaseResult
		err error
	)
	stopSampling := anonPeak(20 * time.Millisecond)
	stopProfile, err := startProfile(ph.Profile, ph.Name, true)
	if err != nil {
		return err
	}
	switch ph.Name {
	case "ingest", "ingest-go-gc":
		res, err = phaseIngest(ctx, ph)
	case "sqlite-ingest":
		res, err = phaseSQLiteIngest(ctx, ph)
	case "store":
		res, err = phaseStore(ctx, ph)
	case "sqlite-store":
		res, err = phaseSQLiteStore(ctx, ph)
	case "resume":
		res, err = phaseResume(ctx, ph, stdout)
	case "pg-store":
		res, err = phasePGStore(ctx, ph)
	case "pg-ingest":
		res, err = phasePGIngest(ctx, ph)
	case "floor-capture":
		res, err = phaseFloorCapture(ctx, ph)
	case "floor":
		res, err = phaseFloor(ctx, ph)
	default:
		return fmt.Errorf("%w: -phase: unknown phase %q", errUsage, ph.Name)
	}
	if err != nil {
		stopProfile()
		return fmt.Errorf("phase %s: %w", ph.Name, err)
	}
	if err := stopProfile(); err != nil {
		return fmt.Errorf("phase %s: %w", ph.Name, err)
	}
	mem := readMemory()
	res.PeakRSSKB, res.RSSAnonKB, res.RSSFileKB = mem.HWM, mem.Anon, mem.File
	res.PeakAnonKB = stopSampling()
	res.CPUSeconds = cpuSeconds()
	return json.NewEncoder(stdout).Encode(res)
}

func counterValue(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil || m.Counter == nil {
		return 0
	}
	return m.Counter.GetValue()
}

// phaseIngest is the end-to-end path: the Flow source under the Runner,
// committing to a bbolt store with its default settings (fsync on every
// commit), from height 1 until the checkpoint reaches ToHeight.
//
// It runs under evindex run's default memory budget (Go's soft memory
// limit with a higher GC percent); as ingest-go-gc, under Go's defaults
// (GOGC=100, no limit), which shows what the budget buys.
func phaseIngest(ctx context.Context, ph phaseArgs) (phaseResult, error) {
	if ph.Name == "ingest" {
		defer indexer.SetMemoryBudget(indexer.DefaultMemoryLimitMB, indexer.DefaultGCPercent)()
	}
	st, err := bolt.Open(ph.Dir, bolt.Options{})
	if err != nil {
		return phaseResult{}, err
	}
	defer st.Close()
	return ingestPhase(ctx, ph, st, nil)
}

// waitCommitted polls progress until the committed height reaches to and
// returns the events committed by then and when that was observed.
func waitCommitted(ctx context.Context, errc <-chan error, to uint64, progress func() (uint64, float64), every time.Duration) (phaseResult, time.Time, error) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	last, lastMove := uint64(0), time.Now()
	for {
		select {
		case <-ctx.Done():
			return phaseResult{}, time.Time{}, ctx.Err()
		case err := <-errc:
			if err == nil {
				err = errors.New("stopped early")
			}
			return phaseResult{}, time.Time{}, fmt.Errorf("ingestion stopped at height %d: %w", last, err)
		case <-tick.C:
		}
		h, events := progress()
		now := time.Now()
		if h >= to {
			return phaseResult{Events: int64(events), Height: h}, now, nil
		}
		if h != last {
			last, lastMove = h, now
		} else if now.Sub(lastMove) > stallTimeout {
			return phaseResult{}, time.Time{}, fmt.Errorf("no progress for %v at height %d", stallTimeout, h)
		}
	}
}

// phaseSQLiteIngest is the peer's end-to-end path: the same Flow source,
// batched the same way, committing to SQLite.
func phaseSQLiteIngest(ctx context.Context, ph phaseArgs) (phaseResult, error) {
	defer indexer.SetMemoryBudget(indexer.DefaultMemoryLimitMB, indexer.DefaultGCPercent)()
	db, err := openSQLite(filepath.Join(ph.Dir, sqliteFileName), false)
	if err != nil {
		return phaseResult{}, err
	}
	defer db.Close()
	w, err := newSQLiteWriter(db)
	if err != nil {
		return phaseResult{}, err
	}
	defer w.Close()
	var (
		done   = make(chan struct{})
		result phaseResult
		events int64
	)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	sink := newGroupSink(func(ctx context.Context, group []store.Batch) error {
		if err := w.Apply(ctx, group...); err != nil {
			return err
		}
		for i := range group {
			events += int64(len(group[i].Events))
			if cp := group[i].Checkpoint; cp != nil && cp.Height >= ph.ToHeight && result.Height == 0 {
				result = phaseResult{Events: events, Height: cp.Height, Seconds: time.Since(start).Seconds()}
				close(done)
			}
		}
		return nil
	}, cancel)
	sink.maxDelay = batchMaxDelay
	sink.stopHeight = ph.ToHeight
	if err := runFlow(rctx, ph.Addr, 1, sink); err != nil {
		return phaseResult{}, err
	}
	select {
	case <-done:
		return result, nil
	default:
		return phaseResult{}, errors.New("the stream ended before the target height")
	}
}

// runFlow runs the Flow source from height from into sink until the sink
// stops it or ctx ends.
func runFlow(ctx context.Context, addr string, from uint64, sink *groupSink) error {
	src, err := flow.New(flow.Config{Name: sourceName, Endpoint: addr})
	if err != nil {
		return fmt.Errorf("flow source: %w", err)
	}
	resume := indexer.Resume{
		Checkpoint: store.Checkpoint{Height: from - 1},
		Found:      true,
		State:      func(string) ([]byte, error) { return nil, nil },
	}
	runErr := src.Run(ctx, resume, sink)
	if err := sink.finish(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	if runErr != nil {
		return fmt.Errorf("flow source: %w", runErr)
	}
	return nil
}

// readGroups decodes the pre-built transaction groups of file one at a
// time; only fn's time is measured by the callers.
func readGroups(file string, fn func([]store.Batch) error) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("open batches: %w", err)
	}
	defer f.Close()
	dec := gob.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	for {
		var group []store.Batch
		if err := dec.Decode(&group); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read batches: %w", err)
		}
		if err := fn(group); err != nil {
			return err
		}
	}
}

func countEvents(group []store.Batch) (n int64) {
	for i := range group {
		n += int64(len(group[i].Events))
	}
	return n
}

// phaseStore is the raw store: Apply of the pre-built groups, fsync on
// every commit as in production, no network and no decoding in the
// measured time.
//
// It runs under evindex run's memory budget, as end to end does, so the
// ratio to the floor is the store's code and not a collector setting.
func phaseStore(ctx context.Context, ph phaseArgs) (phaseResult, error) {
	defer indexer.SetMemoryBudget(indexer.DefaultMemoryLimitMB, indexer.DefaultGCPercent)()
	st, err := bolt.Open(ph.Dir, bolt.Options{})
	if err != nil {
		return phaseResult{}, err
	}
	defer st.Close()
	return timeApply(ctx, ph.File, st.Apply)
}

// timeApply feeds the pre-built groups in file to apply and times only the
// apply calls, not reading the file between them.
func timeApply(ctx context.Context, file string, apply func(context.Context, ...store.Batch) error) (phaseResult, error) {
	var res phaseResult
	var busy time.Duration
	err := readGroups(file, func(group []store.Batch) error {
		t := time.Now()
		if err := apply(ctx, group...); err != nil {
			return err
		}
		busy += time.Since(t)
		res.Events += countEvents(group)
		return nil
	})
	res.Seconds = busy.Seconds()
	return res, err
}

// phaseSQLiteStore is the same for the SQLite peer.
func phaseSQLiteStore(ctx context.Context, ph phaseArgs) (phaseResult, error) {
	defer indexer.SetMemoryBudget(indexer.DefaultMemoryLimitMB, indexer.DefaultGCPercent)()
	db, err := openSQLite(filepath.Join(ph.Dir, sqliteFileName), false)
	if err != nil {
		return phaseResult{}, err
	}
	defer db.Close()
	w, err := newSQLiteWriter(db)
	if err != nil {
		return phaseResult{}, err
	}
	defer w.Close()
	return timeApply(ctx, ph.File, w.Apply)
}

// phaseResume opens an existing database, starts the Runner against the
// node and prints an early line as soon as the first new event is
// committed; the parent times the whole process from its start to that
// line.
func phaseResume(ctx context.Context, ph phaseArgs, stdout io.Writer) (phaseResult, error) {
	start := time.Now()
	st, err := bolt.Open(ph.Dir, bolt.Options{})
	if err != nil {
		return phaseResult{}, err
	}
	defer st.Close()
	openMS := float64(time.Since(start).Microseconds()) / 1000
	src, err := flow.New(flow.Config{Name: sourceName, Endpoint: ph.Addr})
	if err != nil {
		return phaseResult{}, fmt.Errorf("flow source: %w", err)
	}
	m := indexer.NewMetrics(nil)
	r := indexer.NewRunner(st, src, indexer.RunnerConfig{
		BatchMaxRecords: batchMaxRecords, BatchMaxDelay: batchMaxDelay, Logger: zerolog.Nop(), Metrics: m})
	events := m.EventsCommitted.WithLabelValues(sourceName)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- r.Run(rctx) }()
	res, at, err := waitCommitted(ctx, errc, 1, func() (uint64, float64) {
		n := counterValue(events)
		if n > 0 {
			return 1, n
		}
		return 0, 0
	}, 250*time.Microsecond)
	if err != nil {
		cancel()
		<-errc
		return phaseResult{}, err
	}
	res.FirstEvent = true
	res.OpenMS = openMS
	res.FirstEventMS = float64(at.Sub(start).Microseconds()) / 1000
	if cp := r.Status().Checkpoint; cp != nil {
		res.Height = cp.Height
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		return phaseResult{}, err
	}
	cancel()
	<-errc
	res.FirstEvent = false
	return res, nil
}

// runChild runs this binary with the phase flags and returns the last
// JSON line it printed; onLine sees every line as it arrives.
func runChild(ctx context.Context, stderr io.Writer, ph phaseArgs, onLine func(phaseResult)) (phaseResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return phaseResult{}, fmt.Errorf("find own binary: %w", err)
	}
	args := []string{"-phase", ph.Name, "-phase-dir", ph.Dir, "-phase-addr", ph.Addr,
		"-phase-file", ph.File, "-phase-to-height", fmt.Sprint(ph.ToHeight), "-phase-dsn", ph.DSN, "-phase-out", ph.Out,
		"-phase-profile", profileDir}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return phaseResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return phaseResult{}, fmt.Errorf("start phase %s: %w", ph.Name, err)
	}
	var last phaseResult
	got := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var r phaseResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue
		}
		if onLine != nil {
			onLine(r)
		}
		last, got = r, true
	}
	if err := cmd.Wait(); err != nil {
		return phaseResult{}, fmt.Errorf("phase %s: %w", ph.Name, err)
	}
	if !got {
		return phaseResult{}, fmt.Errorf("phase %s: no result", ph.Name)
	}
	return last, nil
}

// childEnv marks a child process; the test binary uses it to run the
// phase instead of the tests.
const childEnv = "EVBENCH_CHILD"

const sqliteFileName = "peer.sqlite"
