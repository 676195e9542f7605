package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// duckDBScript runs SQL with DuckDB from the npm registry (the pinned
// @duckdb/node-api of .ci/duckdb, whose native library is an npm optional
// dependency; Debian packages no DuckDB). .ci/run installs it.
const duckDBScript = "../../.ci/duckdb/sql.mjs"

// duckDBFile is a file name a DuckDB statement reads.
var duckDBFile = regexp.MustCompile(`'([\w.-]+\.(?:csv|parquet))'`)

// runDuckDB runs the README's DuckDB statements on the files the README's
// export lines write, and wants their sums exactly the API's: each
// (source, account, unit, month) row's amount, raw_amount and count equal
// the /v1/rewards/summary?group_by=month bucket (UTC months, DuckDB's
// TimeZone set to UTC to match), with no bucket missing, and each
// smesher's sum equal to the sum of its rewards listed by /v1/rewards. The
// demo keeps indexing, so the export lines run again until the summary
// reads the same before and after them: the files then hold what the API
// answered. A statement the test does not know how to check fails it.
func (x *exampleRunner) runDuckDB(t *testing.T, text string, live []readmeExample, base string) {
	if _, err := exec.LookPath("node"); err != nil || !fileExists("../../.ci/duckdb/node_modules/@duckdb/node-api/package.json") {
		if os.Getenv("CI") == "true" {
			t.Fatal("DuckDB is not installed; CI installs it (.ci/run: npm ci --prefix .ci/duckdb) and must run the README's DuckDB lines")
		}
		t.Log("no DuckDB (npm ci --prefix .ci/duckdb): the README's DuckDB lines are not run")
		return
	}
	var statements []string
	for _, b := range regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(text, -1) {
		for _, s := range strings.Split(b[1], ";\n") {
			if s = strings.TrimSpace(s); s != "" {
				statements = append(statements, s)
			}
		}
	}
	if len(statements) == 0 {
		t.Fatal("the README has no DuckDB statement")
	}
	// The lines that write the files the statements read.
	var writers []readmeExample
	for _, s := range statements {
		for _, m := range duckDBFile.FindAllStringSubmatch(s, -1) {
			i := slices.IndexFunc(live, func(ex readmeExample) bool { return strings.Contains(ex.Line, "-o "+m[1]+" ") })
			if i < 0 {
				t.Fatalf("the README's DuckDB lines read %s, which no example run against the demo writes", m[1])
			}
			if !slices.ContainsFunc(writers, func(ex readmeExample) bool { return ex.Line == live[i].Line }) {
				writers = append(writers, live[i])
			}
		}
	}

	summaryURL := base + "/v1/rewards/summary?group_by=month"
	smesherURL := base + "/v1/rewards?kind=smesher_reward&format=ndjson"
	var summary []summaryRow
	var smeshers map[string]*big.Rat
	for attempt := 1; ; attempt++ {
		before := listAll[summaryRow](t, summaryURL)
		for _, ex := range writers {
			x.run(t, ex)
		}
		smeshers = smesherSums(t, smesherURL)
		summary = listAll[summaryRow](t, summaryURL)
		if slices.Equal(before, summary) {
			break
		}
		if attempt == 20 {
			t.Fatal("the demo's rewards changed during each of 20 runs of the export lines")
		}
	}

	results := runDuckDBStatements(t, x.dir, append([]string{"SET TimeZone = 'UTC'"}, statements...))[1:]
	buckets := map[string]summaryRow{}
	for _, s := range summary {
		buckets[s.Source+"|"+s.Account+"|"+s.Unit+"|"+s.BucketStart[:7]] = s
	}
	for i, rows := range results {
		sql := statements[i]
		if len(rows) == 0 {
			t.Errorf("DuckDB statement %d has no row:\n%s", i+1, sql)
			continue
		}
		switch {
		case rows[0]["month"] != "":
			if len(rows) != len(buckets) {
				t.Errorf("DuckDB statement %d: %d rows, the API's summary %d buckets:\n%s", i+1, len(rows), len(buckets), sql)
			}
			for _, r := range rows {
				month := r["month"]
				if len(month) < 7 {
					t.Fatalf("DuckDB statement %d: month %q", i+1, month)
				}
				b, ok := buckets[r["source"]+"|"+r["account"]+"|"+r["unit"]+"|"+month[:7]]
				switch {
				case !ok:
					t.Errorf("DuckDB statement %d: %v has no bucket in the API's summary", i+1, r)
				case !decimalEqual(r["amount"], b.Amount) || !decimalEqual(r["raw_amount"], b.RawAmount) || r["rewards"] != fmt.Sprint(b.Count):
					t.Errorf("DuckDB statement %d: %v, the API's summary: amount %s, raw_amount %s, count %d", i+1, r, b.Amount, b.RawAmount, b.Count)
				}
			}
		case rows[0]["smesher"] != "":
			if len(rows) != len(smeshers) {
				t.Errorf("DuckDB statement %d: %d smeshers, the API's rewards %d:\n%s", i+1, len(rows), len(smeshers), sql)
			}
			for _, r := range rows {
				want := smeshers[r["smesher"]]
				got, ok := new(big.Rat).SetString(r["smh"])
				if want == nil || !ok || got.Cmp(want) != 0 {
					t.Errorf("DuckDB statement %d: smesher %s sums %s, the API's rewards %v", i+1, r["smesher"], r["smh"], want)
				}
			}
		default:
			t.Errorf("DuckDB statement %d of the README has no check against the API here:\n%s", i+1, sql)
		}
	}
	t.Logf("the README's %d DuckDB statements gave the API's sums (%d summary buckets, %d smeshers)", len(statements), len(buckets), len(smeshers))
}

