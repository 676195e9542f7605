package httpapi

import (
	"context"
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
	for _, want := range []string{`id="sources"`, `id="chart"`, `id="auth"`, `src="assets/app.js"`, `href="assets/app.css"`} {
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
// installed) and reads the rendered DOM: one row per source and chart
// points for the accounts with rewards in the last 30 days.
func TestDashboardInBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed")
	}
	// The page asks for the last 30 days of the real clock, so this store
	// holds rewards relative to it and nothing else.
	st := storetest.MustOpen(t)
	now := time.Now().UTC()
	err = st.Apply(context.Background(),
		store.Batch{Source: flowSource, Kind: "flow", Checkpoint: &store.Checkpoint{Height: 1999}},
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
	series := regexp.MustCompile(`<figure class="series" data-source="presearch" data-account="([^"]+)" data-unit="PRE">`).FindAllStringSubmatch(dom, -1)
	if len(series) != 1 || series[0][1] != preNodeA {
		t.Fatalf("chart series %v:\n%s", series, clip(dom))
	}
	points := regexp.MustCompile(`<circle class="point"[^>]*data-amount="([^"]+)"`).FindAllStringSubmatch(dom, -1)
	if len(points) != 3 {
		t.Fatalf("%d non-zero chart points, want 3:\n%s", len(points), clip(dom))
	}
	for _, p := range points {
		if p[1] != "2.500000000000000000" {
			t.Fatalf("point amount %q", p[1])
		}
	}
	if n := strings.Count(dom, `class="point zero"`); n != 27 {
		t.Fatalf("%d zero points, want 27 (30 days)", n)
	}

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
