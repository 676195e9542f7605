package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

// The package's TestMain (evaluate_test.go) runs pgtest.Main: with
// EVINDEX_TEST_STORE=postgres these tests run on PostgreSQL.

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// firing is a node_down episode of node starting at starts.
func firing(node string, starts time.Time) store.Alert {
	return store.Alert{Source: "pre", Rule: "node_down", Subject: node, StartsAt: starts, State: store.AlertFiring,
		Labels:      map[string]string{"alertname": "node_down", "source": "pre", "node": node},
		Annotations: map[string]string{"summary": node + " is not connected"}}
}

func resolvedAt(a store.Alert, at time.Time) store.Alert {
	a.State, a.EndsAt = store.AlertResolved, at
	return a
}

// commit writes each alert's transition with one outbox row per webhook,
// one transaction each, as the rules do.
func commit(t *testing.T, st store.Store, hooks []string, as ...store.Alert) {
	t.Helper()
	for _, a := range as {
		b := store.Batch{Source: a.Source, Kind: "presearch", Alerts: []store.Alert{a}}
		for _, h := range hooks {
			b.Deliveries = append(b.Deliveries, store.Delivery{Webhook: h, Alert: a})
		}
		if err := st.Apply(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
}

// start runs a deliverer until the test ends.
func start(t *testing.T, cfg DelivererConfig) *Deliverer {
	t.Helper()
	d, err := NewDeliverer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.Run(ctx); err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 6000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not within a minute", what)
}

func outbox(t *testing.T, st store.Store, webhook string) []store.Delivery {
	t.Helper()
	rows, err := st.Deliveries(context.Background(), webhook, 0)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// seen is a received notification by what a receiver deduplicates on.
func seen(t *testing.T, body string) string {
	t.Helper()
	var m Message
	if err := json.Unmarshal([]byte(body), &m); err != nil || len(m.Alerts) != 1 {
		t.Fatalf("body %q: %v", body, err)
	}
	a := m.Alerts[0]
	return fmt.Sprintf("%s %s %s %s", a.Labels["node"], a.Status, a.StartsAt.Format(time.RFC3339), a.Fingerprint)
}

func describeAll(t *testing.T, bodies []string) []string {
	out := make([]string, len(bodies))
	for i, b := range bodies {
		out[i] = seen(t, b)
	}
	return out
}

func want(as ...store.Alert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = fmt.Sprintf("%s %s %s %s", a.Subject, a.State, a.StartsAt.Format(time.RFC3339), store.AlertFingerprint(a.Source, a.Rule, a.Subject))
	}
	return out
}

// TestDeliveryKeepsOrderThroughFailures has one receiver fail its first
// attempts while another takes everything: each gets every transition
// once, in the order the transitions happened (firing before resolved),
// the failing one only after its backoff, and the outbox ends empty with
// the metrics counting what happened.
func TestDeliveryKeepsOrderThroughFailures(t *testing.T) {
	st := storetest.Open(t)
	failures := 3
	var mu sync.Mutex
	flaky := newReceiver(t, func(w http.ResponseWriter) {
		mu.Lock()
		defer mu.Unlock()
		if failures > 0 {
			failures--
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	steady := newReceiver(t, func(w http.ResponseWriter) {})
	x, y := firing("node-x", t0), firing("node-y", t0.Add(time.Minute))
	transitions := []store.Alert{x, y, resolvedAt(x, t0.Add(2*time.Minute)), resolvedAt(y, t0.Add(3*time.Minute)), firing("node-x", t0.Add(4*time.Minute))}
	commit(t, st, []string{"flaky", "steady"}, transitions...)

	reg := prometheus.NewRegistry()
	metrics := NewDeliveryMetrics(reg)
	start(t, DelivererConfig{Outbox: st, Owner: "test", Webhooks: []Webhook{{Name: "flaky", URL: flaky.srv.URL}, {Name: "steady", URL: steady.srv.URL}},
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, PollInterval: 5 * time.Millisecond, Metrics: metrics, Logger: zerolog.Nop()})
	waitFor(t, "an empty outbox", func() bool { return len(outbox(t, st, "")) == 0 })

	for _, r := range []*receiver{flaky, steady} {
		if got, want := describeAll(t, r.taken()), want(transitions...); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("received, in order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if n := flaky.requests(); n != len(transitions)+3 {
		t.Errorf("flaky receiver: %d requests, want %d (3 failed)", n, len(transitions)+3)
	}
	for _, c := range []struct {
		m    prometheus.Metric
		want float64
	}{{metrics.Sent.WithLabelValues("flaky"), 5}, {metrics.Sent.WithLabelValues("steady"), 5}, {metrics.Failed.WithLabelValues("flaky"), 3}, {metrics.Failed.WithLabelValues("steady"), 0}} {
		if got := value(t, c.m); got != c.want {
			t.Errorf("%s: %v, want %v", c.m.Desc(), got, c.want)
		}
	}
	waitFor(t, "pending at 0", func() bool { return value(t, metrics.Pending.WithLabelValues("flaky")) == 0 })
}

// value reads a counter's or gauge's value.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}

// clock is a test clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// TestDeliveryBacksOffAndHonoursRetryAfter drives the backoff with a
// clock that moves only when the test says: a failure without
// Retry-After is due again within the first backoff step, a Retry-After
// longer than the backoff wins (capped at an hour), and nothing is sent
// again before the row is due.
func TestDeliveryBacksOffAndHonoursRetryAfter(t *testing.T) {
	st := storetest.Open(t)
	clk := &clock{now: t0}
	rcv := newReceiver(t, func(w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) })
	commit(t, st, []string{"pager"}, firing("node-a", t0))
	start(t, DelivererConfig{Outbox: st, Owner: "test", Webhooks: []Webhook{{Name: "pager", URL: rcv.srv.URL}},
		MinBackoff: time.Minute, MaxBackoff: 10 * time.Minute, PollInterval: 5 * time.Millisecond, Now: clk.Now, Logger: zerolog.Nop()})

	failedOnce := func(attempts int) func() bool {
		return func() bool { rows := outbox(t, st, "pager"); return len(rows) == 1 && rows[0].Attempts == attempts }
	}
	waitFor(t, "a failed attempt", failedOnce(1))
	row := outbox(t, st, "pager")[0]
	if wait := row.NextAttempt.Sub(t0); wait < 30*time.Second || wait > time.Minute || !strings.Contains(row.LastError, "500 Internal Server Error") {
		t.Fatalf("after a 500: due again in %s (want 30s..1m), last error %q", wait, row.LastError)
	}
	if n := rcv.requests(); n != 1 {
		t.Fatalf("%d requests before the row is due again", n)
	}

	// A 503 asking for 2 hours: the backoff's second step (1-2 minutes)
	// gives way to the receiver's wish, capped at an hour.
	rcv.setAnswer(func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", "7200")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	second := row.NextAttempt
	clk.set(second)
	waitFor(t, "a second failed attempt", failedOnce(2))
	if row = outbox(t, st, "pager")[0]; !row.NextAttempt.Equal(second.Add(time.Hour)) {
		t.Fatalf("after Retry-After: 7200 due at %s, want %s", row.NextAttempt, second.Add(time.Hour))
	}
	clk.set(second.Add(59 * time.Minute))
	if n := rcv.requests(); n != 2 {
		t.Fatalf("%d requests before Retry-After passed", n)
	}

	rcv.setAnswer(func(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted) })
	clk.set(second.Add(time.Hour))
	waitFor(t, "the delivery", func() bool { return len(outbox(t, st, "")) == 0 })
	if got := describeAll(t, rcv.taken()); len(got) != 1 || got[0] != want(firing("node-a", t0))[0] {
		t.Errorf("taken %v", got)
	}
}

// TestDeliveryNeverShowsSecrets fails deliveries to a URL with a
// password, a secret path and query, and a secret header, and looks for
// the secrets in the log, the stored last error and the metrics.
func TestDeliveryNeverShowsSecrets(t *testing.T) {
	const secret = "S3CRETVALUE"
	st := storetest.Open(t)
	rcv := newReceiver(t, func(w http.ResponseWriter) { w.WriteHeader(http.StatusUnauthorized) })
	u := strings.Replace(rcv.srv.URL, "http://", "http://bot:"+secret+"@", 1) + "/hooks/" + secret + "?token=" + secret
	commit(t, st, []string{"chat"}, firing("node-a", t0))
	var logs storetest.LogBuffer
	reg := prometheus.NewRegistry()
	start(t, DelivererConfig{Outbox: st, Owner: "test", Webhooks: []Webhook{{Name: "chat", URL: u, Header: "X-Api-Key: " + secret}},
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond, PollInterval: 5 * time.Millisecond,
		Metrics: NewDeliveryMetrics(reg), Logger: zerolog.New(&logs)})
	waitFor(t, "three failed attempts", func() bool { rows := outbox(t, st, "chat"); return len(rows) == 1 && rows[0].Attempts >= 3 })
	rcv.mu.Lock()
	first := rcv.got[0]
	rcv.mu.Unlock()
	if first.Header.Get("X-Api-Key") != secret || first.URL.Query().Get("token") != secret {
		t.Fatalf("the receiver did not get the credentials: %v %v", first.Header, first.URL)
	}
	var metrics strings.Builder
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		metrics.WriteString(f.String())
	}
	row := outbox(t, st, "chat")[0]
	for what, text := range map[string]string{"log": logs.String(), "last error": row.LastError, "metrics": metrics.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("the %s shows the secret:\n%s", what, text)
		}
		if !strings.Contains(text, "chat") {
			t.Errorf("the %s does not name the webhook:\n%s", what, text)
		}
	}
	if !strings.Contains(logs.String(), "401 Unauthorized") || !strings.Contains(logs.String(), `"attempt":3`) {
		t.Errorf("the log does not say what failed, per attempt:\n%s", logs.String())
	}
}

// TestTwoSendersSendEachRowOnce runs two deliverers, as two processes
// sharing a store would, on one outbox: every row reaches the receiver
// exactly once, since a row one of them claimed is not sent by the other,
// and in the order of the rows, whichever of them sends it.
func TestTwoSendersSendEachRowOnce(t *testing.T) {
	st := storetest.Open(t)
	rcv := newReceiver(t, func(w http.ResponseWriter) { time.Sleep(time.Millisecond) })
	var all []store.Alert
	for i := range 30 {
		all = append(all, firing(fmt.Sprintf("node-%02d", i), t0.Add(time.Duration(i)*time.Second)))
	}
	commit(t, st, []string{"pager"}, all...)
	for _, owner := range []string{"one", "two"} {
		start(t, DelivererConfig{Outbox: st, Owner: owner, Webhooks: []Webhook{{Name: "pager", URL: rcv.srv.URL}},
			PollInterval: time.Millisecond, Logger: zerolog.Nop()})
	}
	waitFor(t, "an empty outbox", func() bool { return len(outbox(t, st, "")) == 0 })
	got := describeAll(t, rcv.taken())
	count := map[string]int{}
	for _, g := range got {
		count[g]++
	}
	for _, w := range want(all...) {
		if count[w] != 1 {
			t.Errorf("%s received %d times", w, count[w])
		}
	}
	if len(got) != len(all) {
		t.Errorf("%d notifications for %d rows", len(got), len(all))
	}
	if strings.Join(got, "\n") != strings.Join(want(all...), "\n") {
		t.Errorf("out of order across the two senders:\n%s", strings.Join(got, "\n"))
	}
}

// TestRowsOfAnUnconfiguredWebhookStay keeps the rows of a webhook that is
// no longer configured, counts them as pending and says so once.
func TestRowsOfAnUnconfiguredWebhookStay(t *testing.T) {
	st := storetest.Open(t)
	rcv := newReceiver(t, func(w http.ResponseWriter) {})
	commit(t, st, []string{"old", "pager"}, firing("node-a", t0))
	var logs storetest.LogBuffer
	reg := prometheus.NewRegistry()
	metrics := NewDeliveryMetrics(reg)
	start(t, DelivererConfig{Outbox: st, Owner: "test", Webhooks: []Webhook{{Name: "pager", URL: rcv.srv.URL}},
		PollInterval: 5 * time.Millisecond, Metrics: metrics, Logger: zerolog.New(&logs)})
	waitFor(t, "pager's delivery", func() bool { return len(outbox(t, st, "pager")) == 0 })
	waitFor(t, "the gauges", func() bool {
		return value(t, metrics.Pending.WithLabelValues("old")) == 1 && value(t, metrics.Pending.WithLabelValues("pager")) == 0
	})
	if rows := outbox(t, st, "old"); len(rows) != 1 {
		t.Errorf("old's rows: %+v", rows)
	}
	if !strings.Contains(logs.String(), "no longer configured") {
		t.Errorf("log:\n%s", logs.String())
	}
}
