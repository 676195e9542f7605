package httpapi

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

func TestDashboardAssets(t *testing.T) {
	e := newEnv(t, withToken("tok"))
	e.token = "" // the page and its assets need no token
	page := e.getOK("/")
	if !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
		t.Fatalf("/ content type %q", page.header.Get("Content-Type"))
	}
	html := string(page.body)
	for _, want := range []string{`id="sources"`, `id="nodes"`, `id="chart"`, `id="auth"`, `src="assets/app.js"`, `href="assets/app.css"`, `href="openapi.json"`} {
		if !strings.Contains(html, want) {
			t.Fatalf("page lacks %s", want)
		}
	}
	js := e.getOK("/assets/app.js")
	css := e.getOK("/assets/app.css")
	if !strings.HasPrefix(js.header.Get("Content-Type"), "text/javascript") || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") {
		t.Fatalf("asset types %q, %q", js.header.Get("Content-Type"), css.header.Get("Content-Type"))
	}
	// Nothing may load from elsewhere: the page must work offline.
	external := regexp.MustCompile(`(src|href)="(https?:)?//|url\((https?:)?//|fetch\("https?:|@import`)
	for name, body := range map[string][]byte{"index.html": page.body, "app.js": js.body, "app.css": css.body} {
		if m := external.Find(body); m != nil {
			t.Fatalf("%s loads from elsewhere: %s", name, m)
		}
	}
	if !strings.Contains(string(js.body), "Authorization") || !strings.Contains(string(js.body), "401") {
		t.Fatal("app.js does not send the token or handle 401")
	}
	if r := e.get("/assets/nope.js"); r.status != 404 {
		t.Fatalf("missing asset: %d", r.status)
	}
}

