package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/indexer/flow"
	"github.com/evindex/evindex/indexer/presearch"
	"github.com/evindex/evindex/indexer/spacemesh"
)

func noEnv(string) string { return "" }

func TestParseConfigExample(t *testing.T) {
	env := map[string]string{"EVINDEX_TOKEN": "s3cret-token-0123456", "PRESEARCH_API_KEY": "k"}
	cfg, err := ParseConfig([]byte(`
data_dir: /var/lib/evindex
log: {level: debug, format: json}
http:
  listen: 0.0.0.0:8080
  token: ${EVINDEX_TOKEN}
store:
  batch_max_records: 100
  batch_max_delay: 250ms
sources:
  - name: flow-main
    kind: flow
    endpoint: 127.0.0.1:3569
    history_endpoints: [127.0.0.1:3570, 127.0.0.1:3571]
    event_types: [A.8624b52f9ddcd04a.FlowIDTableStaking.RewardsPaid]
    backfill: {workers: 2, max_range: 100, requests_per_second: 10}
  - name: presearch
    kind: presearch
    base_url: https://nodes.presearch.com
    api_key: ${PRESEARCH_API_KEY}
    status_interval: 30s
`), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	fl, pre := cfg.Sources[0].Settings.(*flow.Config), cfg.Sources[1].Settings.(*presearch.Config)
	if cfg.HTTP.Token != "s3cret-token-0123456" || pre.APIKey != "k" {
		t.Errorf("env not expanded: %+v", cfg.HTTP)
	}
	if cfg.Store.BatchMaxDelay != 250*time.Millisecond || fl.Backfill.Workers != 2 || len(fl.HistoryEndpoints) != 2 || fl.HistoryEndpoints[1] != "127.0.0.1:3571" {
		t.Errorf("values not decoded: %+v", cfg)
	}
	if pre.StatusInterval != 30*time.Second {
		t.Errorf("status_interval %v", pre.StatusInterval)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	cases := []struct {
		name, yaml, field string
	}{
		{"UnknownTopKey", "data_dri: x\n", "data_dri"},
		{"UnknownNestedKey", "http:\n  listn: 1\n", "http.listn"},
		{"UnknownSourceKey", "sources:\n  - name: a\n    kind: flow\n    endpont: x\n", "sources[0].endpont"},
		{"KeyOfAnotherKind", "sources:\n  - name: a\n    kind: flow\n    coinbases: [x]\n", "sources[0].coinbases"},
		{"BadLevel", "log: {level: loud}\n", "log.level"},
		{"BadListen", "http: {listen: nowhere}\n", "http.listen"},
		{"PublicWithoutToken", "http: {listen: 0.0.0.0:8080}\n", "http.token"},
		{"DuplicateName", "sources:\n  - {name: a, kind: flow}\n  - {name: a, kind: presearch}\n", "sources[1].name"},
		{"BadName", "sources:\n  - {name: A_b, kind: flow}\n", "sources[0].name"},
		{"NoKind", "sources:\n  - {name: a}\n", "sources[0].kind"},
		{"BadKind", "sources:\n  - {name: a, kind: ethereum}\n", "sources[0].kind"},
		{"ZeroBatch", "store: {batch_max_records: 0}\n", "store.batch_max_records"},
		{"AllowedHostWithPort", "http: {allowed_hosts: [evindex.example, \"proxy.example:443\"]}\n", "http.allowed_hosts[1]"},
		{"AllowedHostURL", "http: {allowed_hosts: [\"https://proxy.example\"]}\n", "http.allowed_hosts[0]"},
		{"ZeroStreams", "http: {max_streams: 0}\n", "http.max_streams"},
		{"ZeroBackups", "http: {max_backups: 0}\n", "http.max_backups"},
		{"HistoryEndpointURL", "sources:\n  - {name: a, kind: flow, endpoint: x:1, history_endpoints: [y:1, \"grpc://z:1\"]}\n", "sources[0].history_endpoints[1]"},
		{"HistoryEndpointRepeated", "sources:\n  - {name: a, kind: flow, endpoint: x:1, history_endpoints: [x:1]}\n", "sources[0].history_endpoints[0]"},
		{"BadBackend", "store: {backend: sqlite}\n", "store.backend"},
		{"PostgresWithoutDSN", "store: {backend: postgres}\n", "store.postgres.dsn"},
		{"DSNOnBolt", "store: {postgres: {dsn: postgres://localhost/x}}\n", "store.postgres"},
		{"ShortLease", "store: {backend: postgres, postgres: {dsn: postgres://localhost/x, lease_ttl: 100ms}}\n", "store.postgres.lease_ttl"},
		{"UnknownPostgresKey", "store: {backend: postgres, postgres: {dns: x}}\n", "store.postgres.dns"},
		{"BoltWithoutDataDir", "data_dir: ''\n", "data_dir"},
		{"NegativeMemoryLimit", "memory: {limit_mb: -5}\n", "memory.limit_mb"},
		{"ZeroGCPercent", "memory: {gc_percent: 0}\n", "memory.gc_percent"},
		{"GCOffWithoutLimit", "memory: {limit_mb: 0, gc_percent: -1}\n", "memory.gc_percent"},
		{"NegativeStallThreshold", "sources:\n  - {name: a, kind: flow, endpoint: x:1, stall_threshold: -1m}\n", "sources[0].stall_threshold"},
		{"StallThresholdNotADuration", "sources:\n  - {name: a, kind: flow, endpoint: x:1, stall_threshold: soon}\n", "sources[0].stall_threshold"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(c.yaml), noEnv)
			if err == nil {
				err = cfg.Validate()
			}
			ce, ok := asConfigError(err)
			if !ok {
				t.Fatalf("got %v, want a ConfigError", err)
			}
			if ce.Field != c.field {
				t.Fatalf("field %q (%v), want %q", ce.Field, err, c.field)
			}
		})
	}
}

