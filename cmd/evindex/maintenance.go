package main

import (
	"context"
	"fmt"
	"runtime/debug"

	migrations "github.com/evindex/evindex/migrations/bolt"
	"github.com/evindex/evindex/store/bolt"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func runCheckCmd(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "check", "--data-dir DIR", "Checks a stopped database: bbolt page structure and every index entry.\nExit 0 when sound, 1 with the problems otherwise.")
	dir := fs.String("data-dir", "", "data directory holding evindex.db (required)")
	aliasFlag(fs, "data", "data-dir")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return usagef("check: --data-dir is required")
	}
	st, err := bolt.Open(*dir, bolt.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Check(ctx); err != nil {
		return fmt.Errorf("%s: %w", st.Path(), err)
	}
	infos, err := st.Sources(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "ok: %s (schema %d)\n", st.Path(), st.SchemaVersion())
	for _, in := range infos {
		cp := "none"
		if in.Checkpoint != nil {
			cp = fmt.Sprint(in.Checkpoint.Height)
		}
		fmt.Fprintf(e.stdout, "  %-16s %-10s checkpoint %-12s events %d, blocks %d, rewards %d\n", in.Name, in.Kind, cp, in.Events, in.Blocks, in.Rewards)
	}
	return nil
}

func runMigrateCmd(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "migrate", "--data-dir DIR", "Checks a stopped database as evindex check does, applies pending schema migrations\nand prints the version. A damaged file is refused before anything is written.")
	dir := fs.String("data-dir", "", "data directory holding evindex.db (required)")
	aliasFlag(fs, "data", "data-dir")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return usagef("migrate: --data-dir is required")
	}
	// A migration rewrites the file: it must not write into a damaged
	// one, so the whole file is checked first.
	st, err := bolt.Open(*dir, bolt.Options{Verify: true})
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(e.stdout, "%s: schema version %d\n", st.Path(), st.SchemaVersion())
	return nil
}

func runVersionCmd(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "version", "", "Prints the version, the commit it was built from and the schema version it writes.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	commit := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	fmt.Fprintf(e.stdout, "evindex %s\ncommit %s\nschema %d\n", version, commit, migrations.Latest())
	return nil
}
