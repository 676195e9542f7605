package main

import (
	"context"
	"fmt"
	"time"

	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/indexer/presearch/presim"
	"github.com/evindex/evindex/indexer/spacemesh/smsim"
)

func runSimCmd(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || (args[0] != "flow" && args[0] != "spacemesh" && args[0] != "presearch") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(e.stdout, "Usage: evindex sim flow|spacemesh|presearch --listen ADDR [--seed N] [--history N] [--block-interval D]")
			fmt.Fprintln(e.stdout, "\nServes one simulated upstream with the real protocol until interrupted.")
			fmt.Fprintln(e.stdout, "Run 'evindex sim KIND --help' for that simulator's flags.")
			return errHelp
		}
		return usagef("sim: name the upstream: flow, spacemesh or presearch")
	}
	kind := args[0]
	fs := newFlagSet(e, "sim "+kind, "--listen ADDR [flags]", "Serves a simulated "+kind+" upstream on loopback with a deterministic history, until interrupted.")
	listen := fs.String("listen", "127.0.0.1:0", "listen address (public API for spacemesh)")
	seed := fs.Int64("seed", 1, "seed of the deterministic history")
	history := fs.Uint64("history", 0, "history at start: blocks (flow), layers (spacemesh), hours (presearch); 0: the simulator's default")
	interval := fs.Duration("block-interval", time.Second, "wall time between new blocks or layers (flow, spacemesh); for presearch, how much simulated time one real second is (1s: real time)")
	private := fs.String("private-listen", "127.0.0.1:0", "spacemesh: the private (admin) listener")
	apiKey := fs.String("api-key", presim.DefaultAPIKey, "presearch: the API key the simulator accepts")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	switch kind {
	case "flow":
		cfg := flowsim.DefaultConfig()
		cfg.Seed, cfg.BlockInterval = *seed, *interval
		if *history > 0 {
			cfg.History = *history
		}
		sim, err := flowsim.Start(ctx, *listen, cfg)
		if err != nil {
			return fmt.Errorf("flow simulator: %w", err)
		}
		defer sim.Close()
		fmt.Fprintf(e.stdout, "flow access node (AccessAPI, ExecutionDataAPI) on %s, sealed height %d, staking contract %s\n",
			sim.Addr(), sim.SealedHeight(), sim.StakingContract())
	case "spacemesh":
		cfg := smsim.DefaultConfig()
		cfg.Seed, cfg.LayerInterval = *seed, *interval
		if *history > 0 {
			cfg.Layers = uint32(*history)
		}
		sim, err := smsim.Start(ctx, *listen, *private, cfg)
		if err != nil {
			return fmt.Errorf("spacemesh simulator: %w", err)
		}
		defer sim.Close()
		fmt.Fprintf(e.stdout, "spacemesh node: public %s, private %s, applied layer %d\ncoinbases: %v\nsmeshers: %v\n",
			sim.PublicAddr(), sim.PrivateAddr(), sim.AppliedLayer(), sim.Coinbases(), sim.Smeshers())
	case "presearch":
		cfg := presim.Config{APIKey: *apiKey, Seed: *seed}
		if *history > 0 {
			cfg.History = time.Duration(*history) * time.Hour
		}
		if *interval > 0 {
			cfg.Speed = float64(*interval) / float64(time.Second)
		}
		srv, err := presim.Start(ctx, *listen, cfg)
		if err != nil {
			return fmt.Errorf("presearch simulator: %w", err)
		}
		defer srv.Close()
		fmt.Fprintf(e.stdout, "presearch node status API on %s (key %s), nodes: %v\n", srv.URL, srv.Sim.APIKey(), srv.Sim.NodeKeys())
	}
	<-ctx.Done()
	return nil
}
