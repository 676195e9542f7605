package indexer_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

// poisonSource emits heights whose every other event no store may hold
// (a NUL in the type), many per height, and warns once per bad amount
// through the sink's sampled warnings.
type poisonSource struct {
	last uint64
	done chan struct{}
}

func (p *poisonSource) Name() string     { return "poison" }
func (p *poisonSource) Kind() string     { return "test" }
func (p *poisonSource) Endpoint() string { return "memory" }

func (p *poisonSource) Run(ctx context.Context, r indexer.Resume, sink indexer.Sink) error {
	for h := r.Checkpoint.Height + 1; h <= p.last; h++ {
		b := store.Batch{Checkpoint: &store.Checkpoint{Height: h}, Coverage: &store.Range{From: h, To: h}}
		for i := range uint32(100) {
			typ := "A.1.Good"
			if i%2 == 1 {
				typ = "A.1.Bad\x00"
			}
			b.Events = append(b.Events, store.Event{Height: h, EventIndex: i, Type: typ, Payload: []byte(`{}`)})
			sink.Warn().Uint32("event", i).Msg("amount does not parse")
		}
		if err := sink.Emit(ctx, b); err != nil {
			return err
		}
	}
	if err := sink.Flush(ctx); err != nil {
		return err
	}
	close(p.done)
	<-ctx.Done()
	return nil
}

// TestPoisonRecordsAreQuarantinedAndTheSourceGoesOn: records no store may
// hold used to fail the whole commit, and the source retried the same
// height forever. They are quarantined with the checkpoint that passes
// them; every warning is counted and the log holds only a sample.
func TestPoisonRecordsAreQuarantinedAndTheSourceGoesOn(t *testing.T) {
	st := storetest.MustOpen(t)
	var logs storetest.LogBuffer
	m := indexer.NewMetrics(nil)
	src := &poisonSource{last: 50, done: make(chan struct{})}
	r := indexer.NewRunner(st, src, indexer.RunnerConfig{Logger: zerolog.New(&logs), Metrics: m, Sleep: noSleep})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	eventually(t, "the source to pass every height", func() bool {
		select {
		case <-src.done:
			return true
		default:
			return false
		}
	})
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	cp, _, err := st.Checkpoint(context.Background(), "poison")
	if err != nil || cp.Height != 50 {
		t.Fatalf("checkpoint %d (%v), want 50", cp.Height, err)
	}
	in, _ := st.Source(context.Background(), "poison")
	if in.Events != 50*50 || in.Rejected != 50*50 {
		t.Fatalf("stored %d events and %d rejected, want 2500 each", in.Events, in.Rejected)
	}
	p, err := st.Rejected(context.Background(), store.RejectedQuery{Source: "poison", Limit: 1})
	if err != nil || len(p.Items) != 1 || string(p.Items[0].Raw) != "{}" || p.Items[0].Field != "type" || !strings.Contains(p.Items[0].Reason, `"A.1.Bad\x00"`) {
		t.Fatalf("first rejected record %+v (%v)", p.Items, err)
	}
	if got := counterValue(t, m.RecordsRejected.WithLabelValues("poison", store.RecordEvent)); got != 2500 {
		t.Fatalf("evindex_records_rejected_total %v, want 2500", got)
	}
	if got := counterValue(t, m.RecordWarnings.WithLabelValues("poison")); got != 5000+2500 {
		t.Fatalf("evindex_record_warnings_total %v, want 7500", got)
	}
	if st := r.Status(); st.Warnings != 7500 || st.LastError != "" {
		t.Fatalf("status warnings %d, last error %q", st.Warnings, st.LastError)
	}
	if n := strings.Count(logs.String(), "\n"); n > 20 {
		t.Fatalf("%d log lines for 7500 warnings, want a sample of at most 20", n)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
