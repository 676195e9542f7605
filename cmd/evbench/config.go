package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/evindex/evindex/indexer/flow"
	"github.com/evindex/evindex/indexer/flow/flowsim"
)

// Config sizes one benchmark run. DefaultConfig is the standard run; tests
// build a small one directly.
type Config struct {
	// Events is the size of the query database (N).
	Events int64
	// IngestEvents is how many events the ingestion phases (raw stream,
	// raw store, end to end, SQLite) move; at most Events.
	IngestEvents int64
	// QuerySamples is the number of timed requests per query and system.
	QuerySamples int
	// BackfillHeights and BackfillSequentialHeights are the history
	// lengths of the parallel and the one-request-at-a-time backfill.
	BackfillHeights           uint64
	BackfillSequentialHeights uint64
	// BackfillWorkers is the number of range calls in flight.
	BackfillWorkers int
	// BackfillLatency is added by the simulated node to every range call.
	BackfillLatency time.Duration
	// BackfillType is the event type the backfill fetches.
	BackfillType string
	// Seed determines the generated chain.
	Seed int64
	// Dir holds the databases; empty means a temporary directory that is
	// removed at the end.
	Dir string
	// Keep leaves the databases in Dir after the run.
	Keep bool
	// JSON prints one JSON object instead of the table.
	JSON bool
	// PostgresDSN is a PostgreSQL server to measure on (evbench creates
	// and drops databases named evbench_* there); empty: a throwaway
	// server when the binaries are installed.
	PostgresDSN string
	// ProfileDir, when set, receives a CPU and an allocation profile of
	// every measured child phase and a CPU profile of evbench itself
	// (which runs the simulated node), for `go tool pprof`.
	ProfileDir string
}

// DefaultConfig is the standard run: 2,000,000 events in the query
// databases, 500,000 through each ingestion path.
func DefaultConfig() Config {
	return Config{
		Events:                    2_000_000,
		IngestEvents:              500_000,
		QuerySamples:              500,
		BackfillHeights:           150_000,
		BackfillSequentialHeights: 25_000,
		BackfillWorkers:           4,
		BackfillLatency:           20 * time.Millisecond,
		BackfillType:              flowsim.FlowTokenType("TokensDeposited"),
		Seed:                      1,
	}
}

// Validate checks the sizes; the error names the flag. It caps
// IngestEvents at Events.
func (c *Config) Validate() error {
	switch {
	case c.Events < 100:
		return fmt.Errorf("-events: %d is too small (at least 100)", c.Events)
	case c.IngestEvents < 100:
		return fmt.Errorf("-ingest-events: %d is too small (at least 100)", c.IngestEvents)
	case c.QuerySamples < 10:
		return fmt.Errorf("-query-samples: %d is too few for a p99 (at least 10)", c.QuerySamples)
	case c.BackfillHeights <= flow.DefaultBackfillDistance:
		return fmt.Errorf("-backfill-heights: %d must exceed %d, below which the source streams instead of backfilling", c.BackfillHeights, flow.DefaultBackfillDistance)
	case c.BackfillSequentialHeights <= flow.DefaultBackfillDistance:
		return fmt.Errorf("-backfill-sequential-heights: %d must exceed %d, below which the source streams instead of backfilling", c.BackfillSequentialHeights, flow.DefaultBackfillDistance)
	case c.BackfillWorkers < 1 || c.BackfillWorkers > 64:
		return fmt.Errorf("-backfill-workers: %d must be between 1 and 64", c.BackfillWorkers)
	case c.BackfillLatency <= 0:
		return fmt.Errorf("-backfill-latency: %v must be positive (the theoretical rate divides by it)", c.BackfillLatency)
	case c.BackfillType == "":
		return errors.New("-backfill-type: required")
	}
	if c.IngestEvents > c.Events {
		c.IngestEvents = c.Events
	}
	return nil
}

// phaseArgs are the flags of a child process that runs one measured phase.
type phaseArgs struct {
	Name     string
	Dir      string
	Addr     string
	File     string
	ToHeight uint64
	DSN      string
	// Out is a file the phase writes (floor-capture: Apply's writes).
	Out string
	// Profile is the directory for the phase's profiles; empty: none.
	Profile string
}

