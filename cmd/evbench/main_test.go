package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for evbench when the harness
// starts a phase in a child process.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(exitCode(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
	}
	os.Exit(m.Run())
}

// tinyConfig runs every phase on a few thousand events.
func tinyConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.Events = 2000
	cfg.IngestEvents = 1000
	cfg.QuerySamples = 10
	cfg.BackfillHeights = 1000
	cfg.BackfillSequentialHeights = 1000
	cfg.BackfillLatency = 2 * time.Millisecond
	cfg.Dir = t.TempDir()
	return cfg
}

func TestRunTinyJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := tinyConfig(t)
	cfg.ProfileDir = t.TempDir()
	var progress bytes.Buffer
	res, err := Run(ctx, cfg, &progress)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	// -profile: pprof files (gzipped protobuf) of the phases and of evbench.
	for _, name := range []string{"ingest.cpu.pprof", "ingest.alloc.pprof", "store.cpu.pprof", "evbench.cpu.pprof"} {
		b, err := os.ReadFile(filepath.Join(cfg.ProfileDir, name))
		if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("profile %s: %v, %d bytes, want a gzipped pprof file", name, err, len(b))
		}
	}
	var out bytes.Buffer
	if err := res.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	for _, k := range []string{"events", "stream_eps", "store_eps", "e2e_eps", "sqlite_eps",
		"backfill_eps", "backfill_sequential_eps", "backfill_theory_eps", "backfill_nostore_hps", "backfill_node_hps", "resume_ms",
		"peak_rss_mb", "db_bytes_per_event", "payload_bytes_per_event", "floor_eps", "apply_floor_ratio", "e2e_floor_ratio", "e2e_go_gc_eps", "go_gc_peak_rss_mb"} {
		v, ok := got[k].(float64)
		if !ok || !(v > 0) {
			t.Errorf("%s = %v, want a positive number", k, got[k])
		}
	}
	// PostgreSQL is measured wherever its server is installed; CI installs
	// it, so there it must be.
	measuredPG := got["pg_e2e_eps"].(float64) > 0
	if !measuredPG && (os.Getenv("CI") == "true" || !strings.Contains(strings.Join(res.Notes, "\n"), "PostgreSQL not measured")) {
		t.Errorf("PostgreSQL not measured: %v", res.Notes)
	}
	if measuredPG {
		for _, k := range []string{"pg_e2e_eps", "pg_store_eps", "pg_bytes_per_event"} {
			if v, ok := got[k].(float64); !ok || !(v > 0) {
				t.Errorf("%s = %v, want a positive number", k, got[k])
			}
		}
		for _, q := range queryNames {
			if v, ok := got["pg_query_p99_ms"].(map[string]any)[q].(float64); !ok || !(v > 0) {
				t.Errorf("pg_query_p99_ms[%s] = %v, want a positive number", q, v)
			}
		}
	}
	if n := got["events"].(float64); n < float64(cfg.Events) {
		t.Errorf("events = %v, want at least %d", n, cfg.Events)
	}
	for _, k := range []string{"query_p50_ms", "query_p99_ms", "sqlite_query_p99_ms"} {
		m, ok := got[k].(map[string]any)
		if !ok {
			t.Errorf("%s missing", k)
			continue
		}
		for _, q := range queryNames {
			if v, ok := m[q].(float64); !ok || !(v > 0) {
				t.Errorf("%s[%s] = %v, want a positive number", k, q, m[q])
			}
		}
	}
	for _, n := range res.Notes {
		// A range call the node did not precompute would count flowsim
		// building blocks against the backfill.
		if strings.Contains(n, "differ") || strings.Contains(n, "not precomputed") {
			t.Errorf("note: %s", n)
		}
	}
	var table bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"raw stream", "raw store", "end to end", "SQLite", "targets", "rewards_summary"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"Defaults", nil, ""},
		{"Large", []string{"-events", "10000000"}, ""},
		{"TooFewEvents", []string{"-events", "5"}, "-events"},
		{"NoWorkers", []string{"-backfill-workers", "0"}, "-backfill-workers"},
		{"ZeroLatency", []string{"-backfill-latency", "0s"}, "-backfill-latency"},
		{"ShortBackfill", []string{"-backfill-heights", "400"}, "-backfill-heights"},
		{"Stray", []string{"extra"}, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := parseFlags(tt.args, &bytes.Buffer{})
			if err == nil {
				err = cfg.Validate()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one naming %q", err, tt.wantErr)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	for _, tt := range []struct {
		p    float64
		want float64
	}{{0.5, 5}, {0.99, 10}, {0.1, 1}} {
		if got := percentile(xs, tt.p); got != tt.want {
			t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
}

// TestTargetsCoverEveryQuery: every query evbench times has its p99
// target and its SQLite comparison in the target list (the summary
// included), and the floor ratios are judged from the rates.
func TestTargetsCoverEveryQuery(t *testing.T) {
	r := newResult(DefaultConfig())
	r.StreamEPS, r.StoreEPS, r.FloorEPS, r.E2EEPS = 200_000, 70_000, 100_000, 60_000
	for _, q := range queryNames {
		r.QueryP99MS[q], r.SQLiteQueryP99MS[q] = 6, 7
	}
	r.finish(time.Second)
	byName := map[string]Target{}
	for _, tg := range r.Targets {
		byName[tg.Name] = tg
	}
	for _, q := range queryNames {
		found := false
		for name, tg := range byName {
			if strings.HasPrefix(name, "p99 "+q+" (") {
				found = true
				if tg.Met || tg.Want != "<= 5 ms" {
					t.Errorf("%s: %+v, want a missed <= 5 ms target at 6 ms", name, tg)
				}
			}
		}
		if !found {
			t.Errorf("no p99 target for %s", q)
		}
		if tg, ok := byName["p99 "+q+" vs SQLite"]; !ok || !tg.Met {
			t.Errorf("p99 %s vs SQLite: %+v, want a met target", q, tg)
		}
	}
	if tg := byName["raw store vs floor (bbolt alone, Apply's writes)"]; tg.Met || tg.Got != 0.7 {
		t.Errorf("raw store vs floor: %+v, want 0.70 missed", tg)
	}
	if tg := byName["end to end vs min(raw stream, floor)"]; tg.Met || tg.Got != 0.6 {
		t.Errorf("end to end vs floor: %+v, want 0.60 missed", tg)
	}
}
