package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/evindex/evindex/store/storetest"
)

// readmeSection is the README's text from the heading title to the next
// heading of its level.
func readmeSection(t *testing.T, title string) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	i := strings.Index(s, "\n"+title+"\n")
	if i < 0 {
		t.Fatalf("README has no %q", title)
	}
	s = s[i+len(title)+2:]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	return s
}

// readmeCommands are the curl and evindex export lines of the README's
// sh blocks in text, continuation lines joined.
func readmeCommands(text string) []string {
	var out []string
	for _, block := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(text, -1) {
		joined := strings.ReplaceAll(block[1], "\\\n", " ")
		for line := range strings.SplitSeq(joined, "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "curl ") || strings.HasPrefix(line, "evindex export ") {
				out = append(out, line)
			}
		}
	}
	return out
}

// TestREADMEExamplesRunAgainstTheDemo runs the README's curl and `evindex
// export` lines of "The API" and "Feeding analytics" against a fresh
// `evindex demo`, with the demo's address for 127.0.0.1:8080 (and its
// data dir for ./data, once it is stopped): each answers 200 with at
// least one row. Then the README's pandas lines run on the files they
// wrote, when Python has pandas (pyarrow for the Parquet ones).
func TestREADMEExamplesRunAgainstTheDemo(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	api, analytics := readmeSection(t, "## The API"), readmeSection(t, "## Feeding analytics")
	cmds := append(readmeCommands(api), readmeCommands(analytics)...)
	if len(cmds) < 10 {
		t.Fatalf("found only %d commands: %q", len(cmds), cmds)
	}

	dir := t.TempDir()
	data := filepath.Join(dir, "demo")
	ctx, cancel := context.WithCancel(context.Background())
	logs := &storetest.LogBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--data", data, "--http", "127.0.0.1:0"}, noEnv, &bytes.Buffer{}, logs)
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("evindex demo: %v", err)
		}
	}
	defer stop()
	var addr string
	waitUntil(t, logs, done, "the demo serves", func() bool {
		addr = logField(logs.String(), "evindex serving", "addr")
		return addr != ""
	})
	base := "http://" + addr
	waitUntil(t, logs, done, "/readyz is 200", func() bool { return getStatus(base+"/readyz") == 200 })
	// Every example needs its kind of reward stored.
	waitUntil(t, logs, done, "rewards of every kind", func() bool {
		for _, k := range []string{"flow_node_reward", "smesher_reward", "presearch_period"} {
			var p struct{ Items []any }
			if getJSON(base+"/v1/rewards?limit=1&kind="+k, &p) != nil || len(p.Items) == 0 {
				return false
			}
		}
		return true
	})

	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(out, 0o700); err != nil {
		t.Fatal(err)
	}
	var fromData []string
	for _, c := range cmds {
		c = strings.ReplaceAll(c, "127.0.0.1:8080", addr)
		if strings.HasPrefix(c, "evindex export ") && strings.Contains(c, "--data ") {
			fromData = append(fromData, c) // the demo holds its data dir: after it stops
			continue
		}
		t.Run(c, func(t *testing.T) { runExample(t, bash, out, c, data) })
	}
	stop()
	for _, c := range fromData {
		t.Run(c, func(t *testing.T) { runExample(t, bash, out, c, data) })
	}
	if t.Failed() {
		return
	}
	runPandas(t, out, analytics)
}

// runExample runs one README line in dir and checks its answer: 200 and
// at least one row.
func runExample(t *testing.T, bash, dir, line, data string) {
	var file string
	if m := regexp.MustCompile(`-o (\S+)`).FindStringSubmatch(line); m != nil {
		file = filepath.Join(dir, m[1])
		os.Remove(file)
	}
	var body []byte
	if strings.HasPrefix(line, "evindex export ") {
		line = strings.ReplaceAll(line, "--data ./data", "--data "+data)
		var stdout, stderr bytes.Buffer
		args := strings.Fields(strings.TrimPrefix(line, "evindex "))
		for i, a := range args {
			if a == "-o" && i+1 < len(args) {
				args[i+1] = file
			}
		}
		if code := exitCode(run(context.Background(), args, noEnv, &stdout, &stderr), &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		body = stdout.Bytes()
	} else {
		// A trailing comment would swallow the status written after it.
		line = regexp.MustCompile(`\s+#[^'"]*$`).ReplaceAllString(line, "")
		cmd := exec.Command(bash, "-c", line+` -w '\n%{http_code}'`)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "EVINDEX_TOKEN=")
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %s", err, got)
		}
		i := bytes.LastIndexByte(bytes.TrimRight(got, "\n"), '\n')
		if i < 0 || strings.TrimSpace(string(got[i+1:])) != "200" {
			t.Fatalf("not 200: %s", got)
		}
		body = got[:i]
	}
	if file != "" {
		var err error
		if body, err = os.ReadFile(file); err != nil {
			t.Fatal(err)
		}
	}
	if rows := countRows(t, file, body); rows < 1 {
		t.Fatalf("no row: %.300s", body)
	}
}

// countRows counts the rows of an answer: Parquet by its footer, CSV after
// the header, JSON by its items, NDJSON by its lines.
func countRows(t *testing.T, file string, body []byte) int {
	t.Helper()
	switch {
	case bytes.HasPrefix(body, []byte("PAR1")):
		f, err := parquet.OpenFile(bytes.NewReader(body), int64(len(body)))
		if err != nil {
			t.Fatalf("parquet: %v", err)
		}
		return int(f.NumRows())
	case bytes.HasPrefix(bytes.TrimSpace(body), []byte(`{"items"`)):
		var p struct{ Items []json.RawMessage }
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("json: %v", err)
		}
		return len(p.Items)
	case strings.HasSuffix(file, ".csv") || bytes.Contains(bytes.SplitN(body, []byte("\n"), 2)[0], []byte("bucket_start,")):
		return bytes.Count(bytes.TrimSpace(body), []byte("\n")) // lines after the header
	}
	return len(bytes.Split(bytes.TrimSpace(body), []byte("\n"))) // ndjson
}

// runPandas runs the README's python blocks on the files the examples
// wrote, with the system's Python when it has pandas.
func runPandas(t *testing.T, dir, text string) {
	py := "/usr/bin/python3"
	if exec.Command(py, "-c", "import pandas").Run() != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3-pandas is not installed; CI installs it (.ci/run) and must run the README's pandas lines")
		}
		t.Log("python3 has no pandas (apt-get install python3-pandas): the README's pandas lines are not run")
		return
	}
	hasArrow := exec.Command(py, "-c", "import pyarrow").Run() == nil
	var script strings.Builder
	for _, b := range regexp.MustCompile("(?s)```python\n(.*?)```").FindAllStringSubmatch(text, -1) {
		if strings.Contains(b[1], "read_parquet") && !hasArrow {
			t.Log("python3 has no pyarrow: the README's Parquet lines are not run")
			continue
		}
		script.WriteString(b[1] + "\n")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang guard
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", script.String())
	cmd.Dir = dir
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's pandas lines: %v\n%s\n--- script:\n%s", err, got, script.String())
	}
	ver, _ := exec.Command(py, "-c", "import pandas; print(pandas.__version__)").Output()
	t.Logf("the README's pandas lines ran on pandas %s:\n%s", bytes.TrimSpace(ver), got)
}