func parseFlags(args []string, stderr io.Writer) (Config, phaseArgs, error) {
	cfg := DefaultConfig()
	var ph phaseArgs
	fs := flag.NewFlagSet("evbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: evbench [flags]\n\nMeasures evindex against the raw stream, the raw store and SQLite on the same generated Flow data.\n\n")
		fs.PrintDefaults()
	}
	fs.Int64Var(&cfg.Events, "events", cfg.Events, "events in the query databases (N); -events 10000000 for the large run")
	fs.Int64Var(&cfg.IngestEvents, "ingest-events", cfg.IngestEvents, "events moved by each ingestion phase (at most -events)")
	fs.IntVar(&cfg.QuerySamples, "query-samples", cfg.QuerySamples, "timed requests per query and system")
	fs.Uint64Var(&cfg.BackfillHeights, "backfill-heights", cfg.BackfillHeights, "heights fetched by the parallel backfill")
	fs.Uint64Var(&cfg.BackfillSequentialHeights, "backfill-sequential-heights", cfg.BackfillSequentialHeights, "heights fetched by the one-request-at-a-time backfill")
	fs.IntVar(&cfg.BackfillWorkers, "backfill-workers", cfg.BackfillWorkers, "range calls in flight during the parallel backfill")
	fs.DurationVar(&cfg.BackfillLatency, "backfill-latency", cfg.BackfillLatency, "simulated latency of every GetEventsForHeightRange call")
	fs.StringVar(&cfg.BackfillType, "backfill-type", cfg.BackfillType, "event type the backfill fetches")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the generated chain")
	fs.StringVar(&cfg.Dir, "dir", "", "directory for the databases (default: a temporary one, removed afterwards)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the databases after the run")
	fs.BoolVar(&cfg.JSON, "json", false, "print one JSON object instead of the table")
	fs.StringVar(&cfg.ProfileDir, "profile", "", "directory for pprof profiles: CPU and allocations of each measured phase (<phase>.cpu.pprof, <phase>.alloc.pprof) and CPU of evbench itself, which runs the simulated node (evbench.cpu.pprof)")
	fs.StringVar(&cfg.PostgresDSN, "pg-dsn", "", "PostgreSQL server to measure on, as postgres://user@host:port/db (evbench creates and drops evbench_* databases there); default: a throwaway PostgreSQL 15 when installed")
	// The child-process flags are not for people; they stay out of -help.
	child := flag.NewFlagSet("phase", flag.ContinueOnError)
	child.SetOutput(stderr)
	child.StringVar(&ph.Name, "phase", "", "")
	child.StringVar(&ph.Dir, "phase-dir", "", "")
	child.StringVar(&ph.Addr, "phase-addr", "", "")
	child.StringVar(&ph.File, "phase-file", "", "")
	child.Uint64Var(&ph.ToHeight, "phase-to-height", 0, "")
	child.StringVar(&ph.DSN, "phase-dsn", "", "")
	child.StringVar(&ph.Out, "phase-out", "", "")
	child.StringVar(&ph.Profile, "phase-profile", "", "")
	if len(args) > 0 && args[0] == "-phase" {
		if err := child.Parse(args); err != nil {
			return cfg, ph, fmt.Errorf("%w: %w", errUsage, err)
		}
		return cfg, ph, nil
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, ph, err
		}
		return cfg, ph, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return cfg, ph, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return cfg, ph, nil
}

// Chain layout. The simulated chain averages about four events per height;
// its block time is stretched so that the query database spans a little
// more than a year, and staking rewards are paid once a day, so the
// summary query reads a year of daily rewards.
const (
	eventsPerHeightEstimate = 4.05
	sourceName              = "flow-bench"
)

// benchGenesis is the simulated chain's first block time, and
// benchHistoryEnd the latest its last block may carry: both in the past, so
// no block time is in the future on any day the benchmark runs.
var (
	benchGenesis    = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	benchHistoryEnd = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
)

// chainLayout is the simulated chain for a run of n events.
type chainLayout struct {
	Step        time.Duration
	RewardEvery uint64
	History     uint64
	Genesis     time.Time
	// IngestHeights is a little more than the ingestion phases stream
	// for ingest events: the heights whose responses are encoded ahead.
	IngestHeights uint64
}

func layoutFor(n, ingest int64) chainLayout {
	heights := uint64(math.Ceil(float64(n) / eventsPerHeightEstimate))
	// Room past N for the overshoot of stopping phases and for new blocks
	// waiting when the resume phase restarts.
	history := heights + heights/10 + 3000
	// N events span a year of block times from benchGenesis, and the whole
	// history stays in the past: the store quarantines block times more
	// than a day ahead of the clock, as it would a misbehaving node's.
	step := 366 * 24 * time.Hour / time.Duration(heights)
	step = min(step, benchHistoryEnd.Sub(benchGenesis)/time.Duration(history)).Truncate(time.Second)
	step = max(step, time.Second)
	every := max(uint64(24*time.Hour/step), 1)
	return chainLayout{
		Step:          step,
		RewardEvery:   every,
		History:       history,
		Genesis:       benchGenesis,
		IngestHeights: uint64(math.Ceil(float64(ingest)/eventsPerHeightEstimate))*21/20 + 1000,
	}
}

func (l chainLayout) simConfig(seed int64) flowsim.Config {
	return flowsim.Config{
		Seed:          seed,
		History:       l.History,
		BlockTimeStep: l.Step,
		RewardEvery:   l.RewardEvery,
		GenesisTime:   l.Genesis,
	}
}
