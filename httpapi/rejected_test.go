package httpapi

import (
	"encoding/base64"
	"strings"
	"testing"
)

// TestRejectedList: quarantined records are listed with the list
// conventions (filters, cursors, formats), their raw bytes exact, and
// counted on their source.
func TestRejectedList(t *testing.T) {
	e := newEnv(t)
	rows := e.allPages("/v1/rejected?source="+flowSource, 1)
	if len(rows) != 4 {
		t.Fatalf("%d rejected rows, want 4: %v", len(rows), rows)
	}
	for i, r := range rows {
		raw, err := base64.StdEncoding.DecodeString(r["raw"].(string))
		if err != nil {
			t.Fatal(err)
		}
		switch r["field"] {
		case "type":
			if string(raw) != "=cmd|' /C calc'!A0\x00" || r["raw_text"] != string(raw) {
				t.Fatalf("row %d: raw %q, raw_text %v", i, raw, r["raw_text"])
			}
		case "payload":
			if string(raw) != "{\"a\":\"\xff\"}" || r["raw_text"] != nil {
				t.Fatalf("row %d: raw %q, raw_text %v", i, raw, r["raw_text"])
			}
		default:
			t.Fatalf("row %d: %v", i, r)
		}
		if i > 0 && r["height"].(float64) < rows[i-1]["height"].(float64) {
			t.Fatalf("rows out of height order: %v", rows)
		}
	}
	var src map[string]any
	e.getOK("/v1/sources/"+flowSource).json(t, &src)
	if src["rejected"] != float64(4) {
		t.Fatalf("source shows rejected %v, want 4", src["rejected"])
	}
	desc := e.allPages("/v1/rejected?order=desc&to_height="+u64(flowFrom+flowBlocks/2-1), 1)
	if len(desc) != 2 || desc[0]["height"].(float64) <= desc[1]["height"].(float64) {
		t.Fatalf("desc, first batch only: %v", desc)
	}
	csv := string(e.getOK("/v1/rejected?format=csv").body)
	if !strings.HasPrefix(csv, strings.Join(rejectedHeader, ",")+"\n") || strings.Count(csv, "\n") != 5 {
		t.Fatalf("csv:\n%s", csv)
	}
	if res := e.get("/v1/rejected?cursor=x"); res.status != 400 || !strings.Contains(string(res.body), "cursor") {
		t.Fatalf("bad cursor: %d %s", res.status, res.body)
	}
}
