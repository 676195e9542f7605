package spacemesh

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/indexer/spacemesh/smsim"
)

// Demo node: mainnet's five-minute layers in hour-long epochs, with a
// genesis four weeks and two epochs before the demo's first start. Rewards
// begin after the effective genesis (the first two epochs, as on a fresh
// network), so they fill every day of the dashboard's 30-day window, and
// the eight thousand layers of history index in a second or two. An
// epoch brings fewer admin events than the ~100 the node replays, so a
// fresh demo sees the eligibilities of its last epochs and has missed
// rewards to show.
const (
	demoLayer          = 5 * time.Minute
	demoLayersPerEpoch = 12
	demoHistory        = 28 * 24 * time.Hour
)

// SourceKind registers spacemesh sources with the command line.
var SourceKind = indexer.SourceKind{
	Name:  Kind,
	Title: "Spacemesh",
	NewConfig: func(name string) indexer.SourceConfig {
		c := DefaultConfig()
		c.Name = name
		return &c
	},
	// Layers.
	LagThreshold: 2,
	// Three of mainnet's 5-minute layers.
	StallThreshold: 15 * time.Minute,
	Simulator: indexer.Simulator{
		About:   "a Spacemesh node (public and private gRPC listeners)",
		History: "layers",
		Flags: func(fs *flag.FlagSet) func(context.Context, indexer.SimOptions) (*indexer.Simulation, error) {
			private := fs.String("private-listen", "127.0.0.1:0", "the private (admin) listener")
			return func(ctx context.Context, o indexer.SimOptions) (*indexer.Simulation, error) {
				cfg := smsim.DefaultConfig()
				cfg.Seed, cfg.LayerInterval = o.Seed, o.Interval
				if o.History > 0 {
					cfg.Layers = uint32(min(o.History, 1<<32-1))
				}
				sim, err := smsim.Start(ctx, o.Listen, *private, cfg)
				if err != nil {
					return nil, fmt.Errorf("spacemesh simulator: %w", err)
				}
				return &indexer.Simulation{
					Upstream: "spacemesh node",
					Addr: fmt.Sprintf("public %s, private %s, applied layer %d\ncoinbases: %v\nsmeshers: %v",
						sim.PublicAddr(), sim.PrivateAddr(), sim.AppliedLayer(), sim.Coinbases(), sim.Smeshers()),
					Close: sim.Close,
				}, nil
			}
		},
		Demo: startDemo,
	},
}

func startDemo(ctx context.Context, started time.Time) (*indexer.Simulation, error) {
	cfg := smsim.DefaultConfig()
	cfg.LayerDuration, cfg.AlignClock = demoLayer, true
	cfg.LayersPerEpoch = demoLayersPerEpoch
	cfg.Genesis = started.Add(-demoHistory - 2*demoLayersPerEpoch*demoLayer).Truncate(time.Minute)
	cfg.Layers = uint32(time.Since(cfg.Genesis) / demoLayer)
	sim, err := smsim.Start(ctx, "127.0.0.1:0", "127.0.0.1:0", cfg)
	if err != nil {
		return nil, fmt.Errorf("spacemesh simulator: %w", err)
	}
	src := DefaultConfig()
	src.Name = "sm-demo"
	src.PublicEndpoint, src.PrivateEndpoint = sim.PublicAddr(), sim.PrivateAddr()
	src.Coinbases, src.Smeshers = sim.Coinbases(), sim.Smeshers()
	return &indexer.Simulation{Upstream: "spacemesh node",
		Addr: fmt.Sprintf("%s (public), %s (private)", sim.PublicAddr(), sim.PrivateAddr()),
		Name: src.Name, Config: &src, Close: sim.Close}, nil
}
