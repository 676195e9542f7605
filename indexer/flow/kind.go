package flow

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/indexer/flow/flowsim"
)

// Demo chain: a few thousand blocks of back-history whose timestamps
// spread over the four weeks before the demo's first start, so its rewards
// (an epoch payout every 60 blocks, about every 13 hours) show on every
// day of the dashboard's 30-day window; after it one new block a second,
// with block times that follow the wall clock.
const (
	demoHistory       = 3000
	demoHistorySpan   = 28 * 24 * time.Hour
	demoBlockInterval = time.Second
)

// SourceKind registers flow sources with the command line.
var SourceKind = indexer.SourceKind{
	Name:  Kind,
	Title: "Flow",
	NewConfig: func(name string) indexer.SourceConfig {
		c := DefaultConfig()
		c.Name = name
		return &c
	},
	// Blocks: about half a minute.
	LagThreshold: 30,
	// A block a second or so, each one committed (its heartbeat); the
	// stream's own stall timeout drops a silent stream after a minute.
	StallThreshold: 2 * time.Minute,
	Simulator: indexer.Simulator{
		About:   "a Flow access node (AccessAPI, ExecutionDataAPI)",
		History: "blocks",
		Flags:   simFlags,
		Demo:    startDemo,
	},
}

// simFlags declares the spork flags: a node serves [root-height,
// last-height] of the one chain its seed makes, so nodes started with one
// seed and adjacent ranges serve one history across sporks.
func simFlags(fs *flag.FlagSet) func(context.Context, indexer.SimOptions) (*indexer.Simulation, error) {
	root := fs.Uint64("root-height", 0, "the node's root height, the first it serves (a spork's root)")
	last := fs.Uint64("last-height", 0, "a past spork's last sealed height: the node serves [root-height, last-height] and produces nothing (0: it keeps producing)")
	return func(ctx context.Context, o indexer.SimOptions) (*indexer.Simulation, error) {
		if *last > 0 && *last < *root {
			return nil, fmt.Errorf("--last-height: %d is below --root-height %d", *last, *root)
		}
		cfg := flowsim.DefaultConfig()
		cfg.Seed, cfg.BlockInterval = o.Seed, o.Interval
		cfg.RootHeight, cfg.LastHeight = *root, *last
		if o.History > 0 {
			cfg.History = o.History
		}
		sim, err := flowsim.Start(ctx, o.Listen, cfg)
		if err != nil {
			return nil, fmt.Errorf("flow simulator: %w", err)
		}
		return &indexer.Simulation{
			Upstream: "flow access node (AccessAPI, ExecutionDataAPI)",
			Addr: fmt.Sprintf("%s, root height %d, sealed height %d, staking contract %s",
				sim.Addr(), sim.RootHeight(), sim.SealedHeight(), sim.StakingContract()),
			Close: sim.Close,
		}, nil
	}
}

func startDemo(ctx context.Context, started time.Time) (*indexer.Simulation, error) {
	cfg := flowsim.DefaultConfig()
	cfg.History = demoHistory + uint64(time.Since(started)/demoBlockInterval)
	cfg.BlockInterval = demoBlockInterval
	cfg.BlockTimeStep = demoBlockInterval
	cfg.BackHistory, cfg.BackHistoryStep = demoHistory, demoHistorySpan/demoHistory
	cfg.GenesisTime = started.Add(-demoHistorySpan)
	sim, err := flowsim.Start(ctx, "127.0.0.1:0", cfg)
	if err != nil {
		return nil, fmt.Errorf("flow simulator: %w", err)
	}
	src := DefaultConfig()
	src.Name, src.Endpoint, src.StartHeight = "flow-demo", sim.Addr(), sim.RootHeight()+1
	return &indexer.Simulation{Upstream: "flow access node", Addr: sim.Addr(),
		Name: src.Name, Config: &src, Close: sim.Close}, nil
}
