package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// demoState survives restarts of the demo in its data dir, so the
// simulated chains continue where wall-clock time says they are and a
// restarted demo resumes instead of meeting a different history.
type demoState struct {
	Started time.Time `json:"started"`
	// History is the demoHistory the data dir was made with.
	History int `json:"history"`
}

// demoHistory numbers the shape of the demo's simulated histories (block
// and layer times, layer duration, epochs). A data dir made with another
// would meet a different chain at the same heights, so it is refused
// rather than resumed. 2: four weeks of back-history, five-minute layers.
const demoHistory = 2

func runDemoCmd(ctx context.Context, e env, args []string) error {
	fset := newFlagSet(e, "demo", "[--data-dir DIR] [--http-listen ADDR]",
		"Starts simulated "+kindTitles()+" upstreams on loopback and indexes\n"+
			"them with the embedded defaults. Stop it with Ctrl-C; run it again to resume.")
	// The spelling of evindex run; --data and --http stay as quiet aliases.
	dir := fset.String("data-dir", "./evindex-demo", "data directory")
	listen := fset.String("http-listen", "127.0.0.1:8080", "API listen address")
	aliasFlag(fset, "data", "data-dir")
	aliasFlag(fset, "http", "http-listen")
	level := fset.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	state, err := loadDemoState(*dir, time.Now().UTC())
	if err != nil {
		return err
	}
	cfg := DefaultConfig()
	cfg.DataDir = *dir
	cfg.HTTP.Listen = *listen
	cfg.Log.Level = *level
	var upstreams strings.Builder
	for _, k := range sourceKinds {
		sim, err := k.Simulator.Demo(ctx, state.Started)
		if err != nil {
			return err
		}
		defer sim.Close()
		cfg.Sources = append(cfg.Sources, SourceConfig{Name: sim.Name, Kind: k.Name, Settings: sim.Config})
		fmt.Fprintf(&upstreams, "  %-18s %s\n", sim.Upstream, sim.Addr)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	hooks := &daemonHooks{
		ready: func(addr string) {
			fmt.Fprintf(e.stdout, `
evindex demo: indexing simulated upstreams into %s
%s
Open http://%s/ for the dashboard, or try:
  curl -s 'http://%s/v1/sources'
  curl -s 'http://%s/v1/events?limit=5'
  curl -s 'http://%s/v1/rewards/summary?group_by=day'
  curl -s 'http://%s/readyz'    # 503 while a source backfills, 200 once every source is live
The sources backfill their history first (a few seconds to minutes); the data
is queryable meanwhile. Stop with Ctrl-C; run the same command again to resume
where it stopped.

`, filepath.Join(*dir, "evindex.db"), upstreams.String(), addr, addr, addr, addr, addr)
		},
	}
	return runDaemon(ctx, cfg, e, hooks)
}

// kindTitles names the kinds in prose: "Flow, Spacemesh and Presearch".
func kindTitles() string {
	titles := make([]string, len(sourceKinds))
	for i, k := range sourceKinds {
		titles[i] = k.Title
	}
	if len(titles) < 2 {
		return strings.Join(titles, "")
	}
	return strings.Join(titles[:len(titles)-1], ", ") + " and " + titles[len(titles)-1]
}

func loadDemoState(dir string, now time.Time) (demoState, error) {
	path := filepath.Join(dir, "demo.json")
	raw, err := os.ReadFile(path)
	if err == nil {
		var s demoState
		if err := json.Unmarshal(raw, &s); err != nil || s.Started.IsZero() {
			return demoState{}, fmt.Errorf("%s: not a demo state file; remove it or use another --data-dir", path)
		}
		if s.History != demoHistory {
			return demoState{}, fmt.Errorf("%s: made by an older evindex demo, whose simulated history differs; remove %s or use another --data-dir", path, dir)
		}
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return demoState{}, fmt.Errorf("demo state: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return demoState{}, fmt.Errorf("create data dir: %w", err)
	}
	s := demoState{Started: now, History: demoHistory}
	raw, _ = json.Marshal(s)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return demoState{}, fmt.Errorf("demo state: %w", err)
	}
	return s, nil
}
