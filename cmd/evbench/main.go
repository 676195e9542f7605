// Command evbench measures evindex against the physical limits of its setup
// (the raw upstream stream, the raw store) and against the obvious
// alternative (the same records in SQLite), side by side, on the same
// generated Flow data. It prints a table on stdout, or one JSON object with
// -json, and progress lines on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// errUsage marks a bad flag or value; the exit code is 2.
var errUsage = errors.New("usage")

func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "evbench: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "evbench: %v\n", err)
		return 1
	}
}

// run parses args and runs either the whole benchmark or, with -phase, one
// measured phase as a child process of the benchmark.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, phase, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if phase.Name != "" {
		return runPhase(ctx, phase, stdout)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	res, err := Run(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	if cfg.JSON {
		return res.WriteJSON(stdout)
	}
	return res.WriteTable(stdout)
}
