package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/indexer/presearch/presim"
	"github.com/evindex/evindex/indexer/spacemesh/smsim"
)

// Demo chain parameters: a few thousand Flow blocks of history and one new
// block a second; one-second Spacemesh layers; Presearch time at 60x so an
// hourly earnings window closes every real minute.
const (
	demoFlowHistory    = 3000
	demoBlockInterval  = time.Second
	demoSpacemeshStart = 120 // layers of history at the first start
	demoPresearchSpeed = 60
)

// demoState survives restarts of the demo in its data dir, so the
// simulated chains continue where wall-clock time says they are and a
// restarted demo resumes instead of meeting a different history.
type demoState struct {
	Started time.Time `json:"started"`
}

func runDemoCmd(ctx context.Context, e env, args []string) error {
	fset := newFlagSet(e, "demo", "[--data DIR] [--http ADDR]",
		"Starts simulated Flow, Spacemesh and Presearch upstreams on loopback and indexes\n"+
			"them with the embedded defaults. Stop it with Ctrl-C; run it again to resume.")
	dir := fset.String("data", "./evindex-demo", "data directory")
	listen := fset.String("http", "127.0.0.1:8080", "API listen address")
	level := fset.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fset, args); err != nil {
		return err
	}
	state, err := loadDemoState(*dir, time.Now().UTC())
	if err != nil {
		return err
	}
	elapsed := time.Since(state.Started)

	fcfg := flowsim.DefaultConfig()
	fcfg.History = demoFlowHistory + uint64(elapsed/demoBlockInterval)
	fcfg.BlockInterval = demoBlockInterval
	// Block times follow the wall clock, ending the history at the demo's
	// first start, so Flow rewards show on the dashboard's recent days.
	fcfg.BlockTimeStep = demoBlockInterval
	fcfg.GenesisTime = state.Started.Add(-demoFlowHistory * demoBlockInterval)
	fsim, err := flowsim.Start(ctx, "127.0.0.1:0", fcfg)
	if err != nil {
		return fmt.Errorf("flow simulator: %w", err)
	}
	defer fsim.Close()

	scfg := smsim.DefaultConfig()
	scfg.LayerInterval, scfg.LayerDuration = demoBlockInterval, demoBlockInterval
	scfg.Genesis = state.Started.Add(-demoSpacemeshStart * demoBlockInterval).Truncate(time.Second)
	scfg.Layers = uint32(time.Since(scfg.Genesis) / demoBlockInterval)
	ssim, err := smsim.Start(ctx, "127.0.0.1:0", "127.0.0.1:0", scfg)
	if err != nil {
		return fmt.Errorf("spacemesh simulator: %w", err)
	}
	defer ssim.Close()

	// Presearch time runs fast from the demo's first start, and its nodes
	// were born a month before it, so a restart continues the same history.
	psim, err := presim.Start(ctx, "127.0.0.1:0", presim.Config{
		Speed:   demoPresearchSpeed,
		Start:   state.Started.Add(elapsed * demoPresearchSpeed),
		Genesis: state.Started.Add(-30 * 24 * time.Hour).Truncate(time.Minute),
	})
	if err != nil {
		return fmt.Errorf("presearch simulator: %w", err)
	}
	defer psim.Close()

	cfg := DefaultConfig()
	cfg.DataDir = *dir
	cfg.HTTP.Listen = *listen
	cfg.Log.Level = *level
	// Presearch polls status at half the API's limit: at 60x, the limiter's
	// safety margin is a few real milliseconds, and a loaded machine's
	// request latency would otherwise earn the demo a 429.
	cfg.Sources = []SourceConfig{
		{Name: "flow-demo", Kind: "flow", Flow: FlowConfig{Endpoint: fsim.Addr(), StartHeight: fsim.RootHeight() + 1}},
		{Name: "sm-demo", Kind: "spacemesh", Spacemesh: SpacemeshConfig{
			PublicEndpoint: ssim.PublicAddr(), PrivateEndpoint: ssim.PrivateAddr(),
			Coinbases: ssim.Coinbases(), Smeshers: ssim.Smeshers()}},
		{Name: "presearch-demo", Kind: "presearch", Presearch: PresearchConfig{
			BaseURL: psim.URL, APIKey: psim.Sim.APIKey(), StatusInterval: 30 * time.Second, BackfillDays: 2}},
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	hooks := &daemonHooks{
		clocks: map[string]sourceClock{"presearch-demo": {now: psim.Sim.Now, sleep: psim.Sim.Sleep}},
		ready: func(addr string) {
			fmt.Fprintf(e.stdout, `
evindex demo: indexing simulated upstreams into %s
  flow access node   %s
  spacemesh node     %s (public), %s (private)
  presearch API      %s (simulated time runs %dx)

Open http://%s/ for the dashboard, or try:
  curl -s 'http://%s/v1/sources'
  curl -s 'http://%s/v1/events?limit=5'
  curl -s 'http://%s/v1/rewards/summary?group_by=day'
Stop with Ctrl-C; run the same command again to resume where it stopped.

`, filepath.Join(*dir, "evindex.db"), fsim.Addr(), ssim.PublicAddr(), ssim.PrivateAddr(), psim.URL, demoPresearchSpeed, addr, addr, addr, addr)
		},
	}
	return runDaemon(ctx, cfg, e, hooks)
}

func loadDemoState(dir string, now time.Time) (demoState, error) {
	path := filepath.Join(dir, "demo.json")
	raw, err := os.ReadFile(path)
	if err == nil {
		var s demoState
		if err := json.Unmarshal(raw, &s); err != nil || s.Started.IsZero() {
			return demoState{}, fmt.Errorf("%s: not a demo state file; remove it or use another --data", path)
		}
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return demoState{}, fmt.Errorf("demo state: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return demoState{}, fmt.Errorf("create data dir: %w", err)
	}
	s := demoState{Started: now}
	raw, _ = json.Marshal(s)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return demoState{}, fmt.Errorf("demo state: %w", err)
	}
	return s, nil
}
