package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evindex/evindex/store"
)

// MetricDef is one metric of the monitoring collector: what /metrics
// serves per node and per tracked account, and what the generated
// Prometheus rules and Grafana dashboard are built from, so they cannot
// drift apart.
type MetricDef struct {
	Name   string
	Help   string
	Type   prometheus.ValueType // GaugeValue or CounterValue
	Labels []string
}

// The monitoring metrics. Their labels take only the configured sources
// and the nodes and accounts those sources track, so the series are
// bounded by the config.
var (
	MetricNodeConnected = MetricDef{"evindex_node_connected", "1 when the node's latest stored status says it is connected (Presearch), or has peers (Spacemesh), else 0.", prometheus.GaugeValue, []string{"source", "node"}}
	MetricNodeSynced    = MetricDef{"evindex_node_synced", "1 when the node's latest stored status says it is synced (Spacemesh), else 0.", prometheus.GaugeValue, []string{"source", "node"}}
	MetricNodePeers     = MetricDef{"evindex_node_peers", "Connected peers of the node (Spacemesh).", prometheus.GaugeValue, []string{"source", "node"}}
	MetricNodeTopLayer  = MetricDef{"evindex_node_top_layer", "The newest layer the node knows of (Spacemesh).", prometheus.GaugeValue, []string{"source", "node"}}
	MetricNodeVerified  = MetricDef{"evindex_node_verified_layer", "The newest layer the node has verified (Spacemesh).", prometheus.GaugeValue, []string{"source", "node"}}
	MetricNodeStatusAge = MetricDef{"evindex_node_status_time_seconds", "Unix time of the node's latest stored status.", prometheus.GaugeValue, []string{"source", "node"}}
	MetricNodeReliable  = MetricDef{"evindex_node_reliability_score", "The node's average reliability score over its last stats window (Presearch).", prometheus.GaugeValue, []string{"source", "node"}}
	MetricNodeUptime    = MetricDef{"evindex_node_uptime_score", "The node's average uptime score over its last stats window (Presearch).", prometheus.GaugeValue, []string{"source", "node"}}
	MetricNodeLatency   = MetricDef{"evindex_node_latency_seconds", "The node's average request latency over its last stats window (Presearch).", prometheus.GaugeValue, []string{"source", "node"}}
	MetricNodeEarned    = MetricDef{"evindex_node_last_window_earned", "What the node earned in its last stats window, in whole units (Presearch: PRE).", prometheus.GaugeValue, []string{"source", "node", "unit"}}
	MetricRewardsRaw    = MetricDef{"evindex_rewards_raw_total", "Sum of the stored rewards of a tracked account, in base units (10^-decimals of unit).", prometheus.CounterValue, []string{"source", "account", "unit"}}
	MetricRewards       = MetricDef{"evindex_rewards_total", "Stored rewards of a tracked account.", prometheus.CounterValue, []string{"source", "account"}}
	MetricMissed        = MetricDef{"evindex_missed_rewards_total", "Missed rewards of a tracked smesher (see /v1/rewards/missed), by reason.", prometheus.CounterValue, []string{"source", "account", "reason"}}
	MetricAlertsFiring  = MetricDef{"evindex_alerts_firing", "Alerts of evindex's own rules firing now (see /v1/alerts), by rule; 0 for a rule whose alerts of the source all resolved.", prometheus.GaugeValue, []string{"source", "rule"}}
)

// MonitoringMetrics lists every metric of the monitoring collector.
func MonitoringMetrics() []MetricDef {
	return []MetricDef{MetricNodeConnected, MetricNodeSynced, MetricNodePeers, MetricNodeTopLayer, MetricNodeVerified,
		MetricNodeStatusAge, MetricNodeReliable, MetricNodeUptime, MetricNodeLatency, MetricNodeEarned,
		MetricRewardsRaw, MetricRewards, MetricMissed, MetricAlertsFiring}
}

