package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/evindex/evindex/indexer"
)

// Result is one run's measurements. Rates are events per second unless
// named _hps (heights per second); latencies are milliseconds; sizes are
// bytes.
type Result struct {
	Events        int64  `json:"events"`         // in the query databases
	Heights       uint64 `json:"heights"`        // of the query databases
	IngestEvents  int64  `json:"ingest_events"`  // moved by each ingestion phase
	IngestHeights uint64 `json:"ingest_heights"` // ...in this many heights

	StreamEPS      float64 `json:"stream_eps"`        // (a) node -> gRPC client, decoded, discarded
	StoreEPS       float64 `json:"store_eps"`         // (b) store.Apply of pre-built batches, fsync per commit
	E2EEPS         float64 `json:"e2e_eps"`           // node -> Flow source -> Runner -> bbolt
	E2ERatio       float64 `json:"e2e_ratio"`         // e2e / min(stream, store)
	FloorEPS       float64 `json:"floor_eps"`         // bbolt alone replaying Apply's writes, same transactions, fsync per commit
	ApplyFloor     float64 `json:"apply_floor_ratio"` // store / floor
	E2EFloor       float64 `json:"e2e_floor_ratio"`   // e2e / min(stream, floor)
	SQLiteEPS      float64 `json:"sqlite_eps"`        // node -> Flow source -> SQLite, batched alike
	SQLiteStoreEPS float64 `json:"sqlite_store_eps"`  // SQLite writer on the pre-built batches
	DecodeEPS      float64 `json:"decode_eps"`        // the Flow source alone (stream + decoder), no store
	PGStoreEPS     float64 `json:"pg_store_eps"`      // PostgreSQL Apply of the pre-built batches
	PGE2EEPS       float64 `json:"pg_e2e_eps"`        // node -> Flow source -> Runner (leased) -> PostgreSQL
	E2EGoGCEPS     float64 `json:"e2e_go_gc_eps"`     // end to end under Go's default GC (GOGC=100, no memory limit)
	E2ECores       float64 `json:"e2e_cores"`         // CPU busy during end to end (indexer + simulator), in cores
	BackfillCores  float64 `json:"backfill_cores"`    // CPU busy during the parallel backfill, in cores

	BackfillEPS           float64 `json:"backfill_eps"`
	BackfillSequentialEPS float64 `json:"backfill_sequential_eps"`
	BackfillTheoryEPS     float64 `json:"backfill_theory_eps"`
	BackfillHPS           float64 `json:"backfill_hps"`
	BackfillSequentialHPS float64 `json:"backfill_sequential_hps"`
	BackfillTheoryHPS     float64 `json:"backfill_theory_hps"`
	BackfillNoStoreHPS    float64 `json:"backfill_nostore_hps"` // the same backfill into a sink that drops the batches
	BackfillNodeHPS       float64 `json:"backfill_node_hps"`    // the same range calls with no source, answers dropped unread
	BackfillNodeRatio     float64 `json:"backfill_node_ratio"`  // BackfillNodeHPS / theory
	BackfillMaxInFlight   int     `json:"backfill_max_in_flight"`
	BackfillWorkers       int     `json:"backfill_workers"`
	BackfillLatencyMS     float64 `json:"backfill_latency_ms"`

	QueryP50MS       map[string]float64 `json:"query_p50_ms"`
	QueryP99MS       map[string]float64 `json:"query_p99_ms"`
	SQLiteQueryP50MS map[string]float64 `json:"sqlite_query_p50_ms"`
	SQLiteQueryP99MS map[string]float64 `json:"sqlite_query_p99_ms"`
	PGQueryP50MS     map[string]float64 `json:"pg_query_p50_ms"`
	PGQueryP99MS     map[string]float64 `json:"pg_query_p99_ms"`
	QuerySamples     int                `json:"query_samples"`

	ResumeMS        float64 `json:"resume_ms"`         // process start -> first new event committed
	ResumeOpenMS    float64 `json:"resume_open_ms"`    // of which opening the store
	PeakRSSMB       float64 `json:"peak_rss_mb"`       // VmHWM of the end-to-end ingestion process
	GoGCPeakRSSMB   float64 `json:"go_gc_peak_rss_mb"` // ...of the same under Go's default GC
	MemoryLimitMB   int     `json:"memory_limit_mb"`   // the budget end to end ran under
	GCPercent       int     `json:"gc_percent"`
	SQLitePeakRSSMB float64 `json:"sqlite_peak_rss_mb"`
	PGPeakRSSMB     float64 `json:"pg_peak_rss_mb"` // of the evindex process; the server's memory is not counted
	ResumePeakRSSMB float64 `json:"resume_peak_rss_mb"`

	DBBytesPerEvent      float64 `json:"db_bytes_per_event"`
	PayloadBytesPerEvent float64 `json:"payload_bytes_per_event"` // JSON-CDC as the node sends it
	SQLiteBytesPerEvent  float64 `json:"sqlite_bytes_per_event"`
	PGBytesPerEvent      float64 `json:"pg_bytes_per_event"` // pg_database_size after a checkpoint, less the empty database
	// DBBytesByBucket splits the evindex file's allocated pages per event
	// by bucket.
	DBBytesByBucket map[string]float64 `json:"db_bytes_by_bucket"`
	PeakAnonMB      float64            `json:"peak_anon_mb"` // largest sampled heap RSS of the ingestion process

	Targets []Target `json:"targets"`
	Notes   []string `json:"notes,omitempty"`

	SQLiteDriver string  `json:"sqlite_driver"`
	Cores        int     `json:"cores"`
	GoVersion    string  `json:"go_version"`
	Seconds      float64 `json:"seconds"`
}

