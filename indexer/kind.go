package indexer

import (
	"context"
	"flag"
	"time"
)

// SourceKind is one kind of upstream as the command line knows it: the
// keys of its sources in the config file, their defaults and validation,
// the constructor, the default readiness lag, and a simulated upstream for
// `evindex demo` and `evindex sim`. Each source package declares its own;
// cmd/evindex lists them in one table, and its config parsing, commands
// and error messages read that table.
type SourceKind struct {
	// Name is the value of a source's `kind` key, e.g. "flow".
	Name string
	// Title names the upstream in prose, e.g. "Flow".
	Title string
	// NewConfig returns the configuration of a source named name, holding
	// the kind's defaults. The source's keys in the config file are decoded
	// over it, so the yaml tags of its type are the kind's keys (besides
	// name, kind and lag_threshold, which every source has).
	NewConfig func(name string) SourceConfig
	// LagThreshold is how far behind its upstream's head, in the kind's
	// height unit, a live source may be and still count as ready on
	// /readyz, unless the source sets lag_threshold.
	LagThreshold uint64
	// StallThreshold is how long a source may commit nothing while its
	// upstream's head is ahead of its checkpoint and still count as
	// ready on /readyz, unless the source sets stall_threshold. It is a
	// few of the kind's commit intervals: a live source commits at least
	// once per height (heartbeats included).
	StallThreshold time.Duration
	// Simulator serves a simulated upstream of this kind on loopback.
	Simulator Simulator
}

// SourceConfig is the configuration of one source of some kind.
type SourceConfig interface {
	// Validate checks the configuration and fills in what defaults to
	// its zero value. Its error names the offending key as the config
	// file spells it ("endpoint: required"), one problem per line, and
	// never contains a secret.
	Validate() error
	// NewSource builds the source of a configuration Validate accepted;
	// it does not check it again. Its errors name a key too (a key file
	// that cannot be read).
	NewSource() (Source, error)
}

// Simulator starts a simulated upstream that serves the real protocol on
// loopback with a deterministic history.
type Simulator struct {
	// About says what it serves, for `evindex sim --help`.
	About string
	// History is the unit of --history, e.g. "blocks".
	History string
	// Flags declares the simulator's own flags on fs, beyond those of
	// SimOptions, and returns the function that starts it once fs is
	// parsed.
	Flags func(fs *flag.FlagSet) func(ctx context.Context, o SimOptions) (*Simulation, error)
	// Demo starts the upstream of `evindex demo`, whose first start was
	// at started (kept across restarts, so a restarted demo meets the same
	// history, grown by the time it was away). The Simulation's Source
	// indexes it.
	Demo func(ctx context.Context, started time.Time) (*Simulation, error)
}

// SimOptions are the flags every simulator has.
type SimOptions struct {
	// Listen is the address of its (public) listener.
	Listen string
	// Seed determines the history.
	Seed int64
	// History is how much history it holds at start, in the Simulator's
	// History unit; 0 takes the simulator's default.
	History uint64
	// Interval is the wall time between new blocks or layers (for a
	// polled upstream: how much simulated time passes per real second).
	Interval time.Duration
}

// Simulation is a running simulated upstream.
type Simulation struct {
	// Upstream names what it simulates, e.g. "flow access node".
	Upstream string
	// Addr says where it serves (and what it holds, for `evindex sim`).
	Addr string
	// Name and Config are the source that indexes it (set by Demo).
	Name   string
	Config SourceConfig
	// Close stops it.
	Close func()
}
