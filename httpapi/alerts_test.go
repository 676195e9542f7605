package httpapi

import (
	"strings"
	"testing"

	"github.com/evindex/evindex/store"
)

// TestAlertsList: GET /v1/alerts lists the stored episodes with the list
// conventions: state and source filters, order, pages behind a cursor
// sealed to the filters, every format, and a 400 or 404 naming what is
// wrong.
func TestAlertsList(t *testing.T) {
	e := newEnv(t)
	all := e.allPages("/v1/alerts", 1)
	if len(all) != 2 || all[0]["state"] != "resolved" || all[1]["state"] != "firing" || all[1]["ends_at"] != nil || all[0]["ends_at"] == nil {
		t.Fatalf("alerts %v: want the resolved episode, then the firing one", all)
	}
	fp := store.AlertFingerprint(preSource, "node_down", preNodeB)
	for _, a := range all {
		labels, _ := a["labels"].(map[string]any)
		if a["fingerprint"] != fp || a["subject"] != preNodeB || labels["node"] != preNodeB {
			t.Fatalf("alert %v: want fingerprint %s and the node's labels", a, fp)
		}
	}
	if firing := e.allPages("/v1/alerts?state=firing&source="+preSource, 10); len(firing) != 1 || firing[0]["starts_at"] != all[1]["starts_at"] {
		t.Fatalf("firing: %v", firing)
	}
	if desc := e.allPages("/v1/alerts?order=desc", 1); len(desc) != 2 || desc[0]["state"] != "firing" {
		t.Fatalf("desc: %v", desc)
	}
	if none := e.allPages("/v1/alerts?source="+flowSource, 10); len(none) != 0 {
		t.Fatalf("alerts of %s: %v", flowSource, none)
	}
	var first page
	e.getOK("/v1/alerts?limit=1").json(t, &first)
	if first.NextCursor == "" {
		t.Fatal("no cursor after the first of two episodes")
	}
	for _, c := range []struct {
		path  string
		state int
		says  string
	}{
		{"/v1/alerts?state=pending", 400, "state"},
		{"/v1/alerts?state=firng", 400, "firing"},
		{"/v1/alerts?status=firing", 400, "status"},
		{"/v1/alerts?source=nope", 404, "nope"},
		{"/v1/alerts?state=firing&cursor=" + first.NextCursor, 400, "cursor"},
		{"/v1/alerts?order=desc&cursor=" + first.NextCursor, 400, "cursor"},
		{"/v1/rejected?cursor=" + first.NextCursor, 400, "cursor"},
	} {
		if res := e.get(c.path); res.status != c.state || !strings.Contains(string(res.body), c.says) {
			t.Errorf("%s: %d %s, want %d naming %s", c.path, res.status, res.body, c.state, c.says)
		}
	}
	csv := string(e.getOK("/v1/alerts?format=csv").body)
	if !strings.HasPrefix(csv, strings.Join(alertHeader, ",")+"\n") || strings.Count(csv, "\n") != 3 || !strings.Contains(csv, `""node"":""`+preNodeB) {
		t.Fatalf("csv:\n%s", csv)
	}
	if nd := string(e.getOK("/v1/alerts?format=ndjson&state=resolved").body); strings.Count(nd, "\n") != 1 || !strings.Contains(nd, `"state":"resolved"`) {
		t.Fatalf("ndjson:\n%s", nd)
	}
	if pq := e.getOK("/v1/alerts?format=parquet").body; len(pq) < 8 || string(pq[:4]) != "PAR1" {
		t.Fatalf("parquet: %d bytes", len(pq))
	}
}
