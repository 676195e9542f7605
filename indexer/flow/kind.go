package flow

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/indexer/flow/flowsim"
)

// Demo chain: a few thousand blocks of history and one new block a second,
// with block times that follow the wall clock and end the history at the
// demo's first start, so its rewards show on the dashboard's recent days.
const (
	demoHistory       = 3000
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
	Simulator: indexer.Simulator{
		About:   "a Flow access node (AccessAPI, ExecutionDataAPI)",
		History: "blocks",
		Flags: func(*flag.FlagSet) func(context.Context, indexer.SimOptions) (*indexer.Simulation, error) {
			return startSim
		},
		Demo: startDemo,
	},
}

func startSim(ctx context.Context, o indexer.SimOptions) (*indexer.Simulation, error) {
	cfg := flowsim.DefaultConfig()
	cfg.Seed, cfg.BlockInterval = o.Seed, o.Interval
	if o.History > 0 {
		cfg.History = o.History
	}
	sim, err := flowsim.Start(ctx, o.Listen, cfg)
	if err != nil {
		return nil, fmt.Errorf("flow simulator: %w", err)
	}
	return &indexer.Simulation{
		Upstream: "flow access node (AccessAPI, ExecutionDataAPI)",
		Addr: fmt.Sprintf("%s, sealed height %d, staking contract %s",
			sim.Addr(), sim.SealedHeight(), sim.StakingContract()),
		Close: sim.Close,
	}, nil
}

func startDemo(ctx context.Context, started time.Time) (*indexer.Simulation, error) {
	cfg := flowsim.DefaultConfig()
	cfg.History = demoHistory + uint64(time.Since(started)/demoBlockInterval)
	cfg.BlockInterval = demoBlockInterval
	cfg.BlockTimeStep = demoBlockInterval
	cfg.GenesisTime = started.Add(-demoHistory * demoBlockInterval)
	sim, err := flowsim.Start(ctx, "127.0.0.1:0", cfg)
	if err != nil {
		return nil, fmt.Errorf("flow simulator: %w", err)
	}
	src := DefaultConfig()
	src.Name, src.Endpoint, src.StartHeight = "flow-demo", sim.Addr(), sim.RootHeight()+1
	return &indexer.Simulation{Upstream: "flow access node", Addr: sim.Addr(),
		Name: src.Name, Config: &src, Close: sim.Close}, nil
}
