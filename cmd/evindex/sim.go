package main

import (
	"context"
	"fmt"
	"time"

	"github.com/evindex/evindex/indexer"
)

func runSimCmd(ctx context.Context, e env, args []string) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintf(e.stdout, "Usage: evindex sim %s --listen ADDR [--seed N] [--history N] [--block-interval D]\n", kindList("|"))
		fmt.Fprintln(e.stdout, "\nServes one simulated upstream with the real protocol until interrupted:")
		for _, k := range sourceKinds {
			fmt.Fprintf(e.stdout, "  %-10s %s\n", k.Name, k.Simulator.About)
		}
		fmt.Fprintln(e.stdout, "\nRun 'evindex sim KIND --help' for that simulator's flags.")
		return errHelp
	}
	if len(args) == 0 {
		return usagef("sim: name the upstream: %s", kindNames())
	}
	k, ok := lookupKind(args[0])
	if !ok {
		return usagef("sim: %s", kindError(args[0]))
	}
	fs := newFlagSet(e, "sim "+k.Name, "--listen ADDR [flags]", "Serves a simulated "+k.Name+" upstream on loopback with a deterministic history, until interrupted.")
	var o indexer.SimOptions
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:0", "listen address")
	fs.Int64Var(&o.Seed, "seed", 1, "seed of the deterministic history")
	fs.Uint64Var(&o.History, "history", 0, "history at start, in "+k.Simulator.History+"; 0: the simulator's default")
	fs.DurationVar(&o.Interval, "block-interval", time.Second, "wall time between new "+k.Simulator.History)
	start := k.Simulator.Flags(fs)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	sim, err := start(ctx, o)
	if err != nil {
		return err
	}
	defer sim.Close()
	fmt.Fprintf(e.stdout, "%s on %s\n", sim.Upstream, sim.Addr)
	<-ctx.Done()
	return nil
}