// monitorCollector serves the monitoring metrics from the store at scrape
// time, so they hold after a restart (a counter is the stored total, not
// what this process saw), with the answer cached for cacheFor: a scrape
// every few seconds reads the store once.
type monitorCollector struct {
	st       store.Store
	sources  func() []store.SourceStatus
	now      func() time.Time
	cacheFor time.Duration

	descs map[string]*prometheus.Desc

	mu      sync.Mutex
	at      time.Time
	metrics []prometheus.Metric
}

func newMonitorCollector(st store.Store, sources func() []store.SourceStatus, now func() time.Time) *monitorCollector {
	c := &monitorCollector{st: st, sources: sources, now: now, cacheFor: 5 * time.Second, descs: map[string]*prometheus.Desc{}}
	for _, m := range MonitoringMetrics() {
		c.descs[m.Name] = prometheus.NewDesc(m.Name, m.Help, m.Labels, nil)
	}
	return c
}

// Describe sends every metric's description.
func (c *monitorCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect sends the metrics, read again when the cache is older than
// cacheFor; a store that fails answers an invalid metric naming the error.
func (c *monitorCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.metrics == nil || c.now().Sub(c.at) >= c.cacheFor {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ms, err := c.read(ctx)
		cancel()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.descs[MetricNodeConnected.Name], fmt.Errorf("monitoring metrics: %w", err))
			return
		}
		c.metrics, c.at = ms, c.now()
	}
	for _, m := range c.metrics {
		ch <- m
	}
}

// read builds every metric of the configured sources from the store.
func (c *monitorCollector) read(ctx context.Context) ([]prometheus.Metric, error) {
	var out []prometheus.Metric
	add := func(def MetricDef, v float64, labels ...string) {
		out = append(out, prometheus.MustNewConstMetric(c.descs[def.Name], def.Type, v, labels...))
	}
	stored, err := c.st.Sources(ctx)
	if err != nil {
		return nil, err
	}
	for _, src := range c.sources() {
		if !slices.ContainsFunc(stored, func(in store.SourceInfo) bool { return in.Name == src.Name }) {
			continue // nothing stored yet
		}
		nodes, err := c.st.Nodes(ctx, src.Name)
		if err != nil {
			return nil, err
		}
		for _, n := range nodes {
			if err := c.nodeMetrics(ctx, add, &n); err != nil {
				return nil, err
			}
		}
		if err := c.rewardMetrics(ctx, add, src.Name); err != nil {
			return nil, err
		}
		if err := c.alertMetrics(ctx, add, src.Name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// nodeDetails are the status fields the node metrics read, as the sources
// store them (API.md: GET /v1/nodes).
type nodeDetails struct {
	ConnectedPeers *float64 `json:"connected_peers"`
	TopLayer       *float64 `json:"top_layer"`
	VerifiedLayer  *float64 `json:"verified_layer"`
}

// windowDetails are the stats fields of a Presearch window's reward.
type windowDetails struct {
	Reliability *float64 `json:"avg_reliability_score"`
	Uptime      *float64 `json:"avg_uptime_score"`
	LatencyMs   *float64 `json:"avg_latency_ms"`
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *monitorCollector) nodeMetrics(ctx context.Context, add func(MetricDef, float64, ...string), n *store.NodeStatus) error {
	var d nodeDetails
	_ = json.Unmarshal(n.Details, &d) // a field that does not decode is left out
	add(MetricNodeStatusAge, float64(n.Time.UnixNano())/1e9, n.Source, n.Node)
	if n.Connected != nil {
		add(MetricNodeConnected, bool01(*n.Connected), n.Source, n.Node)
	}
	if n.Synced != nil {
		add(MetricNodeSynced, bool01(*n.Synced), n.Source, n.Node)
	}
	for _, f := range []struct {
		def MetricDef
		v   *float64
	}{{MetricNodePeers, d.ConnectedPeers}, {MetricNodeTopLayer, d.TopLayer}, {MetricNodeVerified, d.VerifiedLayer}} {
		if f.v != nil {
			add(f.def, *f.v, n.Source, n.Node)
		}
	}
	// A node whose rewards are its windows (Presearch: the node's key is
	// the account) shows its last window's stats.
	p, err := c.st.Rewards(ctx, store.RewardQuery{Source: n.Source, Accounts: []string{n.Node}, Desc: true, Limit: 1})
	if err != nil {
		return err
	}
	if len(p.Items) == 0 || p.Items[0].PeriodEnd.IsZero() || p.Items[0].Account != n.Node {
		return nil
	}
	r := p.Items[0]
	var w windowDetails
	_ = json.Unmarshal(r.Details, &w)
	if w.Reliability != nil {
		add(MetricNodeReliable, *w.Reliability, n.Source, n.Node)
	}
	if w.Uptime != nil {
		add(MetricNodeUptime, *w.Uptime, n.Source, n.Node)
	}
	if w.LatencyMs != nil {
		add(MetricNodeLatency, *w.LatencyMs/1000, n.Source, n.Node)
	}
	if raw, ok := new(big.Float).SetString(r.RawAmount); ok {
		v, _ := new(big.Float).Quo(raw, new(big.Float).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(r.Decimals)), nil))).Float64()
		add(MetricNodeEarned, v, n.Source, n.Node, r.Unit)
	}
	return nil
}

