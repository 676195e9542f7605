package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

func ndjsonLines(t *testing.T, body []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("ndjson line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func csvRecords(t *testing.T, body []byte) [][]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v", err)
	}
	return recs
}

// TestExportAllRows streams every row of each list (events span several
// store pages) and compares with the JSON pages.
func TestExportAllRows(t *testing.T) {
	e := newEnv(t)
	lists := []struct {
		path   string
		header []string
	}{
		{"/v1/events", eventHeader},
		{"/v1/events?type=" + rewardsType, eventHeader},
		{"/v1/events?order=desc&from_height=1100", eventHeader},
		{"/v1/blocks", blockHeader},
		{"/v1/rewards", rewardHeader},
		{"/v1/rewards?account=" + smSmesher, rewardHeader},
		{"/v1/nodes", nodeHeader},
		{"/v1/nodes/sm-node/" + smSmesher + "/history", nodeHeader},
	}
	for _, l := range lists {
		t.Run(l.path, func(t *testing.T) {
			pages := e.allPages(l.path, 1000)
			if len(pages) == 0 {
				t.Fatal("fixture has no rows here")
			}

			r := e.getOK(l.path + sep(l.path) + "format=ndjson")
			if r.header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("ndjson content type %q", r.header.Get("Content-Type"))
			}
			lines := ndjsonLines(t, r.body)
			if len(lines) != len(pages) {
				t.Fatalf("ndjson: %d rows, JSON pages: %d", len(lines), len(pages))
			}
			for i := range lines {
				if fmt.Sprint(lines[i]) != fmt.Sprint(pages[i]) {
					t.Fatalf("ndjson row %d = %v, JSON = %v", i, lines[i], pages[i])
				}
			}

			r = e.getOK(l.path, "Accept", "text/csv")
			if !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") ||
				!strings.Contains(r.header.Get("Content-Disposition"), ".csv") {
				t.Fatalf("csv headers %v", r.header)
			}
			recs := csvRecords(t, r.body)
			if !slices.Equal(recs[0], l.header) {
				t.Fatalf("csv header %v, want %v", recs[0], l.header)
			}
			if len(recs)-1 != len(pages) {
				t.Fatalf("csv: %d rows, JSON pages: %d", len(recs)-1, len(pages))
			}
			// Every CSV cell matches the JSON field (nested JSON as a
			// JSON string, null as empty).
			for i, rec := range recs[1:] {
				for j, col := range l.header {
					want := pages[i][col]
					got := rec[j]
					switch w := want.(type) {
					case nil:
						if got != "" {
							t.Fatalf("row %d %s = %q, want empty", i, col, got)
						}
					case map[string]any, []any:
						var v any
						if err := json.Unmarshal([]byte(got), &v); err != nil || fmt.Sprint(v) != fmt.Sprint(w) {
							t.Fatalf("row %d %s = %q, want %v", i, col, got, w)
						}
					case float64:
						if got != fmt.Sprintf("%.0f", w) {
							t.Fatalf("row %d %s = %q, want %v", i, col, got, w)
						}
					default:
						if got != fmt.Sprint(w) {
							t.Fatalf("row %d %s = %q, want %v", i, col, got, w)
						}
					}
				}
			}
		})
	}
}

func TestExportLimitAndCursor(t *testing.T) {
	e := newEnv(t)
	if n := len(ndjsonLines(t, e.getOK("/v1/events?format=ndjson&limit=5").body)); n != 5 {
		t.Fatalf("ndjson limit=5: %d rows", n)
	}
	if n := len(csvRecords(t, e.getOK("/v1/events?format=csv&limit=1000").body)); n != 1001 {
		t.Fatalf("csv limit=1000: %d records, want header + 1000", n)
	}
	var p page
	e.getOK("/v1/events?limit=1000").json(t, &p)
	rest := ndjsonLines(t, e.getOK("/v1/events?format=ndjson&cursor="+p.NextCursor).body)
	if len(rest) != flowBlocks*flowPerBlk-1000 || rest[0]["height"] != float64(flowFrom+1000/flowPerBlk) {
		t.Fatalf("ndjson from a cursor: %d rows starting %v", len(rest), rest[0])
	}
	if n := len(ndjsonLines(t, e.getOK("/v1/events?from_height=99999999", "Accept", "application/x-ndjson").body)); n != 0 {
		t.Fatalf("empty ndjson export: %d rows", n)
	}
	if recs := csvRecords(t, e.getOK("/v1/events?from_height=99999999&format=csv").body); len(recs) != 1 {
		t.Fatalf("empty csv export = %v, want just the header", recs)
	}
	// format= wins over Accept; an Accept the API does not export is JSON.
	r := e.getOK("/v1/blocks?format=json&limit=1", "Accept", "text/csv")
	if r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("format=json with Accept text/csv: %q", r.header.Get("Content-Type"))
	}
	r = e.getOK("/v1/blocks?limit=1", "Accept", "text/html, application/x-ndjson;q=0.9")
	if r.header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("Accept with ndjson second: %q", r.header.Get("Content-Type"))
	}
}

