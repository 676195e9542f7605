package indexer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

// scriptedSource runs a backfill step, then fails as an HTTP upstream,
// then as a gRPC one, then stays live: one run per step.
type scriptedSource struct {
	times bool // positions are Unix seconds
	mu    sync.Mutex
	runs  int
	live  chan struct{}
}

func (s *scriptedSource) Name() string            { return "scripted" }
func (s *scriptedSource) Kind() string            { return "test" }
func (s *scriptedSource) Endpoint() string        { return "memory" }
func (s *scriptedSource) PositionsAreTimes() bool { return s.times }

var windowEnd = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

func (s *scriptedSource) Run(ctx context.Context, _ indexer.Resume, sink indexer.Sink) error {
	s.mu.Lock()
	s.runs++
	run := s.runs
	s.mu.Unlock()
	switch run {
	case 1:
		sink.SetState(store.StateBackfilling)
		sink.SetProgress(10, 100)
		h := uint64(windowEnd.Unix())
		sink.SetHead(h + 3600)
		if err := sink.Emit(ctx, store.Batch{Checkpoint: &store.Checkpoint{Height: h, Time: windowEnd}}); err != nil {
			return err
		}
		if err := sink.Flush(ctx); err != nil {
			return err
		}
		return &indexer.HTTPStatusError{Status: 429, Err: fmt.Errorf("rate limited")}
	case 2:
		return fmt.Errorf("stream: %w", status.Error(codes.Unavailable, "connection refused"))
	}
	sink.SetState(store.StateLive)
	close(s.live)
	<-ctx.Done()
	return nil
}

// TestRunnerMetrics checks the metrics a failing and backfilling source
// leaves: upstream errors by their code, reconnects, the backfill gauges
// (zeroed once live), and the checkpoint as a time, and for a source whose
// positions are times never as a height.
func TestRunnerMetrics(t *testing.T) {
	for _, times := range []bool{false, true} {
		t.Run(fmt.Sprintf("PositionsAreTimes=%v", times), func(t *testing.T) {
			st := storetest.MustOpen(t)
			m := indexer.NewMetrics(nil)
			src := &scriptedSource{times: times, live: make(chan struct{})}
			var backfill [3]float64
			sleep := func(ctx context.Context, d time.Duration) error {
				// Between the failed runs: the backfill gauges as they were.
				backfill = [3]float64{value(t, m.BackfillDone.WithLabelValues("scripted")),
					value(t, m.BackfillTotal.WithLabelValues("scripted")), value(t, m.BackfillETA.WithLabelValues("scripted"))}
				return ctx.Err()
			}
			r := indexer.NewRunner(st, src, indexer.RunnerConfig{Logger: zerolog.Nop(), Metrics: m, Sleep: sleep, BatchMaxDelay: time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			<-src.live
			eventually(t, "live", func() bool { return r.Status().State == store.StateLive })
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			for code, want := range map[string]float64{"http_429": 1, "Unavailable": 1, "other": 0} {
				if got := value(t, m.UpstreamErrors.WithLabelValues("scripted", code)); got != want {
					t.Errorf("evindex_upstream_errors_total{code=%q} = %v, want %v", code, got, want)
				}
			}
			if got := value(t, m.Reconnects.WithLabelValues("scripted")); got != 2 {
				t.Errorf("evindex_reconnects_total = %v, want 2", got)
			}
			if backfill[0] != 10 || backfill[1] != 100 {
				t.Errorf("backfill done/total during the backfill = %v/%v, want 10/100", backfill[0], backfill[1])
			}
			for _, g := range []string{"done", "total", "eta"} {
				v := map[string]float64{"done": value(t, m.BackfillDone.WithLabelValues("scripted")),
					"total": value(t, m.BackfillTotal.WithLabelValues("scripted")), "eta": value(t, m.BackfillETA.WithLabelValues("scripted"))}[g]
				if v != 0 {
					t.Errorf("evindex_backfill_%s = %v once live, want 0", g, v)
				}
			}
			if got := value(t, m.CheckpointTime.WithLabelValues("scripted")); got != float64(windowEnd.Unix()) {
				t.Errorf("evindex_checkpoint_time_seconds = %v, want %d", got, windowEnd.Unix())
			}
			heights := series(m.CheckpointHeight) + series(m.HeadHeight) + series(m.Lag)
			lagSeconds := series(m.LagSeconds)
			switch {
			case times && (heights != 0 || value(t, m.LagSeconds.WithLabelValues("scripted")) != 3600):
				t.Errorf("a time-positioned source: %d height series, lag %v s; want none and 3600",
					heights, value(t, m.LagSeconds.WithLabelValues("scripted")))
			case !times && (heights != 3 || lagSeconds != 0):
				t.Errorf("a height source: %d height series and %d lag_seconds series, want 3 and 0", heights, lagSeconds)
			}
		})
	}
}

// value is a gauge's or counter's current value.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Gauge != nil {
		return m.GetGauge().GetValue()
	}
	return m.GetCounter().GetValue()
}

// series counts the series a metric vector holds.
func series(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 100)
	c.Collect(ch)
	close(ch)
	return len(ch)
}