// TestHTTPLimitsAndHosts reads the Host allowlist and the caps on long
// responses, and their defaults.
func TestHTTPLimitsAndHosts(t *testing.T) {
	cfg, err := ParseConfig([]byte("http: {allowed_hosts: [evindex.example.org], max_streams: 4}\n"), noEnv)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.HTTP.AllowedHosts) != 1 || cfg.HTTP.AllowedHosts[0] != "evindex.example.org" || cfg.HTTP.MaxStreams != 4 || cfg.HTTP.MaxBackups != 2 {
		t.Fatalf("http %+v", cfg.HTTP)
	}
}

func TestInsecureAllowsPublicListen(t *testing.T) {
	cfg, err := ParseConfig([]byte("http: {listen: 0.0.0.0:8080, insecure: true}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestEnvOverridesAndFlags(t *testing.T) {
	env := map[string]string{"EVINDEX_HTTP_LISTEN": "127.0.0.1:9999", "EVINDEX_LOG_LEVEL": "warn"}
	fs := newFlagSet(env2(t), "run", "", "")
	var f runFlags
	fs.StringVar(&f.httpListen, "http-listen", "", "")
	fs.StringVar(&f.logLevel, "log-level", "", "")
	fs.StringVar(&f.config, "config", "", "")
	if err := parseFlags(fs, []string{"--log-level", "error"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadRunConfig(fs, &f, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Listen != "127.0.0.1:9999" {
		t.Errorf("EVINDEX_HTTP_LISTEN ignored: %s", cfg.HTTP.Listen)
	}
	if cfg.Log.Level != "error" {
		t.Errorf("a flag must win over the environment: %s", cfg.Log.Level)
	}
}

func env2(t *testing.T) env {
	return env{getenv: noEnv, stdout: &strings.Builder{}, stderr: &strings.Builder{}}
}

// TestSpacemeshHasItsOwnTLS: a spacemesh source's tls key is its own, not
// a Flow key it shares.
func TestSpacemeshHasItsOwnTLS(t *testing.T) {
	cfg, err := ParseConfig([]byte("sources:\n  - {name: f, kind: flow, endpoint: 127.0.0.1:1}\n  - {name: s, kind: spacemesh, public_endpoint: 127.0.0.1:9092, tls: true}\n"), noEnv)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	if fl, sm := cfg.Sources[0].Settings.(*flow.Config), cfg.Sources[1].Settings.(*spacemesh.Config); fl.TLS || !sm.TLS {
		t.Fatalf("flow tls %v, spacemesh tls %v; want false, true", fl.TLS, sm.TLS)
	}
}

// TestConfigErrorsNamePathAndLine runs `evindex run` on configs with a
// value of the wrong shape, in block and flow style: each exits 2 with the
// field's path and line, never "a value has the wrong type" or another
// field's name.
func TestConfigErrorsNamePathAndLine(t *testing.T) {
	dir := t.TempDir()
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, yaml, says string
	}{
		{"ListForText", "data_dir: [1,2]\n", "data_dir: want text (line 1)"},
		{"ListForListen", "http: {listen: [1]}\n", "http.listen: want text (line 1)"},
		{"MappingForSources", "sources: {a: 1}\n", "sources: want a list (line 1)"},
		{"NegativeHeightFlowStyle", "sources:\n  - {name: a, kind: flow, endpoint: 127.0.0.1:1, start_height: -1}\n", "sources[0].start_height: want a whole number, not negative (line 2)"},
		{"NegativeHeightBlock", "sources:\n  - name: a\n    kind: flow\n    endpoint: 127.0.0.1:1\n    start_height: -1\n", "sources[0].start_height: want a whole number, not negative (line 5)"},
		{"TextForNumber", "store:\n  batch_max_records: many\n", "store.batch_max_records: want a whole number (line 2)"},
		{"BadDuration", "store: {batch_max_delay: soon}\n", "store.batch_max_delay: want a duration such as 100ms or 15s (line 1)"},
		{"PortOutOfRange", "http:\n  listen: 127.0.0.1:99999\n", "http.listen: \"127.0.0.1:99999\": the port must be a number from 0 to 65535 (line 2)"},
		{"DanglingSymlinkDataDir", "data_dir: " + dangling + "\n", "data_dir: " + dangling + " is a symlink to " + filepath.Join(dir, "nowhere") + ", which does not exist (line 1)"},
		{"YesIsNotABool", "http: {listen: 0.0.0.0:8080, insecure: \"yes\"}\n", "http.insecure: want true or false (line 1)"},
		{"OnIsNotABool", "http:\n  insecure: on\n", "http.insecure: want true or false (line 2)"},
		{"ValidateNamesTheLine", "log:\n  level: loud\n", "log.level: \"loud\": want debug, info, warn or error (line 2)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), []string{"run", "--config", writeConfig(t, t.TempDir(), tt.yaml)}, noEnv, io.Discard, &stderr)
			if code := exitCode(err, &stderr); code != 2 || !strings.Contains(stderr.String(), tt.says) {
				t.Fatalf("exit %d: %s; want exit 2 saying %q", code, stderr.String(), tt.says)
			}
		})
	}
	// A quoted "false" is false, as an unquoted one is, and "TRUE" true.
	for yaml, want := range map[string]bool{"http: {insecure: \"false\"}\n": false, "http: {insecure: false}\n": false, "http: {insecure: \"TRUE\"}\n": true} {
		cfg, err := ParseConfig([]byte(yaml), noEnv)
		if err != nil || cfg.HTTP.Insecure != want {
			t.Errorf("%q: insecure %v (%v), want %v", yaml, cfg.HTTP.Insecure, err, want)
		}
	}
	// A flag's bad value is the flag's, with no line of the file.
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"run", "--config", writeConfig(t, t.TempDir(), "http:\n  listen: 127.0.0.1:8080\n"), "--http-listen", "127.0.0.1:70000"}, noEnv, io.Discard, &stderr)
	if code := exitCode(err, &stderr); code != 2 || !strings.Contains(stderr.String(), "--http-listen: ") || strings.Contains(stderr.String(), "line") {
		t.Fatalf("--http-listen 127.0.0.1:70000: exit %d: %s", code, stderr.String())
	}
}

// TestPostgresStoreConfig: the store block of CONFIG.md selects PostgreSQL
// from the environment, needs no data_dir, and a bad DSN is reported by
// its field without repeating it (it holds the password).
func TestPostgresStoreConfig(t *testing.T) {
	env := map[string]string{"EVINDEX_PG_DSN": "postgres://evindex:hunter2@db.internal:5432/evindex"}
	cfg, err := ParseConfig([]byte(`
data_dir: ""
instance: ingest-a
store:
  backend: postgres
  postgres:
    dsn: ${EVINDEX_PG_DSN}
    read_dsn: postgres://reader:hunter3@replica.internal/evindex
    lease_ttl: 6s
`), func(k string) string { return env[k] })
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	pg := cfg.Store.Postgres
	if cfg.Store.Backend != BackendPostgres || pg.DSN != env["EVINDEX_PG_DSN"] || pg.LeaseTTL != 6*time.Second || cfg.Instance != "ingest-a" {
		t.Fatalf("store block not decoded: %+v instance %q", cfg.Store, cfg.Instance)
	}
	if pg.MaxReplayLag != 30*time.Second {
		t.Errorf("max_replay_lag default %v, want 30s", pg.MaxReplayLag)
	}

	for _, field := range []string{"dsn", "read_dsn"} {
		t.Run("Bad_"+field, func(t *testing.T) {
			dsns := map[string]string{"dsn": "postgres://evindex:hunter1@db.internal/evindex",
				field: "postgres://evindex:hunter2@db.internal:notaport/evindex"}
			cfg, err := ParseConfig([]byte("store:\n  backend: postgres\n  postgres:\n    dsn: ${dsn:-}\n    read_dsn: ${read_dsn:-}\n"),
				func(k string) string { return dsns[k] })
			if err == nil {
				err = cfg.Validate()
			}
			ce, ok := asConfigError(err)
			if !ok || ce.Field != "store.postgres."+field {
				t.Fatalf("got %v, want a ConfigError on store.postgres.%s", err, field)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}

// TestMemoryBudget: the default budget is under the 256 MB an ingesting
// process may use, the file and EVINDEX_MEMORY_* set it, a flag wins, and
// GOMEMLIMIT or GOGC in the environment keep the runtime's own reading.
func TestMemoryBudget(t *testing.T) {
	d := DefaultConfig().Memory
	if d.LimitMB <= 0 || d.LimitMB >= 256 || d.GCPercent <= 100 {
		t.Errorf("default memory budget %+v, want a limit under 256 MiB and a GC percent above Go's 100", d)
	}
	cfg, err := ParseConfig([]byte("memory: {limit_mb: 96, gc_percent: 800}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Memory != (MemoryConfig{LimitMB: 96, GCPercent: 800}) {
		t.Errorf("memory from the file: %+v", cfg.Memory)
	}
	env := map[string]string{"EVINDEX_MEMORY_LIMIT_MB": "120", "EVINDEX_MEMORY_GC_PERCENT": "200"}
	fs := newFlagSet(env2(t), "run", "", "")
	var f runFlags
	fs.Int("memory-limit-mb", 0, "")
	fs.Int("memory-gc-percent", 0, "")
	if err := parseFlags(fs, []string{"--memory-gc-percent", "300"}); err != nil {
		t.Fatal(err)
	}
	cfg, err = loadRunConfig(fs, &f, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Memory != (MemoryConfig{LimitMB: 120, GCPercent: 300}) {
		t.Errorf("memory from environment and flag: %+v, want limit 120 (env) and percent 300 (flag)", cfg.Memory)
	}

	before := debug.SetMemoryLimit(-1)
	restore := memoryBudget(cfg.Memory, noEnv)
	if got := debug.SetMemoryLimit(-1); got != 120<<20 {
		t.Errorf("memory limit applied %d, want %d", got, 120<<20)
	}
	restore()
	restore = memoryBudget(cfg.Memory, func(k string) string { return map[string]string{"GOMEMLIMIT": "1GiB"}[k] })
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("with GOMEMLIMIT set the limit became %d, want the runtime's %d", got, before)
	}
	restore()
}
