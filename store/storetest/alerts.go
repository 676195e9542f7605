package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
)

var alertT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// nodeDown is a node_down episode of node in source.
func nodeDown(source, node string, starts time.Time) store.Alert {
	return store.Alert{Source: source, Rule: "node_down", Subject: node, StartsAt: starts, State: store.AlertFiring,
		Labels:      map[string]string{"alertname": "node_down", "source": source, "node": node},
		Annotations: map[string]string{"summary": node + " is not connected"}}
}

func resolved(a store.Alert, at time.Time) store.Alert {
	a.State, a.EndsAt = store.AlertResolved, at
	return a
}

// transition is the batch of a node snapshot that changes an alert: the
// snapshot, the alert, and one outbox row per webhook.
func transition(a store.Alert, connected bool, hooks ...string) store.Batch {
	b := store.Batch{Source: a.Source, Kind: "presearch", Alerts: []store.Alert{a},
		Nodes: []store.NodeStatus{{Node: a.Subject, Time: a.UpdatedAt, Connected: &connected}}}
	if b.Nodes[0].Time.IsZero() {
		b.Nodes[0].Time = a.StartsAt
		if !a.EndsAt.IsZero() {
			b.Nodes[0].Time = a.EndsAt
		}
	}
	for _, h := range hooks {
		b.Deliveries = append(b.Deliveries, store.Delivery{Webhook: h, Alert: a})
	}
	return b
}

// AllAlerts reads every page of q from s.
func AllAlerts(t *testing.T, s store.Store, q store.AlertQuery) []store.Alert {
	t.Helper()
	var out []store.Alert
	for i := 0; ; i++ {
		p, err := s.Alerts(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out
		}
		if i > 10000 {
			t.Fatal("alerts list does not end")
		}
		q.Cursor = p.Next
	}
}

func describe(as []store.Alert) string {
	out := ""
	for _, a := range as {
		out += fmt.Sprintf("%s/%s/%s@%s:%s ", a.Source, a.Rule, a.Subject, a.StartsAt.Format(time.RFC3339), a.State)
	}
	return out
}

