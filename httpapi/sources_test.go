package httpapi

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
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
