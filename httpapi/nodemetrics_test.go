package httpapi

import (
	"math/big"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/evindex/evindex/store"
)

// metricValue finds the series of name with exactly labels among the
// gathered families, or reports false.
func metricValue(fams []*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func TestMonitoringMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, func(c *Config) { c.Gatherer, c.Registerer = reg, reg })
	// flow-main is stored but not configured: none of its series.
	e.status.set(store.SourceStatus{Name: smSource, Kind: "spacemesh"}, store.SourceStatus{Name: preSource, Kind: "presearch"})
	body := string(e.getOK("/metrics").body)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}

	var smSum big.Int
	smRewards, missedNI, missedNP := 0, 0, 0
	last := uint64(smFrom + smLayers - 1)
	for l := uint64(smFrom); l < smFrom+smLayers; l++ {
		switch {
		case l%4 == 0:
			smSum.Add(&smSum, smRaw(l))
			smRewards++
		case l%2 == 0 && l+10 <= last && l%8 == 2:
			missedNI++
		case l%2 == 0 && l+10 <= last:
			missedNP++
		}
	}
	smTotal, _ := new(big.Float).SetInt(&smSum).Float64()
	lastSnap := uint64(smFrom + smLayers - 1)
	for lastSnap%60 != 0 {
		lastSnap--
	}
	preSum := new(big.Int)
	for h := range preHours {
		preSum.Add(preSum, preRaw(0, h))
	}
	preTotal, _ := new(big.Float).SetInt(preSum).Float64()
	lastEarned, _ := new(big.Float).Quo(new(big.Float).SetInt(preRaw(0, preHours-1)), big.NewFloat(1e18)).Float64()
	lastUp := 0.0
	if (preHours-24)%48 == 0 {
		lastUp = 1
	}

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"evindex_rewards_raw_total", map[string]string{"source": smSource, "account": smCoinbase, "unit": "SMH"}, smTotal},
		{"evindex_rewards_total", map[string]string{"source": smSource, "account": smCoinbase}, float64(smRewards)},
		{"evindex_rewards_raw_total", map[string]string{"source": preSource, "account": preNodeA, "unit": "PRE"}, preTotal},
		{"evindex_missed_rewards_total", map[string]string{"source": smSource, "account": smSmesher, "reason": "not_included"}, float64(missedNI)},
		{"evindex_missed_rewards_total", map[string]string{"source": smSource, "account": smSmesher, "reason": "no_proposal"}, float64(missedNP)},
		{"evindex_node_peers", map[string]string{"source": smSource, "node": smSmesher}, float64(20 + lastSnap%7)},
		{"evindex_node_verified_layer", map[string]string{"source": smSource, "node": smSmesher}, float64(lastSnap - 1)},
		{"evindex_node_synced", map[string]string{"source": smSource, "node": smSmesher}, 1},
		{"evindex_node_connected", map[string]string{"source": preSource, "node": preNodeA}, lastUp},
		{"evindex_node_uptime_score", map[string]string{"source": preSource, "node": preNodeA}, 100},
		{"evindex_node_reliability_score", map[string]string{"source": preSource, "node": preNodeA}, 97.5},
		{"evindex_node_latency_seconds", map[string]string{"source": preSource, "node": preNodeA}, 0.25},
		{"evindex_node_last_window_earned", map[string]string{"source": preSource, "node": preNodeA, "unit": "PRE"}, lastEarned},
		{"evindex_alerts_firing", map[string]string{"source": preSource, "rule": "node_down"}, 1},
	} {
		got, ok := metricValue(fams, c.name, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if strings.Contains(body, flowSource) {
		t.Errorf("series of the unconfigured source %s", flowSource)
	}
	for _, d := range MonitoringMetrics() {
		if !strings.HasPrefix(d.Name, "evindex_") || (d.Type == prometheus.CounterValue) != strings.HasSuffix(d.Name, "_total") {
			t.Errorf("metric %s: counters and only counters end in _total", d.Name)
		}
		if !strings.Contains(body, "# HELP "+d.Name+" ") {
			t.Errorf("/metrics does not serve %s", d.Name)
		}
	}
}