// rewardMetrics are the stored totals per account and the missed rewards
// per smesher and reason.
func (c *monitorCollector) rewardMetrics(ctx context.Context, add func(MetricDef, float64, ...string), source string) error {
	rows, err := c.st.RewardSummary(ctx, store.SummaryQuery{RewardQuery: store.RewardQuery{Source: source}, GroupBy: store.GroupMonth})
	if err != nil {
		return err
	}
	type total struct {
		account, unit string
		sum           *big.Int
		count         uint64
	}
	var totals []*total
	for _, r := range rows {
		i := slices.IndexFunc(totals, func(t *total) bool { return t.account == r.Account && t.unit == r.Unit })
		if i < 0 {
			i = len(totals)
			totals = append(totals, &total{account: r.Account, unit: r.Unit, sum: new(big.Int)})
		}
		totals[i].sum.Add(totals[i].sum, r.RawAmount)
		totals[i].count += r.Count
	}
	counts := map[string]uint64{}
	for _, t := range totals {
		v, _ := new(big.Float).SetInt(t.sum).Float64()
		add(MetricRewardsRaw, v, source, t.account, t.unit)
		counts[t.account] += t.count
	}
	for acct, n := range counts {
		add(MetricRewards, float64(n), source, acct)
	}
	missed := map[[2]string]uint64{}
	q := store.MissedQuery{Source: source, Limit: store.MaxLimit}
	for {
		p, err := store.MissedRewards(ctx, c.st, q)
		if err != nil {
			return err
		}
		for _, m := range p.Items {
			missed[[2]string{m.Account, m.Reason}]++
		}
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	for k, n := range missed {
		add(MetricMissed, float64(n), source, k[0], k[1])
	}
	return nil
}

// alertMetrics counts the source's firing alerts per rule, from the
// newest episode of each (rule, subject): the rules that ever fired for
// the source, a bounded set.
func (c *monitorCollector) alertMetrics(ctx context.Context, add func(MetricDef, float64, ...string), source string) error {
	latest, err := c.st.LatestAlerts(ctx, source)
	if err != nil {
		return err
	}
	firing := map[string]int{}
	var rules []string
	for _, a := range latest {
		if _, seen := firing[a.Rule]; !seen {
			rules = append(rules, a.Rule)
			firing[a.Rule] = 0
		}
		if a.State == store.AlertFiring {
			firing[a.Rule]++
		}
	}
	for _, r := range rules {
		add(MetricAlertsFiring, float64(firing[r]), source, r)
	}
	return nil
}
