package main

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/store/storetest"
)

// TestDashboardOnTheDemo starts `evindex demo` as a user would, waits
// until it is ready and has rewards, and loads the dashboard in headless
// Chromium: the rendered page has a row for each of the demo's three
// sources and a reward chart with data points. A screenshot is saved as a
// test artifact (the path is logged).
func TestDashboardOnTheDemo(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed; CI installs it (.ci/run) and must run this test")
		}
		t.Skip("chromium not installed (apt-get install chromium); CI runs this test")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	logs, printout := &storetest.LogBuffer{}, &storetest.LogBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--data", filepath.Join(dir, "demo"), "--http", "127.0.0.1:0"},
			noEnv, printout, logs)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("evindex demo: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("evindex demo did not stop")
		}
	}()

	var addr string
	waitUntil(t, logs, done, "the demo serves", func() bool {
		addr = logField(logs.String(), "evindex serving", "addr")
		return addr != ""
	})
	base := "http://" + addr
	// The printout warns that /readyz is 503 while the backfills run.
	waitUntil(t, logs, done, "the printout", func() bool { return strings.Contains(printout.String(), "Stop with Ctrl-C") })
	if !strings.Contains(printout.String(), "curl -s '"+base+"/readyz'    # 503 while a source backfills, 200 once every source is live") {
		t.Errorf("the printout does not say /readyz is 503 during a backfill:\n%s", printout.String())
	}
	waitUntil(t, logs, done, "/readyz is 200", func() bool { return getStatus(base+"/readyz") == http.StatusOK })
	// The simulated Presearch clock runs fast but never ahead of the
	// real one: no earnings window ends in the future.
	var latest struct {
		Items []struct {
			PeriodEnd time.Time `json:"period_end"`
		} `json:"items"`
	}
	waitUntil(t, logs, done, "a presearch reward", func() bool {
		return getJSON(base+"/v1/rewards?source=presearch-demo&order=desc&limit=1000", &latest) == nil && len(latest.Items) > 0
	})
	for _, r := range latest.Items {
		if r.PeriodEnd.After(time.Now()) {
			t.Fatalf("a presearch window ends in the future: %v", r.PeriodEnd)
		}
	}
	// The chart shows the last 30 days per account: wait for a reward in
	// that window.
	from := time.Now().UTC().AddDate(0, 0, -29).Format(time.DateOnly)
	waitUntil(t, logs, done, "rewards in the last 30 days", func() bool {
		var summary struct {
			Items []struct {
				RawAmount string `json:"raw_amount"`
			} `json:"items"`
		}
		if getJSON(base+"/v1/rewards/summary?group_by=day&from_time="+from, &summary) != nil {
			return false
		}
		return slices.ContainsFunc(summary.Items, func(it struct {
			RawAmount string `json:"raw_amount"`
		}) bool {
			return it.RawAmount != "0"
		})
	})

	dom := chromiumRun(t, chromium, "--dump-dom", base+"/")
	artifacts := artifactDir(t)
	if err := os.WriteFile(filepath.Join(artifacts, "dashboard.html"), []byte(dom), 0o644); err != nil {
		t.Fatal(err)
	}

	var names []string
	for _, m := range regexp.MustCompile(`<tr class="source" data-name="([^"]+)"`).FindAllStringSubmatch(dom, -1) {
		names = append(names, m[1])
	}
	slices.Sort(names)
	if want := []string{"flow-demo", "presearch-demo", "sm-demo"}; !slices.Equal(names, want) {
		t.Errorf("source rows %v, want %v", names, want)
	}
	bars := regexp.MustCompile(`<rect class="bar( partial)?"[^>]*data-amount="([^"]+)"`).FindAllStringSubmatch(dom, -1)
	if len(bars) == 0 {
		t.Errorf("the chart has no non-zero bar")
	}
	for _, b := range bars {
		if b[2] == "0" || strings.Trim(b[2], "0.") == "" {
			t.Errorf("a bar drawn as non-zero has amount %q", b[2])
		}
	}
	checkBarsAcrossTheWindow(t, dom)
	var series []string
	for _, m := range regexp.MustCompile(`<figure class="series" data-source="([^"]+)" data-account="([^"]+)"[^>]*><figcaption[^>]*>([^<]+)<`).FindAllStringSubmatch(dom, -1) {
		series = append(series, m[1]+"/"+m[2])
		// Presearch series are named by their node's description.
		if m[1] == "presearch-demo" && !strings.Contains(m[3], "demo-node-") {
			t.Errorf("presearch series caption %q lacks the node's description", m[3])
		}
	}
	if n := strings.Count(dom, `<a class="export"`); n != 2*len(series) || n == 0 {
		t.Errorf("%d export links for %d charts", n, len(series))
	}
	nodes := regexp.MustCompile(`<tr class="node" data-source="([^"]+)"`).FindAllStringSubmatch(dom, -1)
	if len(nodes) == 0 || !strings.Contains(dom, `<svg class="spark"`) {
		t.Errorf("the node panel has %d rows and no sparkline", len(nodes))
	}
	t.Logf("%d chart series: %v", len(series), series)
	if regexp.MustCompile(`<span id="status" role="status" class="error">`).MatchString(dom) {
		t.Errorf("the page shows an error status")
	}

	shot := filepath.Join(artifacts, "dashboard.png")
	os.Remove(shot)
	// Tall enough for every chart of the demo's twelve series.
	chromiumRun(t, chromium, "--screenshot="+shot, "--window-size=1280,1700", "--hide-scrollbars", base+"/")
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot at %s: %v", shot, err)
	}
	t.Logf("dashboard screenshot: %s (DOM: %s)", shot, filepath.Join(artifacts, "dashboard.html"))
	if t.Failed() {
		t.Logf("rendered DOM:\n%s", clipDOM(dom))
	}
}

