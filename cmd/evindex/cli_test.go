package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cliRun runs evindex with args and returns the exit code and output.
func cliRun(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	code = exitCode(err, &errOut)
	return code, out.String(), errOut.String()
}

// TestCLIVocabulary checks the command line a user meets: a mistake is
// one line naming what was typed, with a suggestion and where help is,
// not the whole usage; flags are typed in --help; a bare switch takes no
// argument; demo speaks run's flags and keeps its old ones quietly.
func TestCLIVocabulary(t *testing.T) {
	dir := t.TempDir()
	loud := filepath.Join(dir, "loud.yaml")
	if err := os.WriteFile(loud, []byte("log: {level: loud}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"MisspeltFlag", nil, []string{"run", "--dat", "x"}, "evindex: run: unknown flag --dat (did you mean --data-dir?); 'evindex run --help' lists the flags\n"},
		{"MisspeltFlagTypo", nil, []string{"run", "--http-lisen", "x"}, "evindex: run: unknown flag --http-lisen (did you mean --http-listen?); 'evindex run --help' lists the flags\n"},
		{"BadFlagValue", nil, []string{"run", "--batch-max-records", "ten"}, "evindex: run: --batch-max-records ten: want a whole number; 'evindex run --help' lists the flags\n"},
		{"FlagNamedAsTyped", nil, []string{"run", "--http-listen", "8081"}, "evindex: --http-listen: \"8081\": want host:port\n"},
		{"VariableNamedAsTyped", map[string]string{"EVINDEX_BATCH_MAX_RECORDS": "ten"}, []string{"run"}, "evindex: EVINDEX_BATCH_MAX_RECORDS: \"ten\" is not a whole number\n"},
		{"VariableValueNamed", map[string]string{"EVINDEX_BATCH_MAX_RECORDS": "0"}, []string{"run"}, "evindex: EVINDEX_BATCH_MAX_RECORDS: must be at least 1\n"},
		// A bare switch is true and leaves --config to be read: the
		// file's own mistake is what is reported.
		{"BareSwitch", nil, []string{"run", "--http-insecure", "--config", loud}, "log.level: \"loud\": want debug, info, warn or error"},
		{"MisspeltCommand", nil, []string{"exprt"}, "evindex: unknown command \"exprt\" (did you mean export?); 'evindex --help' lists the commands\n"},
		{"MisspeltSubcommand", nil, []string{"config", "chek", "x"}, "evindex: config: unknown subcommand \"chek\" (did you mean check?)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := cliRun(t, c.env, c.args...)
			if code != 2 || stdout != "" || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2, one line with %q", code, stdout, stderr, c.want)
			}
		})
	}

	_, help, _ := cliRun(t, nil, "run", "--help")
	for _, want := range []string{"  --http-insecure\n", "  --batch-max-records int\n", "  --batch-max-delay duration\n", "  --data-dir string\n"} {
		if !strings.Contains(help, want) {
			t.Errorf("run --help lacks %q:\n%s", want, help)
		}
	}
	_, help, _ = cliRun(t, nil, "demo", "--help")
	if !strings.Contains(help, "--data-dir string") || !strings.Contains(help, "--http-listen string") || strings.Contains(help, "--data ") || strings.Contains(help, "--http ") {
		t.Errorf("demo --help lists its old spellings or lacks run's:\n%s", help)
	}
	_, flowHelp, _ := cliRun(t, nil, "sim", "flow", "--help")
	_, preHelp, _ := cliRun(t, nil, "sim", "presearch", "--help")
	if !strings.Contains(flowHelp, "--root-height") || strings.Contains(flowHelp, "--api-key") || strings.Contains(flowHelp, "layers") {
		t.Errorf("sim flow --help lists another kind's flags:\n%s", flowHelp)
	}
	if !strings.Contains(preHelp, "--api-key") || strings.Contains(preHelp, "--root-height") {
		t.Errorf("sim presearch --help:\n%s", preHelp)
	}
}

// TestDataDirIsOneSpelling: every command that reads a data directory takes
// --data-dir, as run and demo do, and still takes --data (the spelling
// scripts written against earlier releases use) as a quiet alias.
func TestDataDirIsOneSpelling(t *testing.T) {
	dir := t.TempDir()
	for _, cmd := range []string{"check", "migrate", "export", "copy"} {
		t.Run(cmd, func(t *testing.T) {
			var out, errOut strings.Builder
			_ = run(context.Background(), []string{cmd, "--help"}, func(string) string { return "" }, &out, &errOut)
			help := out.String() + errOut.String()
			if !strings.Contains(help, "--data-dir") || strings.Contains(help, "  --data ") {
				t.Fatalf("%s --help does not show --data-dir alone:\n%s", cmd, help)
			}
		})
	}
	for _, spelling := range []string{"--data", "--data-dir"} {
		var out, errOut strings.Builder
		err := run(context.Background(), []string{"migrate", spelling, dir}, func(string) string { return "" }, &out, &errOut)
		if err != nil {
			t.Fatalf("migrate %s DIR: %v", spelling, err)
		}
	}
}
