package indexer

import (
	"context"
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
	// CheckpointTime is the Unix time of each checkpoint's block or
	// window end; for a TimePositioned source it is the position itself,
	// which then never appears as a height.
	CheckpointTime *prometheus.GaugeVec
	// LagSeconds is a TimePositioned source's lag (its lag is a duration).
	LagSeconds *prometheus.GaugeVec
	// Backfill progress, in the source's own unit (blocks, layers, minutes
	// of Presearch history): done of total, and the estimate to the end.
	BackfillDone, BackfillTotal, BackfillETA *prometheus.GaugeVec
	// UpstreamErrors counts failed source runs by what the upstream
	// answered: a gRPC code (Unavailable), an HTTP status (http_429), or
	// other.
	UpstreamErrors *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	src := []string{"source"}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, src)
	}
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
		CheckpointHeight: gauge("evindex_checkpoint_height", "Last position completely stored, per source."),
		HeadHeight:       gauge("evindex_head_height", "Newest position the upstream reported, per source."),
		Lag:              gauge("evindex_lag", "Head height minus checkpoint height, per source."),
		Reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evindex_reconnects_total", Help: "Failed source runs followed by a retry."}, src),
		Up: gauge("evindex_source_live", "1 while the source is live, else 0."),
		RecordsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evindex_records_rejected_total", Help: "Upstream records quarantined by committed batches (listed at /v1/rejected), by kind."}, []string{"source", "kind"}),
		RecordWarnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evindex_record_warnings_total", Help: "Per-record warnings, including those the log sample left out."}, src),
		CheckpointTime: gauge("evindex_checkpoint_time_seconds", "Unix time of the last position completely stored (its block time, or a Presearch window's end), per source."),
		LagSeconds:     gauge("evindex_lag_seconds", "Head minus checkpoint of a source whose positions are times (Presearch), in seconds."),
		BackfillDone:   gauge("evindex_backfill_done", "Backfill work done, in the source's unit (blocks, layers, minutes of Presearch history); 0 when none runs."),
		BackfillTotal:  gauge("evindex_backfill_total", "Backfill work in all, in the source's unit; 0 when none runs."),
		BackfillETA:    gauge("evindex_backfill_eta_seconds", "Estimated time until the backfill ends at its current rate; 0 when none runs or no rate is known yet."),
		UpstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evindex_upstream_errors_total", Help: "Failed source runs by the upstream's answer: a gRPC code (Unavailable), an HTTP status (http_429), canceled, deadline_exceeded or other."}, []string{"source", "code"}),
	}
	if reg != nil {
		reg.MustRegister(m.EventsCommitted, m.RecordsCommitted, m.BatchesCommitted, m.CommitSeconds,
			m.CheckpointHeight, m.HeadHeight, m.Lag, m.Reconnects, m.Up, m.RecordsRejected, m.RecordWarnings,
			m.CheckpointTime, m.LagSeconds, m.BackfillDone, m.BackfillTotal, m.BackfillETA, m.UpstreamErrors)
	}
	return m
}

// upstreamCode is the label a failed run counts under in UpstreamErrors.
func upstreamCode(err error) string {
	var he *HTTPStatusError
	if errors.As(err, &he) {
		return "http_" + strconv.Itoa(he.Status)
	}
	var ge interface{ GRPCStatus() *status.Status }
	if errors.As(err, &ge) {
		if st := ge.GRPCStatus(); st != nil && st.Code() != codes.OK {
			return st.Code().String()
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "other"
}
