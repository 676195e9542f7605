package httpapi

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/evindex/evindex/store"
)

// TestSourceStatusFieldsAreServed: every field of store.SourceStatus, the
// one status model, is a key of the source object on /v1/sources (JSON
// and CSV) and a property of the OpenAPI document's Source schema, so a
// field added to the status without rendering or documenting it fails
// here.
func TestSourceStatusFieldsAreServed(t *testing.T) {
	e := newEnv(t)
	e.status.set(store.SourceStatus{Name: flowSource, Kind: "flow", Endpoint: "127.0.0.1:3569", State: store.StateBackfilling,
		HeadHeight: 2000, Lag: 7, LagThreshold: 5, LastError: "reset", Reconnects: 2, Warnings: 3,
		Progress: &store.Progress{Done: 1, Total: 9, Rate: 0.5, ETA: 16e9}})
	var served map[string]json.RawMessage
	if err := json.Unmarshal(e.getOK("/v1/sources/"+flowSource).body, &served); err != nil {
		t.Fatal(err)
	}
	header := strings.Split(strings.SplitN(string(e.getOK("/v1/sources?format=csv").body), "\n", 2)[0], ",")
	schema := loadOpenAPI(t).Components.Schemas["Source"].Value.Properties
	typ := reflect.TypeOf(store.SourceStatus{})
	for i := 0; i < typ.NumField(); i++ {
		key := snakeCase(typ.Field(i).Name)
		if _, ok := served[key]; !ok {
			t.Errorf("SourceStatus.%s: no %q in the served source %s", typ.Field(i).Name, key, e.getOK("/v1/sources/"+flowSource).body)
		}
		if !slices.ContainsFunc(header, func(h string) bool { return h == key || strings.HasPrefix(h, key+"_") }) {
			t.Errorf("SourceStatus.%s: no %q column in the CSV header %v", typ.Field(i).Name, key, header)
		}
		if _, ok := schema[key]; !ok {
			t.Errorf("SourceStatus.%s: %q is not a property of the OpenAPI Source schema", typ.Field(i).Name, key)
		}
	}
}

// snakeCase spells a Go field name as the API does: LagThreshold is
// lag_threshold.
func snakeCase(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) && i > 0 {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// TestLastErrorHasItsTime: a source that failed and is live again still
// shows its last error, with the time it happened, so a reader can tell it
// from a current one; JSON and CSV carry the same time.
func TestLastErrorHasItsTime(t *testing.T) {
	e := newEnv(t)
	failedAt, liveSince := testNow.Add(-time.Hour), testNow.Add(-50*time.Minute)
	e.status.set(store.SourceStatus{Name: flowSource, Kind: "flow", State: store.StateLive,
		LastError: "apply: no space left on device", LastErrorAt: failedAt, LiveSince: liveSince})
	var src map[string]any
	e.getOK("/v1/sources/"+flowSource).json(t, &src)
	if src["last_error"] != "apply: no space left on device" || src["last_error_at"] != failedAt.Format(timeLayout) {
		t.Fatalf("last_error %v at %v", src["last_error"], src["last_error_at"])
	}
	csv := string(e.getOK("/v1/sources?format=csv").body)
	if !strings.Contains(strings.SplitN(csv, "\n", 2)[0], "last_error_at") || !strings.Contains(csv, failedAt.Format(timeLayout)) {
		t.Fatalf("csv lacks last_error_at:\n%s", csv)
	}
	e.status.set(store.SourceStatus{Name: flowSource, Kind: "flow", State: store.StateLive})
	e.getOK("/v1/sources/"+flowSource).json(t, &src)
	if src["last_error_at"] != nil {
		t.Fatalf("last_error_at %v without an error", src["last_error_at"])
	}
}

// TestSourceEndpointsAndGaps: a source that reads from several nodes shows
// each with the heights it serves, and its gaps; /readyz is 503 naming
// the missing heights but not the nodes' errors (it needs no token).
func TestSourceEndpointsAndGaps(t *testing.T) {
	e := newEnv(t)
	e.status.set(store.SourceStatus{Name: flowSource, Kind: "flow", Endpoint: "live:9000", State: store.StateLive,
		Endpoints: []store.Endpoint{
			{Endpoint: "live:9000", Known: true, From: 2000, To: 2600, State: store.EndpointLive},
			{Endpoint: "spork1:9000", Known: true, From: 1, To: 999, State: store.EndpointServing},
			{Endpoint: "spork2:9000", State: store.EndpointUnreachable, LastError: "connection refused"},
		},
		Gaps: []store.Gap{{From: 1000, To: 1999, Reason: "no reachable access node serves these heights; not answering: spork2:9000: connection refused"}}})
	var src struct {
		Endpoints []struct {
			Endpoint  string  `json:"endpoint"`
			From      *uint64 `json:"from"`
			To        *uint64 `json:"to"`
			State     string  `json:"state"`
			LastError string  `json:"last_error"`
		} `json:"endpoints"`
		Gaps []struct {
			From, To uint64
			Reason   string
		} `json:"gaps"`
	}
	e.getOK("/v1/sources/"+flowSource).json(t, &src)
	if len(src.Endpoints) != 3 || *src.Endpoints[1].From != 1 || src.Endpoints[2].From != nil || src.Endpoints[2].State != "unreachable" || src.Endpoints[2].LastError != "connection refused" {
		t.Fatalf("endpoints %+v", src.Endpoints)
	}
	if len(src.Gaps) != 1 || src.Gaps[0].From != 1000 || src.Gaps[0].To != 1999 || !strings.Contains(src.Gaps[0].Reason, "spork2") {
		t.Fatalf("gaps %+v", src.Gaps)
	}
	r := e.get("/readyz")
	if r.status != 503 || !strings.Contains(string(r.body), "1000-1999") || strings.Contains(string(r.body), "refused") {
		t.Fatalf("readyz %d %s: want 503 naming 1000-1999 without the node's error", r.status, r.body)
	}
	csv := string(e.getOK("/v1/sources?format=csv").body)
	if !strings.Contains(csv, "spork1:9000") || !strings.Contains(csv, "1999") {
		t.Fatalf("csv lacks the endpoints and gaps:\n%s", csv)
	}
}
