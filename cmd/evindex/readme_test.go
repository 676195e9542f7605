package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
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

// readmeText is the README.
func readmeText(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// readmeSection is the README's text from the heading title to the next
// heading of its level.
func readmeSection(t *testing.T, title string) string {
	t.Helper()
	s := readmeText(t)
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

// readmeExample is one command line of the README's sh blocks.
type readmeExample struct {
	Line    string // continuation lines joined, trailing comment kept
	Section string // the "## " heading it is under
	// Needs is what a "# needs ..." comment at the end of the line says
	// it needs beyond the demo (a real node, a PostgreSQL server): such a
	// line is not run.
	Needs string
	// Empty marks a line that says "# empty on the demo": it runs, and its
	// answer there has no rows.
	Empty bool
}

var (
	readmeNeeds = regexp.MustCompile(`\s#\s*needs\s+(.+)$`)
	readmeEmpty = regexp.MustCompile(`\s#\s*empty on the demo\b`)
	// A trailing comment, which would swallow what is appended to a line.
	trailingComment = regexp.MustCompile(`\s+#[^'"]*$`)
	// A data dir path after its flag (either spelling).
	dataDirFlag = regexp.MustCompile(`(--data(?:-dir)?) \./data\b`)
	demoCommand = regexp.MustCompile(`^(go run \./cmd/evindex|(\./)?evindex) demo(\s|$)`)
)

// readmeCommandPrefixes start the lines that are commands.
var readmeCommandPrefixes = []string{"curl ", "evindex ", "./evindex ", "go run ", "go build ", "go test ", "promtool "}

func looksLikeCommand(s string) bool {
	for _, p := range readmeCommandPrefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// readmeExamples returns every line of the README's sh blocks. A command
// written anywhere else, in another kind of block or quoted with its flags
// in running text, fails the test: there it would not be run.
func readmeExamples(t *testing.T, text string) []readmeExample {
	t.Helper()
	var (
		out           []readmeExample
		section, lang string
		inBlock       bool
		pending       string
	)
	for i, raw := range strings.Split(text, "\n") {
		if strings.HasPrefix(raw, "```") {
			inBlock, lang = !inBlock, strings.TrimPrefix(raw, "```")
			continue
		}
		if !inBlock {
			if strings.HasPrefix(raw, "## ") {
				section = strings.TrimPrefix(raw, "## ")
			}
			continue
		}
		line := strings.TrimSpace(raw)
		if lang != "sh" {
			if looksLikeCommand(line) {
				t.Errorf("README line %d: %q is a command outside a sh block, where this test does not run it", i+1, line)
			}
			continue
		}
		if pending != "" {
			line, pending = pending+" "+line, ""
		}
		if strings.HasSuffix(line, "\\") {
			pending = strings.TrimSpace(strings.TrimSuffix(line, "\\"))
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ex := readmeExample{Line: line, Section: section, Empty: readmeEmpty.MatchString(line)}
		if m := readmeNeeds.FindStringSubmatch(line); m != nil {
			ex.Needs = m[1]
		}
		out = append(out, ex)
	}
	prose := regexp.MustCompile("(?s)```.*?```").ReplaceAllString(text, "")
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(prose, -1) {
		c := strings.Join(strings.Fields(m[1]), " ")
		if strings.HasPrefix(c, "curl ") || looksLikeCommand(c) && strings.Count(" "+c, " -") >= 2 {
			t.Errorf("README: `%s` is a command in running text, where this test does not run it: put it in a sh block", c)
		}
	}
	return out
}

// TestREADMEExamplesRunAgainstTheDemo runs every line of the README's sh
// blocks against a fresh `evindex demo`, in a temporary directory, with
// the binary that the README's `go build` line builds on PATH:
//
//   - curl lines answer 200, `evindex export` lines exit 0, and each has
//     at least one row, unless the line says "# empty on the demo"; any
//     other line exits 0, and a file it writes with > is not empty;
//   - 127.0.0.1:8080 is the demo's address, and ./data after --data-dir
//     (or --data) its data dir, for lines run once the demo has stopped
//     (it holds the file);
//   - a line ending with & is a server: it must print where it serves and
//     accept connections there, and it is stopped at the end; a fixed
//     --listen port is replaced by a free one (the machine's other tests
//     may hold it);
//   - go lines run in the repository's root, with their -o file in the
//     temporary directory, and /etc/prometheus/rules/ is that directory;
//   - the demo line is the demo this test starts, and go test lines are
//     the suite this test belongs to;
//   - a line ending with "# needs ..." needs what it names (a real node, a
//     PostgreSQL server) and is not run.
//
// A command anywhere but a sh block fails the test, so a new example
// cannot escape it. The README's DuckDB lines run on the exports while
// the demo runs, and their sums must be the API's (see runDuckDB); then
// the README's pandas lines run on the files the examples wrote, when
// Python has pandas (pyarrow for the Parquet ones).
func TestREADMEExamplesRunAgainstTheDemo(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	examples := readmeExamples(t, readmeText(t))
	if t.Failed() {
		return
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := os.MkdirAll(out, 0o700); err != nil {
		t.Fatal(err)
	}
	x := &exampleRunner{bash: bash, dir: out, data: filepath.Join(dir, "demo")}
	var live, fromData []readmeExample
	for _, ex := range examples {
		bare := strings.TrimSpace(trailingComment.ReplaceAllString(ex.Line, ""))
		switch {
		case ex.Needs != "":
			x.notRun = append(x.notRun, fmt.Sprintf("%s (needs %s)", bare, ex.Needs))
		case strings.HasPrefix(ex.Line, "go test "):
			x.notRun = append(x.notRun, bare+" (the suite this test belongs to)")
		case demoCommand.MatchString(ex.Line):
			x.notRun = append(x.notRun, bare+" (the demo this test starts)")
		case strings.HasPrefix(ex.Line, "go build "):
			// First: the other lines run the binary it builds.
			x.ran++
			t.Run(ex.Line, func(t *testing.T) { x.run(t, ex) })
		case dataDirFlag.MatchString(ex.Line):
			fromData = append(fromData, ex)
		default:
			live = append(live, ex)
		}
	}
	if len(live)+len(fromData) < 25 {
		t.Fatalf("only %d README lines to run: %+v", len(live)+len(fromData), examples)
	}
	if t.Failed() {
		return
	}

	ctx, cancel := context.WithCancel(context.Background())
	logs := &storetest.LogBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--data-dir", x.data, "--http-listen", "127.0.0.1:0"}, noEnv, &bytes.Buffer{}, logs)
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
	waitUntil(t, logs, done, "the demo serves", func() bool {
		x.addr = logField(logs.String(), "evindex serving", "addr")
		return x.addr != ""
	})
	base := "http://" + x.addr
	waitUntil(t, logs, done, "/readyz is 200", func() bool { return getStatus(base+"/readyz") == 200 })
	// Every example needs its kind of record stored: rewards of every
	// kind, and the missed rewards the demo's node announces.
	waitUntil(t, logs, done, "rewards of every kind and a missed one", func() bool {
		for _, q := range []string{"rewards?kind=flow_node_reward", "rewards?kind=smesher_reward", "rewards?kind=presearch_period", "rewards/missed?source=sm-demo"} {
			var p struct{ Items []any }
			if getJSON(base+"/v1/"+q+"&limit=1", &p) != nil || len(p.Items) == 0 {
				return false
			}
		}
		return true
	})

	for _, ex := range live {
		x.ran++
		t.Run(ex.Line, func(t *testing.T) { x.run(t, ex) })
	}
	analytics := readmeSection(t, "## Feeding analytics")
	if !t.Failed() {
		x.runDuckDB(t, analytics, live, base)
	}
	stop()
	for _, ex := range fromData {
		x.ran++
		t.Run(ex.Line, func(t *testing.T) { x.run(t, ex) })
	}
	t.Logf("ran %d README lines; not run: %s", x.ran, strings.Join(x.notRun, "; "))
	if t.Failed() {
		return
	}
	runPandas(t, out, analytics)
}

// exampleRunner runs README lines in dir against the demo at addr.
type exampleRunner struct {
	bash, dir, data, addr string
	ran                   int
	notRun                []string
}

var (
	outputFlag = regexp.MustCompile(`-o (\S+)`)
	redirect   = regexp.MustCompile(`>\s*(\S+)`)
	listenFlag = regexp.MustCompile(`--listen 127\.0\.0\.1:\d+`)
	servesOn   = regexp.MustCompile(` on (127\.0\.0\.1:\d+)`)
)

// run runs one README line and checks its outcome.
func (x *exampleRunner) run(t *testing.T, ex readmeExample) {
	line := strings.TrimSpace(trailingComment.ReplaceAllString(ex.Line, ""))
	line = strings.ReplaceAll(line, "127.0.0.1:8080", x.addr)
	line = dataDirFlag.ReplaceAllString(line, "$1 "+x.data)
	line = strings.ReplaceAll(line, "/etc/prometheus/rules/", x.dir+"/")
	line = listenFlag.ReplaceAllString(line, "--listen 127.0.0.1:0")
	cmd := exec.Command(x.bash, "-c", line)
	cmd.Dir = x.dir
	if strings.HasPrefix(line, "go ") {
		line = outputFlag.ReplaceAllStringFunc(line, func(m string) string { return "-o " + filepath.Join(x.dir, m[3:]) })
		cmd = exec.Command(x.bash, "-c", line)
		cmd.Dir = "../.."
	}
	// The binary the README's go build line built is the evindex on PATH;
	// no token, as the demo has none.
	cmd.Env = append(os.Environ(), "PATH="+x.dir+string(os.PathListSeparator)+os.Getenv("PATH"), "EVINDEX_TOKEN=")
	if tool := strings.Fields(line)[0]; !strings.Contains(tool, "/") {
		if _, err := exec.LookPath(tool); err != nil && tool != "evindex" {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed; CI installs it (.ci/run)", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	switch {
	case strings.HasSuffix(line, "&"):
		x.serve(t, cmd, strings.TrimSpace(strings.TrimSuffix(line, "&")))
	case strings.HasPrefix(line, "curl "):
		x.curl(t, cmd, line, ex.Empty)
	default:
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %s", err, stderr.Bytes())
		}
		var file string
		if m := redirect.FindStringSubmatch(line); m != nil {
			file = filepath.Join(x.dir, m[1])
			if filepath.IsAbs(m[1]) {
				file = m[1]
			}
		} else if m := outputFlag.FindStringSubmatch(line); m != nil && strings.Contains(line, " export ") {
			file = filepath.Join(x.dir, m[1])
		}
		body := stdout
		if file != "" {
			if body, err = os.ReadFile(file); err != nil {
				t.Fatal(err)
			}
			if len(body) == 0 {
				t.Fatalf("%s is empty", file)
			}
		}
		if strings.Contains(line, "evindex export ") && !ex.Empty {
			if rows := countRows(t, file, body); rows < 1 {
				t.Fatalf("no row: %.300s", body)
			}
		}
	}
}

// curl runs a curl line and wants 200 with at least one row (any number
// for a line marked empty on the demo).
func (x *exampleRunner) curl(t *testing.T, cmd *exec.Cmd, line string, empty bool) {
	cmd.Args[len(cmd.Args)-1] = line + ` -w '\n%{http_code}'`
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, got)
	}
	i := bytes.LastIndexByte(bytes.TrimRight(got, "\n"), '\n')
	if i < 0 || strings.TrimSpace(string(got[i+1:])) != "200" {
		t.Fatalf("not 200: %s", got)
	}
	body := got[:i]
	var file string
	if m := outputFlag.FindStringSubmatch(line); m != nil {
		file = filepath.Join(x.dir, m[1])
		if body, err = os.ReadFile(file); err != nil {
			t.Fatal(err)
		}
	}
	if rows := countRows(t, file, body); rows < 1 && !empty {
		t.Fatalf("no row: %.300s", body)
	}
}

// serve starts a server line, wants it to say where it serves and to
// accept a connection there, and stops it when the test ends.
func (x *exampleRunner) serve(t *testing.T, cmd *exec.Cmd, line string) {
	cmd.Args[len(cmd.Args)-1] = "exec " + line
	stdout := &storetest.LogBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(time.Minute)
	for {
		if m := servesOn.FindStringSubmatch(stdout.String()); m != nil {
			c, err := net.Dial("tcp", m[1])
			if err != nil {
				t.Fatalf("it says it serves on %s: %v", m[1], err)
			}
			c.Close()
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("exited (%v): %s", err, stdout.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("does not say where it serves: %s", stdout.String())
		}
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
