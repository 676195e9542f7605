package main

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/evindex/evindex/store/bolt"
)

// exportRun runs `evindex export args...` in-process with stdout and
// stderr captured (neither is a terminal).
func exportRun(t *testing.T, getenv func(string) string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"export"}, args...), getenv, &out, &errOut)
	code = exitCode(err, &errOut)
	return code, out.String(), errOut.String()
}

// TestExportFromDataAndURL exports the same rewards from a stopped data
// dir and from a daemon serving it: the bytes are the same in every
// format, the totals are the store's, and stderr (not a terminal) gets no
// progress line.
func TestExportFromDataAndURL(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	want := fillRewards(t, data, 2500)

	fromData := map[string][]byte{}
	for _, format := range []string{"ndjson", "csv", "parquet"} {
		out := filepath.Join(dir, "data."+format)
		// Flags may follow the list's name.
		code, stdout, stderr := exportRun(t, noEnv, "--data", data, "rewards", "--format", format, "-o", out)
		if code != 0 || stdout != "" || stderr != "" {
			t.Fatalf("%s export: exit %d, stdout %q, stderr %q", format, code, stdout, stderr)
		}
		want.assertEqual(t, format+" export from --data", readExportTotals(t, format, out))
		fromData[format], _ = os.ReadFile(out)
	}
	code, stdout, stderr := exportRun(t, noEnv, "--data", data, "--format", "csv", "--limit", "3", "rewards")
	if code != 0 || stderr != "" || strings.Count(stdout, "\n") != 4 || !strings.HasPrefix(stdout, "source,account,kind,height,time,") {
		t.Fatalf("csv to stdout with --limit 3: exit %d, stderr %q:\n%s", code, stderr, stdout)
	}

	// A misspelt source is a failure naming the sources, not an empty file.
	const noSource = `export: --source: no source named "sm-scal" (did you mean sm-scale?); the sources are flow-scale, presearch-scale, sm-scale` + "\n"
	code, stdout, stderr = exportRun(t, noEnv, "--data", data, "--source", "sm-scal", "rewards")
	if code != 1 || stdout != "" || stderr != "evindex: "+noSource {
		t.Fatalf("--data with an unknown source: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = exportRun(t, noEnv, "--data", data, "--format", "csv", "--kind", "smesher_reward", "rewards")
	if rows := strings.Split(strings.TrimSpace(stdout), "\n")[1:]; code != 0 || len(rows) == 0 || strings.Count(stdout, ",smesher_reward,") != len(rows) {
		t.Fatalf("--kind smesher_reward: exit %d:\n%.500s", code, stdout)
	}

	d := startDaemon(t, writeConfig(t, dir, "data_dir: "+data+"\nhttp: {token: export-secret-0123}\n"))
	defer d.stop()
	token := func(k string) string {
		if k == "EVINDEX_TOKEN" {
			return "export-secret-0123"
		}
		return ""
	}
	for format, body := range fromData {
		out := filepath.Join(dir, "url."+format)
		code, stdout, stderr := exportRun(t, token, "--url", "http://"+d.addr, "--format", format, "-o", out, "rewards")
		if code != 0 || stdout != "" || stderr != "" {
			t.Fatalf("%s export through --url: exit %d, stdout %q, stderr %q", format, code, stdout, stderr)
		}
		got, _ := os.ReadFile(out)
		if !bytes.Equal(got, body) {
			t.Fatalf("%s: --url wrote %d bytes, --data %d; they differ", format, len(got), len(body))
		}
	}

	// With the daemon running, the data dir is its.
	code, _, stderr = exportRun(t, noEnv, "--data", data, "rewards")
	if code != 1 || !strings.Contains(stderr, "--url") {
		t.Fatalf("--data of a running daemon: exit %d, %q does not point to --url", code, stderr)
	}
	code, _, stderr = exportRun(t, noEnv, "--url", "http://"+d.addr, "rewards")
	if code != 1 || !strings.Contains(stderr, "401") || !strings.Contains(stderr, "EVINDEX_TOKEN") || strings.Contains(stderr, "export-secret-0123") {
		t.Fatalf("--url without the token: exit %d, %q", code, stderr)
	}
	code, stdout, stderr = exportRun(t, token, "--url", "http://"+d.addr, "--source", "sm-scal", "rewards")
	if code != 1 || stdout != "" || stderr != "evindex: "+noSource {
		t.Fatalf("--url with an unknown source: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, _, stderr = exportRun(t, token, "--url", "http://"+d.addr, "--to-height", "-1", "rewards")
	if code != 2 || !strings.Contains(stderr, "--to-height:") {
		t.Fatalf("--url with a bad filter: exit %d, %q does not name --to-height", code, stderr)
	}
}

func TestExportErrorsNameTheFlag(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	fillRewards(t, data, 10)
	out := filepath.Join(dir, "out.csv")
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"BadTime", []string{"--data", data, "--from-time", "yesterday", "-o", out, "rewards"}, 2, "--from-time: must be an RFC 3339 time"},
		{"BadGroupBy", []string{"--data", data, "--group-by", "year", "rewards-summary"}, 2, "--group-by: must be one of day, week, month, epoch"},
		{"BadZone", []string{"--data", data, "--tz", "Mars/Olympus", "rewards-summary"}, 2, "--tz:"},
		{"LimitAboveAPage", []string{"--data", data, "--limit", "5000", "rewards"}, 2, "--limit:"},
		{"BadOrder", []string{"--data", data, "--order", "sideways", "rewards"}, 2, "--order:"},
		{"BadFormat", []string{"--data", data, "--format", "xlsx", "rewards"}, 2, "--format \"xlsx\""},
		{"UnknownList", []string{"--data", data, "payouts"}, 2, "unknown list \"payouts\""},
		{"NoList", []string{"--data", data}, 2, "name one list"},
		{"TwoLists", []string{"--data", data, "rewards", "blocks"}, 2, "name one list"},
		{"NoInput", []string{"rewards"}, 2, "exactly one of --data-dir and --url"},
		{"BothInputs", []string{"--data", data, "--url", "http://127.0.0.1:1", "rewards"}, 2, "exactly one of --data-dir and --url"},
		{"NotHTTP", []string{"--url", "ftp://127.0.0.1", "rewards"}, 2, "--url \"ftp://127.0.0.1\""},
		{"NoDatabase", []string{"--data", filepath.Join(dir, "none"), "rewards"}, 1, filepath.Join(dir, "none", "evindex.db")},
		{"NobodyListening", []string{"--url", "http://127.0.0.1:1", "rewards"}, 1, "127.0.0.1:1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := exportRun(t, noEnv, c.args...)
			if code != c.code || !strings.Contains(stderr, c.msg) {
				t.Fatalf("exit %d, stderr %q; want exit %d naming %q", code, stderr, c.code, c.msg)
			}
			if stdout != "" {
				t.Fatalf("a failed export wrote %q", stdout)
			}
			if strings.Count(stderr, "\n") != 1 {
				t.Fatalf("the error is not one line: %q", stderr)
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a failed export left %s behind (%v)", out, err)
	}
}

func TestExportHelp(t *testing.T) {
	code, stdout, _ := exportRun(t, noEnv, "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	want := []string{"evindex export", "events|blocks|rewards|rewards-summary|nodes", "--data-dir DIR", "--url URL",
		"raw_amount", "Examples:", "-o string"}
	for _, f := range exportFilters {
		want = append(want, "-"+strings.ReplaceAll(f.param, "_", "-")+" string")
	}
	want = append(want, "--account list (repeatable)", "--type list (repeatable)", "--token string", "--format string")
	for _, w := range want {
		if !strings.Contains(stdout, w) {
			t.Errorf("--help lacks %q", w)
		}
	}
	if t.Failed() {
		t.Log(stdout)
	}
}

// TestProgressLine checks the progress line's words for each format
// (io.Discard is not a terminal, so nothing is drawn here).
func TestProgressLine(t *testing.T) {
	for _, tt := range []struct {
		p    *progressWriter
		body string
		want string
	}{
		{&progressWriter{countRows: true}, "{}\n{}\n{}\n", "exported 3 rows, 0.0 MB in "},
		{&progressWriter{countRows: true, headerLines: 1}, "a,b\n1,2\n3,4\n", "exported 2 rows, 0.0 MB in "},
		{&progressWriter{countRows: true, headerLines: 1}, "a,b\n", "exported 0 rows, "},
		{&progressWriter{}, "PAR1\n\n\x00PAR1", "exported 0.0 MB in "},
	} {
		tt.p.w = io.Discard
		if _, err := io.WriteString(tt.p, tt.body); err != nil {
			t.Fatal(err)
		}
		if got := tt.p.line(0); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%q: progress %q, want it to start %q", tt.body, got, tt.want)
		}
	}
}

// interruptingWriter cancels the export's context at its first write, as
// Ctrl-C would in the middle of an export.
type interruptingWriter struct {
	cancel context.CancelFunc
	bytes.Buffer
}

func (w *interruptingWriter) Write(p []byte) (int, error) {
	w.cancel()
	return w.Buffer.Write(p)
}

// failingWriter is an output that fills up after its first write.
type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n++; w.n > 1 {
		return 0, syscall.ENOSPC
	}
	return len(p), nil
}

// TestExportCutShortIsAnError stops exports part way: the command returns
// an error saying why (exit 1) instead of crashing on the API's way of
// cutting a response.
func TestExportCutShortIsAnError(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	fillRewards(t, data, 2500) // three pages of rows

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &interruptingWriter{cancel: cancel}
	err := run(ctx, []string{"export", "--data", data, "rewards"}, noEnv, w, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "interrupted") || exitCode(err, io.Discard) != 1 {
		t.Fatalf("an interrupted export returned %v", err)
	}
	if rows := strings.Count(w.String(), "\n"); rows == 0 || rows >= 2500 {
		t.Fatalf("an export interrupted after its first page wrote %d rows", rows)
	}

	err = run(context.Background(), []string{"export", "--data", data, "--format", "csv", "rewards"}, noEnv, &failingWriter{}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") || exitCode(err, io.Discard) != 1 {
		t.Fatalf("an export to a full disk returned %v", err)
	}
}

// TestExportFromDataReportsTheCause checks that an offline export says
// what went wrong itself, with no server log to look a request id up in:
// a parameter refused only once the store was consulted names its flag
// (exit 2), and a damaged file gives one line naming the file and
// pointing to evindex check (exit 1), whichever page of it is damaged.
func TestExportFromDataReportsTheCause(t *testing.T) {
	dir := t.TempDir()
	good := sampleDB(t, dir)
	for list := range exportLists {
		if code, _, stderr := exportRun(t, noEnv, "--data", dir, "--format", "csv", list); code != 0 {
			t.Fatalf("export %s: exit %d: %s", list, code, stderr)
		}
	}
	code, stdout, stderr := exportRun(t, noEnv, "--data", dir, "--group-by", "epoch", "--source", "flow-x", "rewards-summary")
	if code != 2 || !strings.HasPrefix(stderr, "evindex: export: --group-by: epoch") || stdout != "" {
		t.Fatalf("group_by=epoch on a Flow source: exit %d, stderr %q; want exit 2 naming --group-by", code, stderr)
	}

	layout := pageLayout(t, dir)
	const page = 4096
	readFailures := 0
	for _, pg := range layout.leaves {
		bad := bytes.Clone(good)
		r := rand.New(rand.NewPCG(uint64(pg), 11))
		for i := pg * page; i < (pg+1)*page; i++ {
			bad[i] = byte(r.Uint32())
		}
		dmg := t.TempDir()
		path := filepath.Join(dmg, bolt.FileName)
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dmg, "rewards.csv")
		code, _, stderr := exportRun(t, noEnv, "--data", dmg, "--format", "csv", "-o", out, "rewards")
		if code == 0 {
			continue // the page holds no reward and nothing a rewards export reads
		}
		if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, path) ||
			!strings.Contains(stderr, "evindex check --data-dir "+dmg) || strings.Contains(stderr, "request id") {
			t.Fatalf("leaf page %d garbled: exit %d, %q; want exit 1 and one line naming %s and evindex check", pg, code, stderr, path)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("leaf page %d garbled: the failed export left %s behind", pg, out)
		}
		if !strings.HasPrefix(stderr, "evindex: export: open ") {
			if readFailures++; readFailures == 1 {
				t.Logf("leaf page %d garbled: %s", pg, strings.TrimSpace(stderr))
			}
		}
	}
	if readFailures == 0 {
		t.Fatalf("no damaged leaf page of %d made the rewards export fail while reading", len(layout.leaves))
	}
}
