package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/evindex/evindex/httpapi"
	"github.com/evindex/evindex/store"
)

// usageError is a command-line mistake: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// errHelp means --help was asked for and printed: exit 0.
var errHelp = errors.New("help printed")

// exitCode maps run's error to the process exit code and prints it:
// 0 success, 2 usage or configuration error, 1 anything else.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "evindex:", errorLine(err))
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	if _, ok := asConfigError(err); ok {
		return 2
	}
	return 1
}

// errorLine is err as the one line a command ends with. Joined problems
// (a check that found several) are separated by "; ", and a damaged file
// is followed by what to do about it.
func errorLine(err error) string {
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	if errors.Is(err, store.ErrCorrupt) && !strings.Contains(msg, "evindex check") {
		msg += " (evindex check on its data dir lists the damage; restore evindex.db from a backup taken with evindex backup)"
	}
	return msg
}

// env is the process environment as the commands see it.
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

type command struct {
	name, args, summary string
	run                 func(ctx context.Context, e env, args []string) error
}

func commands() []command {
	return []command{
		{"run", "--config FILE", "the daemon: every configured source plus the HTTP API", runDaemonCmd},
		{"demo", "[--data DIR] [--http ADDR]", "simulated " + kindTitles() + " upstreams indexed on loopback", runDemoCmd},
		{"sim", kindList("|") + " --listen ADDR", "one simulated upstream serving the real protocol", runSimCmd},
		{"export", "--data DIR|--url URL LIST", "write a list (events, blocks, rewards, ...) as ndjson, csv or parquet", runExportCmd},
		{"backup", "--url URL -o FILE", "a consistent hot copy of the database through the running daemon", runBackupCmd},
		{"check", "--data DIR", "integrity check of a stopped database; exit 0 when sound", runCheckCmd},
		{"migrate", "--data DIR", "apply pending schema migrations and print the version", runMigrateCmd},
		{"copy", "--data DIR --to-dsn DSN", "move a bbolt data dir into an empty PostgreSQL database, verified", runCopyCmd},
		{"config", "| config check FILE", "the annotated reference of every config key / validate a file without starting", runConfigCmd},
		{"version", "", "version, commit and schema version", runVersionCmd},
		{"token", "", "print a new random API token for http.token", runTokenCmd},
		{"monitoring", "prometheus-rules|grafana-dashboard", "generated Prometheus rules or Grafana dashboard for /metrics", runMonitoringCmd},
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	e := env{getenv: getenv, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		if len(args) == 0 {
			return usagef("a command is required")
		}
		return errHelp
	}
	var names []string
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
		names = append(names, c.name)
	}
	// The mistake first and one line of help, not the whole usage.
	return usagef("unknown command %q%s; 'evindex --help' lists the commands", args[0], httpapi.DidYouMean(args[0], names))
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "evindex indexes blockchain and node-operator event streams into one bbolt file")
	fmt.Fprintln(w, "and serves their history over a REST API.")
	fmt.Fprintln(w, "\nUsage: evindex COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'evindex COMMAND --help' for a command's flags.")
	fmt.Fprintln(w, "Quick start: evindex demo, then open http://127.0.0.1:8080/")
}

// newFlagSet makes a flag set whose --help prints the command's usage to
// stdout and whose errors are usage errors.
func newFlagSet(e env, name, args, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		w := e.stdout
		fmt.Fprintf(w, "Usage: evindex %s %s\n\n%s\n\nFlags:\n", name, args, about)
		printFlags(w, fs)
	}
	return fs
}

// aliasUsage marks a quiet alias: accepted, never listed.
const aliasUsage = "\x00alias of --"

// aliasFlag makes alias another spelling of the flag name, kept quietly
// for scripts written against it.
func aliasFlag(fs *flag.FlagSet, alias, name string) {
	fs.Var(fs.Lookup(name).Value, alias, aliasUsage+name)
}

// printFlags lists a flag set's flags with the type each takes (none for
// a switch), leaving out the quiet aliases.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Usage, aliasUsage) {
			return
		}
		typ, usage := flag.UnquoteUsage(f)
		if typ == "value" {
			typ = "list (repeatable)"
		}
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "0s" && typ != "list (repeatable)" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "%s\n    \t%s%s\n", line, usage, def)
	})
}

// parseFlags parses args, mapping --help to errHelp (after printing the
// usage) and any other problem to a usage error: the mistake first, as
// typed, with a suggestion for a misspelt flag, and one line saying where
// the flags are listed, instead of the whole usage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	usage := fs.Usage
	fs.Usage = func() {} // the flag package calls it on every error
	err := fs.Parse(args)
	fs.Usage = usage
	if errors.Is(err, flag.ErrHelp) {
		usage()
		return errHelp
	}
	if err != nil {
		return usagef("%s; 'evindex %s --help' lists the flags", flagMistake(fs, err), fs.Name())
	}
	return nil
}

var (
	undefinedFlag = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	badFlagValue  = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for flag -+([^:]*): (.*)$`)
	flagNoValue   = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
)

// flagMistake says what was wrong with a flag, naming it as typed.
func flagMistake(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if m := undefinedFlag.FindStringSubmatch(msg); m != nil {
		var names []string
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.HasPrefix(f.Usage, aliasUsage) {
				names = append(names, f.Name)
			}
		})
		hint := httpapi.DidYouMean(m[1], names)
		return fmt.Sprintf("%s: unknown flag --%s%s", fs.Name(), m[1], strings.Replace(hint, "mean ", "mean --", 1))
	}
	if m := badFlagValue.FindStringSubmatch(msg); m != nil {
		want := "a value of its type"
		if f := fs.Lookup(m[2]); f != nil {
			typ, _ := flag.UnquoteUsage(f)
			want = map[string]string{"": "true or false", "int": "a whole number", "uint": "a whole number, not negative",
				"duration": "a duration like 100ms or 15s", "float": "a number"}[typ]
			if want == "" {
				want = "a " + typ
			}
		}
		return fmt.Sprintf("%s: --%s %s: want %s", fs.Name(), m[2], m[1], want)
	}
	if m := flagNoValue.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s: --%s needs a value", fs.Name(), m[1])
	}
	return fmt.Sprintf("%s: %v", fs.Name(), err)
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// envName is the environment variable of a flag: EVINDEX_HTTP_LISTEN for
// http-listen.
func envName(flagName string) string {
	return "EVINDEX_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}
