package main

import (
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/indexer/alerts"
)

// TestAlertRulesConfig: the alerts block's rules default as the README
// says, a source's own block changes them for that source only, and a
// bad value is named by its key.
func TestAlertRulesConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
alerts:
  node_down: {for: 2m}
  earnings_stopped: {enabled: false}
sources:
  - name: ps
    kind: presearch
    api_key: k
    alerts: {disable: [source_stalled], node_down_for: 30s}
  - name: sm
    kind: spacemesh
    public_endpoint: localhost:9092
    smeshers: ["abababababababababababababababababababababababababababababababab"]
`), noEnv)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	top := cfg.Alerts.rules()
	if top.NodeDown.For != 2*time.Minute || !top.NodeDown.Enabled || top.EarningsStopped.Enabled ||
		top.SourceStalled.For != 15*time.Minute || top.MissedReward.ResolveAfter != time.Hour || cfg.Alerts.Interval != 15*time.Second {
		t.Fatalf("alerts block %+v", top)
	}
	ps := top.For(cfg.Sources[0].Alerts)
	if ps.NodeDown.For != 30*time.Second || ps.SourceStalled.Enabled || !ps.MissedReward.Enabled {
		t.Errorf("ps's rules %+v: want node_down for 30s and source_stalled off", ps)
	}
	if sm := top.For(cfg.Sources[1].Alerts); sm != top {
		t.Errorf("sm's rules %+v, want the block's %+v", sm, top)
	}
	if d := alerts.DefaultRules(); d.NodeDown.For != 10*time.Minute || d.EarningsStopped.Windows != 3 {
		t.Errorf("defaults %+v", d)
	}
	for _, c := range []struct{ yaml, field string }{
		{"alerts: {interval: 0s}\n", "alerts.interval"},
		{"alerts: {node_down: {for: -1m}}\n", "alerts.node_down.for"},
		{"alerts: {earnings_stopped: {windows: 0}}\n", "alerts.earnings_stopped.windows"},
		{"alerts: {missed_reward: {resolve_after: 0s}}\n", "alerts.missed_reward.resolve_after"},
		{"alerts: {node_dwon: {for: 1m}}\n", "alerts.node_dwon"},
		{"sources:\n  - {name: a, kind: flow, alerts: {disable: [node_up]}}\n", "sources[0].alerts.disable[0]"},
		{"sources:\n  - {name: a, kind: flow, alerts: {earnings_stopped_windows: -1}}\n", "sources[0].alerts.earnings_stopped_windows"},
		{"sources:\n  - {name: a, kind: flow, alerts: {node_down_fro: 1m}}\n", "sources[0].alerts.node_down_fro"},
	} {
		cfg, err := ParseConfig([]byte(c.yaml), noEnv)
		if err == nil {
			err = cfg.Validate()
		}
		ce, ok := asConfigError(err)
		if !ok || ce.Field != c.field {
			t.Errorf("%q: %v, want an error naming %s", strings.TrimSpace(c.yaml), err, c.field)
		}
	}
}