// TestDashboardInBrowser loads the page in headless Chromium (when
// installed) and reads the rendered DOM: one row per source with the
// checkpoint's age apart from when it was stored, a node panel with
// descriptions and sparklines, daily bars in a window fitted to the data
// (or the one chosen) with today marked as partial, Presearch series named
// by their node's description, and export links for each chart.
func TestDashboardInBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed")
	}
	// The page asks for days of the real clock, so this store holds
	// rewards relative to it and nothing else.
	st := storetest.MustOpen(t)
	now := time.Now().UTC()
	err = st.Apply(context.Background(),
		store.Batch{Source: flowSource, Kind: "flow", Checkpoint: &store.Checkpoint{Height: 1999, Time: now.Add(-40 * time.Second)}},
		store.Batch{Source: smSource, Kind: "spacemesh", Checkpoint: &store.Checkpoint{Height: 30}})
	if err != nil {
		t.Fatal(err)
	}
	b := store.Batch{Source: preSource, Kind: "presearch"}
	for d := 1; d <= 3; d++ {
		end := now.Add(-time.Duration(d) * 24 * time.Hour).Truncate(time.Hour)
		b.Rewards = append(b.Rewards, store.Reward{Source: preSource, Account: preNodeA, Kind: "presearch_period",
			ID: end.Format(time.RFC3339), Time: end, PeriodStart: end.Add(-time.Hour), PeriodEnd: end,
			RawAmount: "2500000000000000000", Unit: "PRE", Decimals: 18})
	}
	for i := range 5 {
		up := i != 3
		b.Nodes = append(b.Nodes, store.NodeStatus{Source: preSource, Node: preNodeA, Time: now.Add(-time.Duration(5-i) * time.Hour), Connected: &up,
			Details: json.RawMessage(`{"meta":{"description":"attic-node","url":null},"status":{"connected":true},"period":null}`)})
	}
	if err := st.Apply(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	e := newEnvStore(t, st)
	e.status.set(
		store.SourceStatus{Name: flowSource, Kind: "flow", Endpoint: "127.0.0.1:3569", State: store.StateLive, HeadHeight: 2000, Lag: 1},
		store.SourceStatus{Name: smSource, Kind: "spacemesh", State: store.StateBackfilling, Progress: &store.Progress{Done: 30, Total: 120, Rate: 2, ETA: 45 * time.Second}},
	)

	dom := dumpDOM(t, chromium, e.srv.URL+"/")
	rows := regexp.MustCompile(`<tr class="source" data-name="([^"]+)" data-state="([^"]+)"`).FindAllStringSubmatch(dom, -1)
	var got []string
	for _, r := range rows {
		got = append(got, r[1]+":"+r[2])
	}
	if want := "flow-main:live presearch:stopped sm-node:backfilling"; strings.Join(got, " ") != want {
		t.Fatalf("source rows %v, want %s\n%s", got, want, clip(dom))
	}
	if !strings.Contains(dom, `<progress max="120" value="30">`) {
		t.Fatalf("no backfill progress bar:\n%s", clip(dom))
	}
	// The checkpoint's age is its block's, apart from when it was stored.
	if !regexp.MustCompile(`<span class="sub age" [^>]*>block time 4\d s ago</span><span class="sub stored" [^>]*>stored (now|\d s ago)</span>`).MatchString(dom) {
		t.Errorf("flow-main's checkpoint does not show its block time apart from when it was stored:\n%s", clip(dom))
	}
	// One date format: no locale-formatted dates (12/1/2026, 12:46:13 PM).
	if m := regexp.MustCompile(`\d+/\d+/\d{4}|\d:\d\d:\d\d [AP]M`).FindString(dom); m != "" {
		t.Errorf("a date in another format: %q", m)
	}
	if !strings.Contains(dom, `href="openapi.json"`) {
		t.Error("no link to /openapi.json")
	}

	// The node panel: the description, its state and a tick per snapshot.
	node := regexp.MustCompile(`(?s)<tr class="node" data-source="presearch" data-node="([^"]+)">.*?</tr>`).FindString(dom)
	if !strings.Contains(node, "attic-node") || !strings.Contains(node, `<td class="connected"><span class="yes">yes</span>`) ||
		strings.Count(node, `class="tick up"`) != 4 || strings.Count(node, `class="tick down"`) != 1 || !strings.Contains(node, "60 min ago") {
		t.Errorf("node row %q", node)
	}

	// Fitted to the data: three days of rewards fit the 7-day window.
	series := regexp.MustCompile(`<figure class="series" data-source="presearch" data-account="([^"]+)" data-unit="PRE"><figcaption[^>]*>([^<]+)</figcaption>`).FindAllStringSubmatch(dom, -1)
	if len(series) != 1 || series[0][1] != preNodeA || series[0][2] != "presearch · attic-node · 7.5 PRE" {
		t.Fatalf("chart series %v:\n%s", series, clip(dom))
	}
	bars := regexp.MustCompile(`<rect class="bar( zero)?( partial)?"[^>]*data-day="([^"]+)" data-amount="([^"]+)"`).FindAllStringSubmatch(dom, -1)
	if len(bars) != 7 {
		t.Fatalf("%d bars, want 7 (the fitted window):\n%s", len(bars), clip(dom))
	}
	today := now.Format(time.DateOnly)
	for i, b := range bars {
		last := i == len(bars)-1
		if (b[2] == " partial") != last || last && b[3] != today {
			t.Errorf("bar %d %v: only today's, the last, is partial", i, b)
		}
		if (b[1] == "") != (b[4] == "2.500000000000000000") || b[1] == "" && i < 3 {
			t.Errorf("bar %d %v", i, b)
		}
	}
	if !strings.Contains(dom, "(7 days, fitted to the data)") {
		t.Error("the window label does not say it is fitted")
	}
	// Export links of the chart's rows.
	links := regexp.MustCompile(`<a class="export" href="([^"]+)" download="([^"]+)">(CSV|Parquet)</a>`).FindAllStringSubmatch(dom, -1)
	if len(links) != 2 {
		t.Fatalf("export links %v", links)
	}
	for _, l := range links {
		u, err := url.Parse(strings.ReplaceAll(l[1], "&amp;", "&"))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if u.Path != "v1/rewards/summary" || q.Get("account") != preNodeA || q.Get("source") != preSource || q.Get("format") != strings.ToLower(l[3]) {
			t.Errorf("export link %s", l[1])
		}
		r := e.getOK("/" + u.String())
		if cd := r.header.Get("Content-Disposition"); !strings.Contains(cd, "."+q.Get("format")) || len(r.body) == 0 {
			t.Errorf("GET %s: %v", l[1], r.header)
		}
	}

	t.Run("ChosenWindow", func(t *testing.T) {
		dom := dumpDOM(t, chromium, e.srv.URL+"/#days=30")
		if n := strings.Count(dom, `<rect class="bar`); n != 30 {
			t.Fatalf("%d bars in the 30-day window", n)
		}
		if n := strings.Count(dom, `<rect class="bar zero`); n != 27 {
			t.Fatalf("%d empty days, want 27", n)
		}
	})

	t.Run("WithToken", func(t *testing.T) {
		tok := newEnvStore(t, st, withToken("dash-token"))
		dom := dumpDOM(t, chromium, tok.srv.URL+"/")
		if !regexp.MustCompile(`<form id="auth">`).MatchString(dom) || strings.Contains(dom, `class="source"`) {
			t.Fatalf("without a stored token the page must ask for one:\n%s", clip(dom))
		}
	})
}

// dumpDOM renders url in headless Chromium, letting scripts and fetches
// run within a virtual-time budget, and returns the resulting DOM.
func dumpDOM(t *testing.T, chromium, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // a hang guard
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--user-data-dir="+t.TempDir(), "--virtual-time-budget=3000", "--dump-dom", url)
	// Days in UTC, so the expected points do not depend on the host's zone.
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("chromium: %v\n%s", err, stderr)
	}
	return string(out)
}

// clip shortens a DOM dump for a failure message.
func clip(s string) string {
	if len(s) > 3000 {
		return s[:3000] + "…"
	}
	return s
}