// summaryRow is one bucket of /v1/rewards/summary.
type summaryRow struct {
	BucketStart string `json:"bucket_start"`
	Source      string `json:"source"`
	Account     string `json:"account"`
	Unit        string `json:"unit"`
	Amount      string `json:"amount"`
	RawAmount   string `json:"raw_amount"`
	Count       int    `json:"count"`
}

// listAll reads every page of a JSON list.
func listAll[T any](t *testing.T, u string) []T {
	t.Helper()
	var out []T
	for cursor := ""; ; {
		page := u
		if cursor != "" {
			page += "&cursor=" + url.QueryEscape(cursor)
		}
		var p struct {
			Items      []T    `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		if err := getJSON(page, &p); err != nil {
			t.Fatalf("%s: %v", page, err)
		}
		out = append(out, p.Items...)
		if cursor = p.NextCursor; cursor == "" {
			return out
		}
	}
}

// smesherSums sums the amounts of an NDJSON reward export per smesher.
func smesherSums(t *testing.T, u string) map[string]*big.Rat {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: %s %s", u, resp.Status, b)
	}
	sums := map[string]*big.Rat{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r struct {
			Amount  string `json:"amount"`
			Details struct {
				Smesher string `json:"smesher"`
			} `json:"details"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		a, ok := new(big.Rat).SetString(r.Amount)
		if !ok {
			t.Fatalf("%s: amount %q", u, r.Amount)
		}
		if sums[r.Details.Smesher] == nil {
			sums[r.Details.Smesher] = new(big.Rat)
		}
		sums[r.Details.Smesher].Add(sums[r.Details.Smesher], a)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sums
}

// runDuckDBStatements runs statements in dir and returns each one's rows,
// every value as the text DuckDB prints.
func runDuckDBStatements(t *testing.T, dir string, statements []string) [][]map[string]string {
	t.Helper()
	in, _ := json.Marshal(statements)
	script, err := filepath.Abs(duckDBScript)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", script)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("DuckDB: %v\n%s", err, stderr.Bytes())
	}
	var raw [][]map[string]any
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("DuckDB's answer: %v\n%.500s", err, out)
	}
	results := make([][]map[string]string, len(raw))
	for i, rows := range raw {
		for _, r := range rows {
			m := map[string]string{}
			for k, v := range r {
				if v != nil {
					m[k] = fmt.Sprint(v)
				}
			}
			results[i] = append(results[i], m)
		}
	}
	return results
}

// decimalEqual compares two decimal texts exactly ("1.50" equals "1.5").
func decimalEqual(a, b string) bool {
	x, ok1 := new(big.Rat).SetString(a)
	y, ok2 := new(big.Rat).SetString(b)
	return ok1 && ok2 && x.Cmp(y) == 0
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