// testAlertEpisodes: an alert fires and resolves with the data that
// changed it, a second episode of the same subject is a new record with
// the same fingerprint, and each transition's outbox rows hold the alert
// as the transition left it.
func testAlertEpisodes(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	first := nodeDown("ps", "node-a", alertT0)
	second := nodeDown("ps", "node-a", alertT0.Add(2*time.Hour))
	steps := []store.Batch{
		transition(first, false, "chat", "pager"),
		transition(resolved(first, alertT0.Add(time.Hour)), true, "chat", "pager"),
		transition(second, false, "chat", "pager"),
	}
	for i, b := range steps {
		if err := s.Apply(ctx, b); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	all := AllAlerts(t, s, store.AlertQuery{})
	if len(all) != 2 || !all[0].StartsAt.Equal(first.StartsAt) || all[0].State != store.AlertResolved ||
		!all[0].EndsAt.Equal(alertT0.Add(time.Hour)) || all[1].State != store.AlertFiring || !all[1].EndsAt.IsZero() {
		t.Fatalf("alerts %s, want the first episode resolved and the second firing", describe(all))
	}
	fp := store.AlertFingerprint("ps", "node_down", "node-a")
	for _, a := range all {
		if a.Fingerprint != fp || a.Labels["node"] != "node-a" || a.Annotations["summary"] != "node-a is not connected" || a.UpdatedAt.IsZero() {
			t.Errorf("alert %+v: want fingerprint %s, its labels, annotations and write time", a, fp)
		}
	}
	if fp == store.AlertFingerprint("ps", "node_down", "node-b") || fp == store.AlertFingerprint("ps2", "node_down", "node-a") {
		t.Error("fingerprints of different subjects or sources are equal")
	}
	latest, err := s.LatestAlerts(ctx, "ps")
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 1 || !latest[0].StartsAt.Equal(second.StartsAt) || latest[0].State != store.AlertFiring {
		t.Fatalf("latest %s, want the second episode, firing", describe(latest))
	}
	if got := AllAlerts(t, s, store.AlertQuery{State: store.AlertFiring}); len(got) != 1 || !got[0].StartsAt.Equal(second.StartsAt) {
		t.Errorf("firing %s, want the second episode", describe(got))
	}
	if got := AllAlerts(t, s, store.AlertQuery{State: store.AlertResolved}); len(got) != 1 || !got[0].StartsAt.Equal(first.StartsAt) {
		t.Errorf("resolved %s, want the first episode", describe(got))
	}
	outbox, err := s.Deliveries(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, d := range outbox {
		if i > 0 && d.ID <= outbox[i-1].ID {
			t.Errorf("delivery ids %d then %d: not ascending", outbox[i-1].ID, d.ID)
		}
		if d.Alert.Fingerprint != fp || d.Created.IsZero() || d.Attempts != 0 || d.ClaimedBy != "" {
			t.Errorf("delivery %+v: want fingerprint %s, a creation time, no attempt, no claim", d, fp)
		}
		got = append(got, fmt.Sprintf("%s:%s@%s", d.Webhook, d.Alert.State, d.Alert.StartsAt.Format("15:04")))
	}
	want := []string{"chat:firing@12:00", "pager:firing@12:00", "chat:resolved@12:00", "pager:resolved@12:00", "chat:firing@14:00", "pager:firing@14:00"}
	if !slices.Equal(got, want) {
		t.Errorf("outbox %v, want %v", got, want)
	}
	if pager, _ := s.Deliveries(ctx, "pager", 2); len(pager) != 2 || pager[0].Webhook != "pager" || pager[1].Alert.State != store.AlertResolved {
		t.Errorf("pager's first two rows %+v, want its firing and resolution", pager)
	}

	// A batch with a malformed alert writes neither its data nor its
	// outbox rows.
	bad := transition(resolved(second, second.StartsAt.Add(-time.Minute)), true, "chat")
	if err := s.Apply(ctx, bad); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("resolution before the start: %v, want ErrInvalid", err)
	}
	for _, a := range []store.Alert{
		{Source: "ps", Rule: "node_down", StartsAt: alertT0, State: "pending"},
		{Source: "ps", Rule: "node_down", StartsAt: alertT0, State: store.AlertFiring, EndsAt: alertT0},
		{Source: "ps", Rule: "", StartsAt: alertT0, State: store.AlertFiring},
		{Source: "ps", Rule: "node_down", State: store.AlertFiring},
		{Source: "other", Rule: "node_down", StartsAt: alertT0, State: store.AlertFiring},
	} {
		if err := s.Apply(ctx, store.Batch{Source: "ps", Alerts: []store.Alert{a}}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("alert %+v: %v, want ErrInvalid", a, err)
		}
	}
	if err := s.Apply(ctx, store.Batch{Source: "ps", Deliveries: []store.Delivery{{Alert: first}}}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("delivery without a webhook: %v, want ErrInvalid", err)
	}
	if after, _ := s.Deliveries(ctx, "", 0); len(after) != len(outbox) {
		t.Errorf("%d outbox rows after refused batches, want %d", len(after), len(outbox))
	}
	if h, _ := s.NodeHistory(ctx, store.NodeHistoryQuery{Source: "ps", Node: "node-a"}); len(h.Items) != 3 {
		t.Errorf("%d snapshots after a refused batch, want 3", len(h.Items))
	}
}

// testAlertsList: the alerts list follows the list conventions: identity
// order (source, starts_at, rule, subject), Desc, filters, pages behind
// a cursor that never skips or repeats, ErrCursorInvalid for another
// list's cursor.
func testAlertsList(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	var want []store.Alert
	for i := 0; i < 30; i++ {
		src := []string{"a", "b"}[i%2]
		a := nodeDown(src, fmt.Sprintf("node-%d", i%4), alertT0.Add(time.Duration(i/3)*time.Minute))
		if i%3 == 0 {
			a.Rule = "earnings_stopped"
		}
		if i%5 == 0 {
			a = resolved(a, a.StartsAt.Add(time.Second))
		}
		if err := s.Apply(ctx, store.Batch{Source: src, Alerts: []store.Alert{a}}); err != nil {
			t.Fatal(err)
		}
		want = append(want, a)
	}
	slices.SortFunc(want, func(x, y store.Alert) int {
		return slices.Compare([]string{x.Source, fmt.Sprintf("%020d", x.StartsAt.UnixNano()), x.Rule, x.Subject},
			[]string{y.Source, fmt.Sprintf("%020d", y.StartsAt.UnixNano()), y.Rule, y.Subject})
	})
	filter := func(keep func(store.Alert) bool) []store.Alert {
		var out []store.Alert
		for _, a := range want {
			if keep(a) {
				out = append(out, a)
			}
		}
		return out
	}
	cases := []struct {
		name string
		q    store.AlertQuery
		want []store.Alert
	}{
		{"All", store.AlertQuery{Limit: 7}, want},
		{"Source", store.AlertQuery{Source: "b", Limit: 4}, filter(func(a store.Alert) bool { return a.Source == "b" })},
		{"Firing", store.AlertQuery{State: store.AlertFiring, Limit: 5}, filter(func(a store.Alert) bool { return a.State == store.AlertFiring })},
		{"ResolvedOfA", store.AlertQuery{Source: "a", State: store.AlertResolved, Limit: 1}, filter(func(a store.Alert) bool {
			return a.Source == "a" && a.State == store.AlertResolved
		})},
		{"Rule", store.AlertQuery{Rule: "earnings_stopped", Limit: 3}, filter(func(a store.Alert) bool { return a.Rule == "earnings_stopped" })},
		{"UnknownSource", store.AlertQuery{Source: "nope"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, desc := range []bool{false, true} {
				q := tc.q
				q.Desc = desc
				exp := slices.Clone(tc.want)
				if desc {
					slices.Reverse(exp)
				}
				if got := AllAlerts(t, s, q); describe(got) != describe(exp) {
					t.Errorf("desc=%v:\n got %s\nwant %s", desc, describe(got), describe(exp))
				}
			}
		})
	}
	p, err := s.Alerts(ctx, store.AlertQuery{Limit: 2})
	if err != nil || p.Next == "" {
		t.Fatalf("first page: %v, next %q", err, p.Next)
	}
	if _, err := s.Events(ctx, store.EventQuery{Cursor: p.Next}); !errors.Is(err, store.ErrCursorInvalid) {
		t.Errorf("an alerts cursor on events: %v, want ErrCursorInvalid", err)
	}
	ev := store.EncodeCursor('e', []byte("flow\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00"))
	for _, c := range []string{ev, "!!", store.EncodeCursor(store.CursorAlerts, []byte("x"))} {
		if _, err := s.Alerts(ctx, store.AlertQuery{Cursor: c}); !errors.Is(err, store.ErrCursorInvalid) {
			t.Errorf("cursor %q: %v, want ErrCursorInvalid", c, err)
		}
	}
}

// testOutboxClaims: a claimed row is handed to no other sender while its
// claim holds, a failure makes it due again later with its attempt
// counted, an outcome from a sender whose claim was taken over changes
// nothing, a delivered row is gone, and senders claiming at once never
// get the same row.
func testOutboxClaims(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	a := nodeDown("ps", "node-a", alertT0)
	if err := s.Apply(ctx, transition(a, false, "chat", "pager"), transition(resolved(a, alertT0.Add(time.Minute)), true, "chat")); err != nil {
		t.Fatal(err)
	}
	now := alertT0.Add(time.Hour)
	claim := func(owner, hook string, at time.Time, limit int) []store.Delivery {
		t.Helper()
		ds, err := s.ClaimDeliveries(ctx, store.DeliveryClaim{Owner: owner, Webhook: hook, Now: at, Hold: time.Minute, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	first := claim("p1", "chat", now, 1)
	if len(first) != 1 || first[0].Webhook != "chat" || first[0].Alert.State != store.AlertFiring || first[0].ClaimedBy != "p1" {
		t.Fatalf("first claim %+v, want chat's firing row, claimed by p1", first)
	}
	rest := claim("p2", "", now, 10)
	if len(rest) != 2 || slices.ContainsFunc(rest, func(d store.Delivery) bool { return d.ID == first[0].ID }) {
		t.Fatalf("second claim %+v, want the two other rows", rest)
	}
	if again := claim("p3", "", now.Add(30*time.Second), 10); len(again) != 0 {
		t.Fatalf("claim while every claim holds: %+v, want none", again)
	}
	if err := s.FinishDelivery(ctx, store.DeliveryResult{ID: first[0].ID, Owner: "p2", Delivered: true}); !errors.Is(err, store.ErrClaimLost) {
		t.Fatalf("p2 finishing p1's row: %v, want ErrClaimLost", err)
	}
	if _, err := s.ClaimDeliveries(ctx, store.DeliveryClaim{Now: now}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("a claim without an owner: %v, want ErrInvalid", err)
	}

	// p1's send fails: due again a minute later, its attempt counted.
	retry := now.Add(5 * time.Minute)
	if err := s.FinishDelivery(ctx, store.DeliveryResult{ID: first[0].ID, Owner: "p1", Error: "503 Service Unavailable", NextAttempt: retry}); err != nil {
		t.Fatal(err)
	}
	if got := claim("p3", "chat", retry.Add(-time.Second), 10); slices.ContainsFunc(got, func(d store.Delivery) bool { return d.ID == first[0].ID }) {
		t.Fatalf("a failed row claimed before its next attempt: %+v", got)
	}
	got := claim("p3", "chat", retry, 1)
	if len(got) != 1 || got[0].ID != first[0].ID || got[0].Attempts != 1 || got[0].LastError != "503 Service Unavailable" || !got[0].NextAttempt.Equal(retry) {
		t.Fatalf("retry %+v, want the failed row with 1 attempt and its error", got)
	}
	// p3's claim runs out; p4 takes the row over and delivers it; p3's
	// late outcome changes nothing.
	taken := claim("p4", "chat", retry.Add(2*time.Minute), 10)
	if !slices.ContainsFunc(taken, func(d store.Delivery) bool { return d.ID == first[0].ID }) {
		t.Fatalf("after its claim ran out the row was not claimable: %+v", taken)
	}
	if err := s.FinishDelivery(ctx, store.DeliveryResult{ID: first[0].ID, Owner: "p4", Delivered: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishDelivery(ctx, store.DeliveryResult{ID: first[0].ID, Owner: "p3", Delivered: true}); !errors.Is(err, store.ErrClaimLost) {
		t.Fatalf("a finish for a delivered row: %v, want ErrClaimLost", err)
	}
	left, err := s.Deliveries(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 || slices.ContainsFunc(left, func(d store.Delivery) bool { return d.ID == first[0].ID }) {
		t.Fatalf("outbox %+v, want the two other rows", left)
	}

	// Senders claiming at the same moment split the rows between them.
	var batches []store.Batch
	for i := 0; i < 40; i++ {
		batches = append(batches, transition(nodeDown("ps", fmt.Sprintf("n%02d", i), alertT0.Add(time.Duration(i)*time.Second)), false, "chat"))
	}
	if err := s.Apply(ctx, batches...); err != nil {
		t.Fatal(err)
	}
	later := retry.Add(time.Hour)
	var mu sync.Mutex
	seen := map[uint64]string{}
	var wg sync.WaitGroup
	var errs []error
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(owner string) {
			defer wg.Done()
			for range 50 {
				ds, err := s.ClaimDeliveries(ctx, store.DeliveryClaim{Owner: owner, Now: later, Hold: time.Hour, Limit: 3})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				for _, d := range ds {
					if prev, dup := seen[d.ID]; dup {
						errs = append(errs, fmt.Errorf("row %d claimed by %s and %s", d.ID, prev, owner))
					}
					seen[d.ID] = owner
				}
				mu.Unlock()
				if len(ds) == 0 {
					return
				}
			}
		}(fmt.Sprintf("w%d", w))
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 42 {
		t.Fatalf("%d rows claimed, want 42 (every row once)", len(seen))
	}
}

// testAlertsFencedByLease: on a store with leases, alerts and outbox
// rows are written only while the batch's lease holds, like its records.
func testAlertsFencedByLease(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	l, ok := s.(store.Leaser)
	if !ok {
		t.Skip("a store with one writer has no leases")
	}
	old, err := l.AcquireLease(ctx, "ps", "old", time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	var cur store.Lease
	for i := 0; ; i++ { // the old lease expires in the database's clock
		if cur, err = l.AcquireLease(ctx, "ps", "new", time.Minute); err == nil {
			break
		}
		if !errors.Is(err, store.ErrLeaseHeld) || i > 1000 {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	b := transition(nodeDown("ps", "node-a", alertT0), false, "chat")
	b.Lease = &old
	if err := s.Apply(ctx, b); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("a former owner's alert: %v, want ErrLeaseLost", err)
	}
	if got := AllAlerts(t, s, store.AlertQuery{}); len(got) != 0 {
		t.Fatalf("alerts %s written under a lost lease", describe(got))
	}
	if ds, _ := s.Deliveries(ctx, "", 0); len(ds) != 0 {
		t.Fatalf("%d outbox rows written under a lost lease", len(ds))
	}
	b.Lease = &cur
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if ds, _ := s.Deliveries(ctx, "", 0); len(ds) != 1 {
		t.Fatalf("%d outbox rows under the held lease, want 1", len(ds))
	}
}
