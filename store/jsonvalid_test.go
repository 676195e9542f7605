package store

import (
	"encoding/json"
	"strings"
	"testing"
)

func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,-0.5e+3,true,false,null,"x\u00e9\n"]}`, ``, ` `, `{}x`, `[1,]`, `"\x"`, "\"\x01\"", `01`, `1.`, `-`, `{"a" 1}`, `[[[]]]`, "\xff", `"` + "\xff" + `"`,
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat("[", 10000) + strings.Repeat("]", 10000)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if got, want := validJSON(p), json.Valid(p); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", p, got, want)
		}
		// The depth of the one-pass scan is the separate count's.
		if valid, depth := scanJSON(p); valid && depth != jsonDepth(p) {
			t.Fatalf("scanJSON(%q) depth %d, jsonDepth says %d", p, depth, jsonDepth(p))
		}
	})
}
