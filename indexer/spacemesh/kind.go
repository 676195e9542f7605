package spacemesh

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/indexer/spacemesh/smsim"
)

// Demo node: one-second layers, with a couple of minutes of history at
// the demo's first start.
const (
	demoLayer       = time.Second
	demoStartLayers = 120
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
	cfg.LayerInterval, cfg.LayerDuration = demoLayer, demoLayer
	cfg.Genesis = started.Add(-demoStartLayers * demoLayer).Truncate(time.Second)
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