// TestExportReadsInPages checks that an export asks the store for pages
// of at most 1000 rows, one call (one read transaction) each, until the end.
func TestExportReadsInPages(t *testing.T) {
	st := storetest.Open(t)
	fill(t, st)
	var limits []int
	l := listing[store.Event]{
		name: "events",
		fetch: func(ctx context.Context, cursor string, limit int) (store.Page[store.Event], error) {
			limits = append(limits, limit)
			return st.Events(ctx, store.EventQuery{Cursor: cursor, Limit: limit})
		},
		item: eventItem, header: eventHeader, row: eventRow, parquet: eventParquet,
	}
	for _, tt := range []struct {
		lr     listRequest
		rows   int
		limits []int
	}{
		{listRequest{format: formatNDJSON}, 3000, []int{1000, 1000, 1000}},
		{listRequest{format: formatNDJSON, limit: 1500, limitGiven: true}, 1500, []int{1000, 500}},
		{listRequest{format: formatCSV, limit: 7, limitGiven: true}, 7, []int{7}},
	} {
		limits = nil
		w := httptest.NewRecorder()
		if err := serveList(w, httptest.NewRequest(http.MethodGet, "/", nil), l, tt.lr); err != nil {
			t.Fatal(err)
		}
		rows := bytes.Count(w.Body.Bytes(), []byte("\n"))
		if tt.lr.format == formatCSV {
			rows-- // header
		}
		if rows != tt.rows || !slices.Equal(limits, tt.limits) {
			t.Fatalf("%+v: %d rows in reads of %v, want %d in %v", tt.lr, rows, limits, tt.rows, tt.limits)
		}
	}
}

// TestExportCutOnError checks that a failure after an export has begun
// breaks the transfer, so a client never takes a truncated export for a
// complete one, and that the failure is logged with the request id.
func TestExportCutOnError(t *testing.T) {
	st := storetest.Open(t)
	fill(t, st)
	logs := &storetest.LogBuffer{}
	s := New(Config{Store: st, Logger: zerolog.New(logs)})
	calls := 0
	s.router.Get("/failing", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return serveList(w, r, listing[store.Event]{
			name: "events",
			fetch: func(ctx context.Context, cursor string, limit int) (store.Page[store.Event], error) {
				if calls++; calls == 2 {
					return store.Page[store.Event]{}, errors.New("disk on fire")
				}
				return st.Events(ctx, store.EventQuery{Cursor: cursor, Limit: limit})
			},
			item: eventItem, header: eventHeader, row: eventRow, parquet: eventParquet,
		}, listRequest{format: formatNDJSON})
	}))
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/failing")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err == nil {
		t.Fatalf("a failed export ended cleanly after %d bytes", len(body))
	}
	if n := bytes.Count(body, []byte("\n")); n != 1000 {
		t.Fatalf("%d rows before the cut, want the first page (1000)", n)
	}
	if !strings.Contains(logs.String(), "disk on fire") || !strings.Contains(logs.String(), res.Header.Get("X-Request-Id")) {
		t.Fatalf("failure not logged with the request id:\n%s", logs)
	}
}

// TestExportTimesHaveOneWidth checks that every time the lists write, in
// JSON, NDJSON and CSV, is RFC 3339 with exactly six fractional digits (the
// microseconds Parquet holds), so DuckDB and pandas infer timestamps, and
// that downloads carry their file name.
func TestExportTimesHaveOneWidth(t *testing.T) {
	e := newEnv(t)
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$`)
	timeColumns := map[string][]string{
		"/v1/events?limit=50": {"block_time"}, "/v1/blocks?limit=50": {"block_time"},
		"/v1/rewards?limit=1000": {"time", "period_start", "period_end"}, "/v1/nodes": {"time"},
		"/v1/rewards/summary?group_by=day&tz=Europe/Berlin": {"bucket_start", "bucket_end"},
		"/v1/rejected?limit=10":                             {"time"}, "/v1/sources": {"checkpoint_time", "checkpoint_updated_at", "live_since"},
	}
	for path, cols := range timeColumns {
		seen := 0
		check := func(format, col, v string) {
			if v == "" {
				return
			}
			seen++
			if !stamp.MatchString(v) {
				t.Errorf("%s %s: %s = %q, not one fixed width", path, format, col, v)
			}
		}
		recs := csvRecords(t, e.getOK(path+sep(path)+"format=csv").body)
		for _, row := range recs[1:] {
			for _, col := range cols {
				check("csv", col, row[slices.Index(recs[0], col)])
			}
		}
		nd := e.getOK(path + sep(path) + "format=ndjson")
		if cd := nd.header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment; filename=") || !strings.HasSuffix(cd, `.ndjson"`) {
			t.Errorf("%s ndjson: Content-Disposition %q", path, cd)
		}
		for _, row := range ndjsonLines(t, nd.body) {
			for _, col := range cols {
				if col == "checkpoint_time" || col == "checkpoint_updated_at" {
					cp, _ := row["checkpoint"].(map[string]any)
					v, _ := cp[strings.TrimPrefix(col, "checkpoint_")].(string)
					check("ndjson", col, v)
					continue
				}
				v, _ := row[col].(string)
				check("ndjson", col, v)
			}
		}
		if seen == 0 {
			t.Errorf("%s: no time to check", path)
		}
	}
}