// Target is one goal of the issue, met or missed, with the numbers.
type Target struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Unit string  `json:"unit"`
	Met  bool    `json:"met"`
}

func newResult(cfg Config) *Result {
	return &Result{
		QueryP50MS: map[string]float64{}, QueryP99MS: map[string]float64{},
		SQLiteQueryP50MS: map[string]float64{}, SQLiteQueryP99MS: map[string]float64{},
		PGQueryP50MS: map[string]float64{}, PGQueryP99MS: map[string]float64{},
		DBBytesByBucket:   map[string]float64{},
		QuerySamples:      cfg.QuerySamples,
		BackfillWorkers:   cfg.BackfillWorkers,
		BackfillLatencyMS: float64(cfg.BackfillLatency.Microseconds()) / 1000,
		SQLiteDriver:      sqliteDriverName,
		Cores:             runtime.NumCPU(),
		MemoryLimitMB:     indexer.DefaultMemoryLimitMB,
		GCPercent:         indexer.DefaultGCPercent,
		GoVersion:         runtime.Version(),
	}
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// finish computes the ratios and judges the targets.
func (r *Result) finish(took time.Duration) {
	r.Seconds = took.Seconds()
	if lim := math.Min(r.StreamEPS, r.StoreEPS); lim > 0 {
		r.E2ERatio = r.E2EEPS / lim
	}
	add := func(name, want string, got float64, unit string, met bool) {
		r.Targets = append(r.Targets, Target{name, want, got, unit, met})
	}
	if r.FloorEPS > 0 {
		r.ApplyFloor = r.StoreEPS / r.FloorEPS
		if lim := math.Min(r.StreamEPS, r.FloorEPS); lim > 0 {
			r.E2EFloor = r.E2EEPS / lim
		}
	}
	add("raw store vs floor (bbolt alone, Apply's writes)", ">= 0.8 x", r.ApplyFloor, "x", r.ApplyFloor >= 0.8)
	add("end to end vs min(raw stream, floor)", ">= 0.75 x", r.E2EFloor, "x", r.E2EFloor >= 0.75)
	add("end to end vs min(raw stream, raw store)", ">= 0.75 x", r.E2ERatio, "x", r.E2ERatio >= 0.75)
	sq := 0.0
	if r.SQLiteEPS > 0 {
		sq = r.E2EEPS / r.SQLiteEPS
	}
	add("end to end vs SQLite peer end to end", ">= 1.5 x", sq, "x", sq >= 1.5)
	for _, q := range queryNames {
		what := " (100-row page)"
		if q == querySummary {
			what = " (a year by day)"
		}
		add("p99 "+q+what, "<= 5 ms", r.QueryP99MS[q], "ms", r.QueryP99MS[q] <= 5)
	}
	for _, q := range queryNames {
		add("p99 "+q+" vs SQLite", "faster", r.SQLiteQueryP99MS[q]/math.Max(r.QueryP99MS[q], 1e-9), "x", r.QueryP99MS[q] < r.SQLiteQueryP99MS[q])
	}
	bf, node := 0.0, 0.0
	if r.BackfillTheoryHPS > 0 {
		bf = r.BackfillHPS / r.BackfillTheoryHPS
		node = r.BackfillNodeHPS / r.BackfillTheoryHPS
	}
	add("parallel backfill vs workers x 250 / latency", ">= 0.85 x", bf, "x", bf >= 0.85)
	// Not a target of evindex's: the bound the simulated node itself
	// imposes, shown so a miss above can be told apart from the harness.
	r.BackfillNodeRatio = node
	add("resume to first new event", "<= 1000 ms", r.ResumeMS, "ms", r.ResumeMS <= 1000)
	add("peak RSS during ingestion", "<= 256 MB", r.PeakRSSMB, "MB", r.PeakRSSMB <= 256)
	size := 0.0
	if r.PayloadBytesPerEvent > 0 {
		size = r.DBBytesPerEvent / r.PayloadBytesPerEvent
	}
	add("DB bytes vs payload bytes", "<= 2 x", size, "x", size <= 2)
	if r.PGE2EEPS == 0 {
		return // PostgreSQL not measured (a note says why)
	}
	pgSQ, pgBolt := 0.0, 0.0
	if r.SQLiteEPS > 0 {
		pgSQ = r.PGE2EEPS / r.SQLiteEPS
	}
	if r.E2EEPS > 0 {
		pgBolt = r.PGE2EEPS / r.E2EEPS
	}
	add("PostgreSQL end to end vs SQLite peer end to end", ">= 1.0 x", pgSQ, "x", pgSQ >= 1)
	add("PostgreSQL end to end vs bbolt end to end", ">= 0.4 x", pgBolt, "x", pgBolt >= 0.4)
	for _, q := range queryNames {
		add("PostgreSQL p99 "+q, "<= 10 ms", r.PGQueryP99MS[q], "ms", r.PGQueryP99MS[q] <= 10)
	}
}

// WriteJSON prints the result as one JSON object.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func metWord(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// WriteTable prints the result for people.
func (r *Result) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "evbench: %d events in the query databases (%d heights); ingestion phases move %d events (%d heights)\n",
		r.Events, r.Heights, r.IngestEvents, r.IngestHeights)
	fmt.Fprintf(&b, "%d cores, %s, SQLite peer: %s; run took %.0f s\n\n", r.Cores, r.GoVersion, r.SQLiteDriver, r.Seconds)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ingestion\tevents/s\t")
	fmt.Fprintf(tw, "(a) raw stream: flowsim -> gRPC client, decoded, discarded\t%.0f\t\n", r.StreamEPS)
	fmt.Fprintf(tw, "(b) raw store: store.Apply of pre-built batches, fsync per commit\t%.0f\t\n", r.StoreEPS)
	fmt.Fprintf(tw, "(f) floor: bbolt alone replaying Apply's writes, same transactions, fsync per commit\t%.0f\t\n", r.FloorEPS)
	fmt.Fprintf(tw, "  raw store / floor\t%.2f\t\n", r.ApplyFloor)
	fmt.Fprintf(tw, "end to end: flowsim -> Flow source -> Runner -> bbolt\t%.0f\t\n", r.E2EEPS)
	fmt.Fprintf(tw, "  ratio to min(a, b)\t%.2f\t\n", r.E2ERatio)
	fmt.Fprintf(tw, "  ratio to min(a, f)\t%.2f\t\n", r.E2EFloor)
	fmt.Fprintf(tw, "  CPU busy meanwhile, indexer + simulator (cores)\t%.2f\t\n", r.E2ECores)
	fmt.Fprintf(tw, "  peak RSS (VmHWM), memory limit %d MiB, GC percent %d\t%.0f MB\t\n", r.MemoryLimitMB, r.GCPercent, r.PeakRSSMB)
	fmt.Fprintf(tw, "end to end under Go's default GC (GOGC=100, no limit)\t%.0f\t\n", r.E2EGoGCEPS)
	fmt.Fprintf(tw, "  peak RSS (VmHWM)\t%.0f MB\t\n", r.GoGCPeakRSSMB)
	fmt.Fprintf(tw, "Flow source alone: stream + decoder, no store\t%.0f\t\n", r.DecodeEPS)
	fmt.Fprintf(tw, "SQLite peer end to end: flowsim -> Flow source -> SQLite\t%.0f\t\n", r.SQLiteEPS)
	fmt.Fprintf(tw, "SQLite writer on the pre-built batches\t%.0f\t\n", r.SQLiteStoreEPS)
	if r.PGE2EEPS > 0 {
		fmt.Fprintf(tw, "PostgreSQL end to end: flowsim -> Flow source -> Runner (leased) -> PostgreSQL\t%.0f\t\n", r.PGE2EEPS)
		fmt.Fprintf(tw, "PostgreSQL Apply of the pre-built batches\t%.0f\t\n", r.PGStoreEPS)
	}
	tw.Flush()

	fmt.Fprintf(&b, "\nbackfill (GetEventsForHeightRange, %.0f ms per call, 250 heights per call)\n", r.BackfillLatencyMS)
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\theights/s\tevents/s\t")
	fmt.Fprintf(tw, "%d workers\t%.0f\t%.0f\t\n", r.BackfillWorkers, r.BackfillHPS, r.BackfillEPS)
	fmt.Fprintf(tw, "%d workers, batches dropped instead of stored\t%.0f\t\t\n", r.BackfillWorkers, r.BackfillNoStoreHPS)
	fmt.Fprintf(tw, "the node alone: the same calls, %d in flight, answers dropped unread\t%.0f\t\t\n", r.BackfillWorkers, r.BackfillNodeHPS)
	fmt.Fprintf(tw, "one request at a time\t%.0f\t%.0f\t\n", r.BackfillSequentialHPS, r.BackfillSequentialEPS)
	fmt.Fprintf(tw, "theory: workers x 250 / latency\t%.0f\t%.0f\t\n", r.BackfillTheoryHPS, r.BackfillTheoryEPS)
	tw.Flush()
	fmt.Fprintf(&b, "CPU busy during the parallel backfill (source, store and simulator): %.2f cores; at most %d calls in flight\n", r.BackfillCores, r.BackfillMaxInFlight)
	fmt.Fprintf(&b, "ratio to theory: %d workers %.2f, the node alone %.2f (the bound this harness imposes on any client)\n",
		r.BackfillWorkers, r.BackfillHPS/math.Max(r.BackfillTheoryHPS, 1e-9), r.BackfillNodeRatio)

	fmt.Fprintf(&b, "\nqueries over HTTP on loopback at %d events, %d samples each (ms)\n", r.Events, r.QuerySamples)
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tevindex p50\tevindex p99\tSQLite p50\tSQLite p99\tPostgreSQL p50\tPostgreSQL p99\t")
	for _, q := range queryNames {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", q, r.QueryP50MS[q], r.QueryP99MS[q], r.SQLiteQueryP50MS[q], r.SQLiteQueryP99MS[q],
			r.PGQueryP50MS[q], r.PGQueryP99MS[q])
	}
	tw.Flush()

	fmt.Fprintln(&b)
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "resume: process start -> first new event committed\t%.0f ms\t(store open %.1f ms)\t\n", r.ResumeMS, r.ResumeOpenMS)
	fmt.Fprintf(tw, "peak RSS (VmHWM) of the end-to-end ingestion process\t%.0f MB\t(of it heap, sampled: %.0f MB)\t\n", r.PeakRSSMB, r.PeakAnonMB)
	fmt.Fprintf(tw, "peak RSS of the resume process (large DB)\t%.0f MB\t\t\n", r.ResumePeakRSSMB)
	fmt.Fprintf(tw, "peak RSS of the SQLite ingestion process\t%.0f MB\t\t\n", r.SQLitePeakRSSMB)
	fmt.Fprintf(tw, "evindex DB bytes per event\t%.0f\t\t\n", r.DBBytesPerEvent)
	fmt.Fprintf(tw, "SQLite DB bytes per event\t%.0f\t\t\n", r.SQLiteBytesPerEvent)
	fmt.Fprintf(tw, "PostgreSQL DB bytes per event\t%.0f\t\t\n", r.PGBytesPerEvent)
	fmt.Fprintf(tw, "peak RSS of the PostgreSQL ingestion process (evindex only)\t%.0f MB\t\t\n", r.PGPeakRSSMB)
	fmt.Fprintf(tw, "payload bytes per event (JSON-CDC as sent)\t%.0f\t\t\n", r.PayloadBytesPerEvent)
	tw.Flush()
	if len(r.DBBytesByBucket) > 0 {
		names := slices.Sorted(maps.Keys(r.DBBytesByBucket))
		slices.SortStableFunc(names, func(a, b string) int { return cmp.Compare(r.DBBytesByBucket[b], r.DBBytesByBucket[a]) })
		fmt.Fprint(&b, "evindex bytes per event by bucket:")
		for _, n := range names {
			if v := r.DBBytesByBucket[n]; v >= 0.5 {
				fmt.Fprintf(&b, " %s %.0f", n, v)
			}
		}
		fmt.Fprintln(&b)
	}

	fmt.Fprintln(&b, "\ntargets")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, t := range r.Targets {
		fmt.Fprintf(tw, "  %s\t%s\t%.2f %s\t%s\n", t.Name, t.Want, t.Got, t.Unit, metWord(t.Met))
	}
	tw.Flush()

	fmt.Fprintln(&b, "\nhow it was measured")
	for _, line := range methodNotes {
		fmt.Fprintf(&b, "  - %s\n", line)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  ! %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

var methodNotes = []string{
	"All data comes from flowsim's deterministic chain (realistic JSON-CDC payloads: FlowToken, NFT, FlowFees and staking events over 8 accounts and 5 staking nodes), decoded by the Flow source itself.",
	"flowsim encodes the stream responses of the heights the ingestion phases read once, before the first phase (PrecomputeBlocks), so building blocks does not take the cores from what is measured; the fill streams the later heights as built.",
	"Ingestion phases each run in a child process (evbench -phase ...) so each peak RSS (VmHWM, including mapped DB pages) is that phase's own; flowsim runs in the parent.",
	"End to end, the raw stores and the SQLite peer run under evindex run's default memory budget (memory.limit_mb, memory.gc_percent: Go's soft memory limit with a higher GC percent); end to end runs once more under Go's defaults (GOGC=100, no limit) for comparison.",
	"End to end and the SQLite peer batch alike (5000 records or 100 ms per transaction). bbolt fsyncs every commit; SQLite runs WAL with synchronous=NORMAL, which does not fsync a commit.",
	"Raw store rates time only the Apply calls; the batches are decoded from a file between calls.",
	"Floor: the keys and values store.Apply wrote for the same pre-built batches (recorded through bolt.Options.RecordWrites in an untimed run) replayed as plain bbolt Puts and Deletes in the same transactions, into a file with the same schema, free-list type, growth step and fill percents; only the Update calls are timed.",
	"The query databases start with the end-to-end data and are filled to N through store.Apply with NoSync (and SQLite with synchronous=OFF): bulk fill only, not timed.",
	"Queries: the same random 100-row pages (random type, address or height) against both, alternating, after a warm-up; the summary is one staking node's year by day.",
	"Backfill lifts the source's requests_per_second limit (default 50, for public nodes) so the workers' rate shows; theory events/s is theory heights/s x the measured events per height.",
	"Backfill's node encodes the answers to the source's range calls ahead (flowsim PrecomputeRanges; a real node reads stored events), so flowsim building blocks does not count against the client; the node alone makes the same calls without a source, one connection per worker, and drops each answer unread.",
	"PostgreSQL: a PostgreSQL 15 server on this machine with its default settings (fsync and synchronous_commit on, shared_buffers 128 MB), reached over loopback TCP; the end-to-end process holds the source's lease, so every commit is fenced as in a shared deployment. Its query database is filled like the others.",
	"Resume: a new process opens the full query database and resumes the Flow source with 1000+ new blocks waiting; timed by the parent from process start to the first committed new event.",
}
