package indexer

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the ingestion metrics shared by every Runner of a process.
type Metrics struct {
	EventsCommitted  *prometheus.CounterVec
	RecordsCommitted *prometheus.CounterVec
	BatchesCommitted *prometheus.CounterVec
	CommitSeconds    prometheus.Histogram
	CheckpointHeight *prometheus.GaugeVec
	HeadHeight       *prometheus.GaugeVec
	Lag              *prometheus.GaugeVec
	Reconnects       *prometheus.CounterVec
	Up               *prometheus.GaugeVec
	// RecordsRejected counts quarantined records by source and kind.
	RecordsRejected *prometheus.CounterVec
	// RecordWarnings counts per-record warnings, logged or not.
	RecordWarnings *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	src := []string{"source"}
	m := &Metrics{
		EventsCommitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evindex_events_committed_total", Help: "Events written by committed batches."}, src),
		RecordsCommitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evindex_records_committed_total", Help: "Records (events, blocks, rewards, node snapshots) written by committed batches."}, src),
		BatchesCommitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evindex_batches_committed_total", Help: "Store transactions committed."}, src),
		CommitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "evindex_commit_seconds", Help: "Time to commit one store transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		CheckpointHeight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "evindex_checkpoint_height", Help: "Last position completely stored, per source."}, src),
		HeadHeight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "evindex_head_height", Help: "Newest position the upstream reported, per source."}, src),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "evindex_lag", Help: "Head height minus checkpoint height, per source."}, src),
		Reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evindex_reconnects_total", Help: "Failed source runs followed by a retry."}, src),
		Up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "evindex_source_live", Help: "1 while the source is live, else 0."}, src),
		RecordsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evindex_records_rejected_total", Help: "Upstream records quarantined by committed batches (listed at /v1/rejected), by kind."}, []string{"source", "kind"}),
		RecordWarnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evindex_record_warnings_total", Help: "Per-record warnings, including those the log sample left out."}, src),
	}
	if reg != nil {
		reg.MustRegister(m.EventsCommitted, m.RecordsCommitted, m.BatchesCommitted, m.CommitSeconds,
			m.CheckpointHeight, m.HeadHeight, m.Lag, m.Reconnects, m.Up, m.RecordsRejected, m.RecordWarnings)
	}
	return m
}
