package main

import (
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/evindex/evindex/indexer/presearch"
)

// FuzzParseConfig feeds arbitrary text as the config file, with ${VAR}
// set from the environment: parsing, validation and building the sources
// either succeed or fail with a one-line ConfigError naming a field. A
// parse error never repeats an environment value, and no error repeats
// the token or an API key.
func FuzzParseConfig(f *testing.F) {
	seeds := []string{
		"data_dir: /var/lib/evindex\nhttp:\n  listen: 0.0.0.0:8080\n  token: ${EVINDEX_TOKEN}\n",
		"log: {level: debug, format: json}\nstore: {batch_max_records: 100, batch_max_delay: 250ms}\n",
		"sources:\n  - name: flow-main\n    kind: flow\n    endpoint: 127.0.0.1:3569\n    event_types: [A.8624b52f9ddcd04a.FlowIDTableStaking.RewardsPaid]\n    backfill: {workers: 2, max_range: 100, requests_per_second: 10}\n",
		"sources:\n  - {name: sm, kind: spacemesh, public_endpoint: 127.0.0.1:9092, coinbases: [sm1qqqqqqzcrmxf9ydhnlwy8dqk4qc3tt2wjln7pssu7uwx], smeshers: ['00']}\n",
		"sources:\n  - name: p\n    kind: presearch\n    api_key: ${PRESEARCH_API_KEY}\n    status_interval: 30s\n    stats_window: 7m\n",
		"sources:\n  - name: p\n    kind: presearch\n    api_key_file: /nonexistent/${X}\n",
		"sources: [{name: a, kind: flow, endpoint: x, coinbases: [y]}]\n",
		"http: {listen: '[::1]:0', insecure: ${X}}\n",
		"store: {batch_max_records: ${N}}\n",
		"data_dir: [1,2]\n", "http: {listen: [1]}\n", "sources: {a: 1}\n", "http:\n  listen: 127.0.0.1:99999\n",
		"sources:\n  - {name: a, kind: flow, endpoint: 127.0.0.1:1, start_height: -1}\n", "http: {insecure: \"yes\"}\n",
		"http: {token: \"${UNSET_TOKEN:-}\", allowed_hosts: [\"a.example:443\"]}\n", "http: {token: '   ', max_streams: 0}\n",
		"&a {data_dir: *a}\n", "- - -\n", "? [a]\n: b\n", "'': x\n", "data_dir: !!binary AAAA\n", "%YAML 1.1\n---\ndata_dir: x\n...\n", "\t\n", "",
	}
	for _, s := range seeds {
		f.Add([]byte(s), "s3cr3t-V4LUE")
	}
	f.Fuzz(func(t *testing.T, raw []byte, value string) {
		if len(raw) > 1<<16 {
			return
		}
		env := func(string) string { return value }
		cfg, err := ParseConfig(raw, env)
		if err != nil {
			check(t, raw, err)
			if len(value) >= 4 && strings.Contains(err.Error(), value) && !strings.Contains(string(raw), value) {
				t.Fatalf("%q: a parse error shows an environment value: %v", raw, err)
			}
			return
		}
		err = cfg.Validate()
		if err == nil {
			_, err = buildSources(cfg)
		}
		if err == nil {
			return
		}
		check(t, raw, err)
		secrets := []string{cfg.HTTP.Token}
		for _, s := range cfg.Sources {
			if p, ok := s.Settings.(*presearch.Config); ok {
				secrets = append(secrets, p.APIKey)
			}
		}
		others := otherText(cfg)
		for _, sec := range secrets {
			if len(sec) >= 6 && !strings.Contains(others, sec) && strings.Contains(err.Error(), sec) {
				t.Fatalf("%q: the error shows the secret %q: %v", raw, sec, err)
			}
		}
	})
}

var errorLineNo = regexp.MustCompile(`\(line ([0-9]+)\)`)

func check(t *testing.T, raw []byte, err error) {
	t.Helper()
	ce, ok := asConfigError(err)
	if !ok || ce.Field == "" {
		t.Fatalf("%q: %v is not a ConfigError naming a field", raw, err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("%q: the error is not one line: %q", raw, err)
	}
	// The field is a path, whose first key is a top-level key of the
	// file or of the configuration, and a line it names is in the file.
	if ce.Field != "config" && ce.Field != "--config" {
		root := ce.Field
		if q, err := strconv.QuotedPrefix(root); err == nil {
			// A key with a control character in it is named quoted.
			root, _ = strconv.Unquote(q)
		} else if i := strings.IndexAny(root, ".["); i > 0 {
			root = root[:i]
		}
		// YAML folds a line break inside a plain key, with the blanks
		// around it, into one space ("{0 \r0}" has the key "0 0"), so
		// compare with every run of white space folded to one space.
		if _, known := topKeys[root]; !known && !strings.Contains(string(raw), root) && !strings.Contains(foldSpace(string(raw)), foldSpace(root)) {
			t.Fatalf("%q: field %q names neither a key of the file nor of the configuration", raw, ce.Field)
		}
	}
	if m := errorLineNo.FindStringSubmatch(ce.Msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		// YAML breaks lines at \n, \r and \r\n.
		if lines := strings.Count(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n") + strings.Count(strings.ReplaceAll(string(raw), "\r\n", ""), "\r") + 1; n < 1 || n > lines {
			t.Fatalf("%q: the error names line %d of a file of %d lines: %v", raw, n, lines, err)
		}
	}
}

// foldSpace replaces every run of white space in s with one space.
func foldSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

// topKeys are the configuration's top-level keys.
var topKeys = func() map[string]reflect.StructField {
	m := map[string]reflect.StructField{}
	collectFields(reflect.TypeOf(Config{}), m)
	return m
}()

// otherText is every string of cfg that is not a secret, joined: a secret
// that is also spelled there may show through them.
func otherText(cfg Config) string {
	var b strings.Builder
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			b.WriteString(v.String())
			b.WriteByte(0)
		case reflect.Interface, reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Slice:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				if name := v.Type().Field(i).Name; name != "Token" && name != "APIKey" {
					walk(v.Field(i))
				}
			}
		}
	}
	walk(reflect.ValueOf(cfg))
	return b.String()
}
