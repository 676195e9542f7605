package indexer_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

// caughtUp is an alert evaluation that fires one alert once the source's
// committed checkpoint reaches a height, reading what is stored as the
// real rules do.
type caughtUp struct {
	st     store.Store
	height uint64
	mu     sync.Mutex
	seen   []uint64 // committed heights each evaluation saw
}

func (c *caughtUp) Evaluate(ctx context.Context, status store.SourceStatus) (*store.Batch, error) {
	c.mu.Lock()
	if status.Checkpoint != nil {
		c.seen = append(c.seen, status.Checkpoint.Height)
	}
	c.mu.Unlock()
	latest, err := c.st.LatestAlerts(ctx, status.Name)
	if err != nil || len(latest) > 0 || status.Checkpoint == nil || status.Checkpoint.Height < c.height {
		return nil, err
	}
	a := store.Alert{Rule: "caught_up", StartsAt: time.Unix(int64(status.Checkpoint.Height), 0), State: store.AlertFiring}
	return &store.Batch{Source: status.Name, Alerts: []store.Alert{a}, Deliveries: []store.Delivery{{Webhook: "hook", Alert: a}}}, nil
}

// TestRunnerEvaluatesAlertsAfterCommits: the runner evaluates a source's
// alerts after its commits (here the interval is an hour, so only the
// commits can ask) and commits what the evaluation returns, once.
func TestRunnerEvaluatesAlertsAfterCommits(t *testing.T) {
	st := storetest.MustOpen(t)
	src := &countingSource{last: 30}
	ev := &caughtUp{st: st, height: 30}
	r := indexer.NewRunner(st, src, indexer.RunnerConfig{BatchMaxDelay: time.Millisecond, Logger: zerolog.Nop(),
		Alerts: ev, AlertInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	eventually(t, "the alert committed", func() bool {
		p, err := st.Alerts(context.Background(), store.AlertQuery{Source: "count"})
		return err == nil && len(p.Items) == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	p, _ := st.Alerts(context.Background(), store.AlertQuery{})
	outbox, _ := st.Deliveries(context.Background(), "", 0)
	if len(p.Items) != 1 || !p.Items[0].StartsAt.Equal(time.Unix(30, 0)) || len(outbox) != 1 || outbox[0].Webhook != "hook" {
		t.Fatalf("alerts %+v, outbox %+v: want the one alert at 30 and its row", p.Items, outbox)
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if len(ev.seen) == 0 || ev.seen[len(ev.seen)-1] != 30 {
		t.Fatalf("evaluations saw %v: want them to follow the commits up to 30", ev.seen)
	}
}