// checkBarsAcrossTheWindow checks what the demo's back-histories are
// for: the window fitted to the data is 30 days, the Flow and Spacemesh
// charts have bars on most of its days from its first week to today, and
// Presearch's on the days its backfill read (the API allows 4 stats
// requests an hour, one per day of history).
func checkBarsAcrossTheWindow(t *testing.T, dom string) {
	t.Helper()
	label := regexp.MustCompile(`<span id="window-label">(\d{4}-\d\d-\d\d) to (\d{4}-\d\d-\d\d) \((\d+) days, fitted to the data\)`).FindStringSubmatch(dom)
	if label == nil || label[3] != "30" {
		t.Errorf("window label %q, want 30 days fitted to the data", label)
		return
	}
	first, err := time.Parse(time.DateOnly, label[1])
	if err != nil {
		t.Fatal(err)
	}
	days := map[string]map[string]bool{} // source -> days with a bar
	figure := regexp.MustCompile(`<figure class="series" data-source="([^"]+)"`)
	bar := regexp.MustCompile(`<rect class="bar( partial)?"[^>]*data-day="([^"]+)"`)
	for _, fig := range strings.Split(dom, "</figure>") {
		m := figure.FindStringSubmatch(fig)
		if m == nil {
			continue
		}
		if days[m[1]] == nil {
			days[m[1]] = map[string]bool{}
		}
		for _, b := range bar.FindAllStringSubmatch(fig, -1) {
			days[m[1]][b[2]] = true
		}
	}
	for _, tc := range []struct {
		source    string
		min       int // days with a bar
		firstWeek bool
	}{
		{"flow-demo", 25, true},
		{"sm-demo", 25, true},
		{"presearch-demo", 3, false},
	} {
		got := slices.Sorted(maps.Keys(days[tc.source]))
		if len(got) < tc.min {
			t.Errorf("%s: bars on %d days of the window %v, want at least %d", tc.source, len(got), got, tc.min)
			continue
		}
		if tc.firstWeek && got[0] > first.AddDate(0, 0, 6).Format(time.DateOnly) {
			t.Errorf("%s: the first bar is on %s, want one in the window's first week (from %s)", tc.source, got[0], label[1])
		}
		t.Logf("%s: bars on %d days, %s to %s", tc.source, len(got), got[0], got[len(got)-1])
	}
}

// artifactDir is where tests leave files for people to look at:
// $EVINDEX_ARTIFACTS, else evindex-artifacts in the temp dir. It outlives
// the test.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("EVINDEX_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "evindex-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// chromiumRun runs headless Chromium on a page with a virtual-time budget
// for its scripts and fetches, and returns its stdout.
func chromiumRun(t *testing.T, chromium string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // a hang guard
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, append([]string{"--headless", "--no-sandbox", "--disable-gpu",
		"--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--no-first-run", "--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000"}, args...)...)
	// Days in UTC, so what the page shows does not depend on the host.
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr)
	}
	return string(out)
}

// waitUntil polls cond every 50 ms for up to two minutes, failing early
// if the demo exits.
func waitUntil(t *testing.T, logs *storetest.LogBuffer, done <-chan error, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("evindex demo exited (%v) before %s:\n%s", err, what, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("timed out waiting until %s:\n%s", what, logs.String())
}

func getStatus(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func getJSON(url string, into any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(into)
}

func clipDOM(s string) string {
	if len(s) > 4000 {
		return s[:4000] + "…"
	}
	return s
}
