package alerts_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/indexer/alerts"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/postgres/pgtest"
	"github.com/evindex/evindex/store/storetest"
)

// TestMain stops the shared PostgreSQL test server after the tests: with
// EVINDEX_TEST_STORE=postgres the evaluations run on PostgreSQL.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var ctx = context.Background()

// clock is a test's hand-moved clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func ptr[T any](v T) *T { return &v }

// env is a store with one source and its evaluator.
type env struct {
	t     *testing.T
	st    store.Store
	clk   *clock
	ev    *alerts.Evaluator
	cfg   alerts.Config
	state store.SourceStatus
}

func newEnv(t *testing.T, source, kind string, rules alerts.Rules) *env {
	e := &env{t: t, clk: &clock{t: time.Now().UTC().Truncate(time.Second)}}
	e.st = storetest.OpenAt(t, e.clk.now)
	e.cfg = alerts.Config{Source: source, Kind: kind, Rules: rules, Webhooks: []string{"chat", "pager"}, Now: e.clk.now}
	e.ev = alerts.New(e.st, e.cfg)
	e.state = store.SourceStatus{Name: source, Kind: kind, State: store.StateLive, LagThreshold: 2}
	return e
}

func (e *env) apply(b store.Batch) {
	e.t.Helper()
	if b.Source == "" {
		b.Source = e.cfg.Source
	}
	if b.Kind == "" {
		b.Kind = e.cfg.Kind
	}
	if err := e.st.Apply(ctx, b); err != nil {
		e.t.Fatal(err)
	}
}

// evaluate runs one evaluation and commits what it returns, as the
// runner does; it returns the transitions as "rule/subject:state".
func (e *env) evaluate() []string {
	e.t.Helper()
	b, err := e.ev.Evaluate(ctx, e.state)
	if err != nil {
		e.t.Fatal(err)
	}
	if b == nil {
		return nil
	}
	if len(b.Deliveries) != 2*len(b.Alerts) {
		e.t.Errorf("%d outbox rows for %d transitions and 2 webhooks", len(b.Deliveries), len(b.Alerts))
	}
	e.apply(*b)
	var out []string
	for _, a := range b.Alerts {
		out = append(out, a.Rule+"/"+a.Subject+":"+a.State)
	}
	return out
}

func (e *env) only(rule, subject string) store.Alert {
	e.t.Helper()
	l, err := e.st.LatestAlerts(ctx, e.cfg.Source)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range l {
		if a.Rule == rule && a.Subject == subject {
			return a
		}
	}
	e.t.Fatalf("no %s alert of %s in %+v", rule, subject, l)
	return store.Alert{}
}

func want(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("transitions %v, want %v", got, want)
	}
}

func snapshot(node string, at time.Time, connected bool) store.Batch {
	return store.Batch{Nodes: []store.NodeStatus{{Node: node, Time: at, Connected: ptr(connected)}}}
}

// TestNodeDownFiresAfterForAndResolves: a node seen down fires after
// For, from the snapshot that showed it down, once; it resolves at the
// snapshot that shows it back; every transition has its outbox rows.
func TestNodeDownFiresAfterForAndResolves(t *testing.T) {
	rules := alerts.DefaultRules()
	rules.NodeDown.For = 5 * time.Minute
	e := newEnv(t, "ps", "presearch", rules)
	t0 := e.clk.t
	e.apply(snapshot("node-a", t0, true))
	e.apply(snapshot("node-b", t0, true))
	want(t, e.evaluate())
	down := t0.Add(time.Minute)
	e.apply(snapshot("node-a", down, false))
	e.clk.t = down.Add(5*time.Minute - time.Second)
	want(t, e.evaluate())                                       // down, not yet for 5 minutes
	e.apply(snapshot("node-a", down.Add(2*time.Minute), false)) // still down: the run began earlier
	e.clk.t = down.Add(5 * time.Minute)
	want(t, e.evaluate(), "node_down/node-a:firing")
	a := e.only("node_down", "node-a")
	if !a.StartsAt.Equal(down.Add(5*time.Minute)) || a.Labels["node"] != "node-a" || a.Labels["alertname"] != "node_down" ||
		a.Annotations["down_since"] != down.Format(time.RFC3339Nano) {
		t.Fatalf("alert %+v: want it firing since %s, down since %s", a, down.Add(5*time.Minute), down)
	}
	e.clk.t = e.clk.t.Add(time.Hour)
	want(t, e.evaluate()) // firing stays firing, no second notification
	back := down.Add(20 * time.Minute)
	e.apply(snapshot("node-a", back, true))
	want(t, e.evaluate(), "node_down/node-a:resolved")
	if a := e.only("node_down", "node-a"); !a.EndsAt.Equal(back) {
		t.Fatalf("resolved at %s, want %s (the snapshot that showed it back)", a.EndsAt, back)
	}
	want(t, e.evaluate())
	outbox, err := e.st.Deliveries(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range outbox {
		got = append(got, d.Webhook+":"+d.Alert.State)
	}
	want(t, got, "chat:firing", "pager:firing", "chat:resolved", "pager:resolved")
}

// TestEvaluationRepeatedAfterACrashFindsTheSameEpisode: a transition
// found but not committed (the process died) is found again, the same,
// by a new evaluator; committed, it is not found a third time.
func TestEvaluationRepeatedAfterACrashFindsTheSameEpisode(t *testing.T) {
	e := newEnv(t, "ps", "presearch", alerts.DefaultRules())
	down := e.clk.t
	e.apply(snapshot("node-a", down, false))
	e.clk.t = down.Add(time.Hour)
	lost, err := e.ev.Evaluate(ctx, e.state) // never committed
	if err != nil || lost == nil {
		t.Fatalf("first evaluation: %v, %+v", err, lost)
	}
	e.clk.t = e.clk.t.Add(3 * time.Minute) // the restart takes a while
	e.ev = alerts.New(e.st, e.cfg)
	again, err := e.ev.Evaluate(ctx, e.state)
	if err != nil || again == nil || len(again.Alerts) != 1 || !again.Alerts[0].StartsAt.Equal(lost.Alerts[0].StartsAt) {
		t.Fatalf("after the restart: %v, %+v; want the same episode as %+v", err, again, lost)
	}
	e.apply(*again)
	want(t, e.evaluate())
	if all := storetest.AllAlerts(t, e.st, store.AlertQuery{}); len(all) != 1 {
		t.Fatalf("%d episodes, want 1", len(all))
	}
}

// TestSourceStalledFiresAndAnyCommitResolves: a source behind its head
// by more than its threshold with no commit for For fires; the next
// commit resolves it at its time; a source within its threshold never
// fires.
func TestSourceStalledFiresAndAnyCommitResolves(t *testing.T) {
	rules := alerts.DefaultRules()
	rules.SourceStalled.For = 10 * time.Minute
	e := newEnv(t, "fl", "flow", rules)
	e.apply(store.Batch{Checkpoint: &store.Checkpoint{Height: 100}, Coverage: &store.Range{From: 1, To: 100}})
	cp, _, _ := e.st.Checkpoint(ctx, "fl")
	e.state.HeadHeight, e.state.Lag = 102, 2 // at the threshold: not behind
	e.clk.t = cp.UpdatedAt.Add(time.Hour)
	want(t, e.evaluate())
	e.state.HeadHeight, e.state.Lag = 150, 50
	e.clk.t = cp.UpdatedAt.Add(10*time.Minute - time.Second)
	want(t, e.evaluate())
	e.clk.t = cp.UpdatedAt.Add(10 * time.Minute)
	want(t, e.evaluate(), "source_stalled/:firing")
	if a := e.only("source_stalled", ""); !a.StartsAt.Equal(cp.UpdatedAt.Add(10*time.Minute)) || a.Annotations["head"] != "150" {
		t.Fatalf("alert %+v", a)
	}
	e.clk.t = e.clk.t.Add(3 * time.Minute)
	e.apply(store.Batch{Checkpoint: &store.Checkpoint{Height: 101}, Coverage: &store.Range{From: 101, To: 101}})
	cp2, _, _ := e.st.Checkpoint(ctx, "fl")
	want(t, e.evaluate(), "source_stalled/:resolved")
	if a := e.only("source_stalled", ""); !a.EndsAt.Equal(cp2.UpdatedAt) {
		t.Fatalf("resolved at %s, want the commit's %s", a.EndsAt, cp2.UpdatedAt)
	}
}

// TestMissedRewardFiresForNewMissesOnly: the first miss fires; it
// resolves after ResolveAfter of chain time without another; a later
// miss fires a new episode of the same fingerprint; a miss already told
// of never fires again.
func TestMissedRewardFiresForNewMissesOnly(t *testing.T) {
	rules := alerts.DefaultRules()
	rules.MissedReward.ResolveAfter = 30 * time.Minute
	e := newEnv(t, "sm", "spacemesh", rules)
	genesis := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	layer := func(h uint64) time.Time { return genesis.Add(time.Duration(h) * 5 * time.Minute) }
	reward := func(h uint64) store.Reward {
		return store.Reward{Account: "coinbase1", Kind: "smesher_reward", ID: fmt.Sprintf("smesher1/%d", h), Height: h, HasHeight: true,
			Time: layer(h), RawAmount: "1000", Unit: "SMH", Decimals: 9, Aliases: []string{"smesher1"}}
	}
	upTo := func(h uint64) store.Batch {
		return store.Batch{Checkpoint: &store.Checkpoint{Height: h, Time: layer(h)}, Coverage: &store.Range{From: 0, To: h}}
	}
	b := upTo(12)
	b.Epochs = &store.Epochs{Genesis: genesis, BlockDuration: 5 * time.Minute, BlocksPerEpoch: 100}
	b.Eligibilities = []store.Eligibility{{Account: "smesher1", Epoch: 0, FinalAfter: 2, Time: genesis,
		Heights: []store.EligibleHeight{{Height: 3, Count: 1}, {Height: 5, Count: 1}, {Height: 7, Count: 1}, {Height: 20, Count: 1}, {Height: 30, Count: 1}}}}
	b.Rewards = []store.Reward{reward(3), reward(7)}
	e.apply(b)
	want(t, e.evaluate(), "missed_reward/smesher1:firing")
	a := e.only("missed_reward", "smesher1")
	if !a.StartsAt.Equal(layer(5)) || a.Annotations["height"] != "5" || a.Annotations["reason"] != store.MissedNoProposal || a.Labels["account"] != "smesher1" {
		t.Fatalf("alert %+v: want the miss at 5 (no_proposal)", a)
	}
	e.apply(upTo(12)) // chain time 60 min, the miss at 25 min: 35 min passed
	want(t, e.evaluate(), "missed_reward/smesher1:resolved")
	if a := e.only("missed_reward", "smesher1"); !a.EndsAt.Equal(layer(5).Add(30*time.Minute)) || a.Annotations["last_height"] != "5" {
		t.Fatalf("resolved %+v: want at the miss + 30 min, last height 5", a)
	}
	b = upTo(25)
	b.Proposals = []store.Proposal{{Account: "smesher1", Height: 20, ID: "ab", Time: layer(20)}}
	e.apply(b)
	want(t, e.evaluate(), "missed_reward/smesher1:firing")
	a = e.only("missed_reward", "smesher1")
	if !a.StartsAt.Equal(layer(20)) || a.Annotations["reason"] != store.MissedNotIncluded || a.Fingerprint != store.AlertFingerprint("sm", "missed_reward", "smesher1") {
		t.Fatalf("second episode %+v: want the miss at 20 (not_included), same fingerprint", a)
	}
	want(t, e.evaluate())
	if all := storetest.AllAlerts(t, e.st, store.AlertQuery{Source: "sm"}); len(all) != 2 {
		t.Fatalf("%d episodes, want 2", len(all))
	}
}

// TestEarningsStoppedFiresOnZeroWindowsOfAConnectedNode: N windows of 0
// on a connected node fire at the last one's end; a window that earns
// resolves at its start; a disconnected node with zero windows does not
// fire (node_down speaks for it).
func TestEarningsStoppedFiresOnZeroWindowsOfAConnectedNode(t *testing.T) {
	rules := alerts.DefaultRules()
	rules.EarningsStopped.Windows = 3
	rules.NodeDown.Enabled = false
	e := newEnv(t, "ps", "presearch", rules)
	h0 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	window := func(node string, i int, amount string) store.Reward {
		s := h0.Add(time.Duration(i) * time.Hour)
		return store.Reward{Account: node, Kind: "period", ID: s.Format(time.RFC3339), Time: s, PeriodStart: s, PeriodEnd: s.Add(time.Hour),
			RawAmount: amount, Unit: "PRE", Decimals: 18}
	}
	b := snapshot("node-a", h0, true)
	b.Nodes = append(b.Nodes, store.NodeStatus{Node: "node-off", Time: h0, Connected: ptr(false)})
	for i := 0; i < 5; i++ {
		amt := "0"
		if i < 2 {
			amt = "5000"
		}
		b.Rewards = append(b.Rewards, window("node-a", i, amt), window("node-off", i, "0"))
	}
	e.apply(b)
	e.clk.t = h0.Add(5 * time.Hour)
	want(t, e.evaluate(), "earnings_stopped/node-a:firing")
	if a := e.only("earnings_stopped", "node-a"); !a.StartsAt.Equal(h0.Add(5*time.Hour)) || a.Annotations["since"] != h0.Add(2*time.Hour).Format(time.RFC3339Nano) {
		t.Fatalf("alert %+v: want firing at the third zero window's end", a)
	}
	e.apply(store.Batch{Rewards: []store.Reward{window("node-a", 5, "0")}})
	want(t, e.evaluate())
	e.apply(store.Batch{Rewards: []store.Reward{window("node-a", 6, "1")}})
	want(t, e.evaluate(), "earnings_stopped/node-a:resolved")
	if a := e.only("earnings_stopped", "node-a"); !a.EndsAt.Equal(h0.Add(6 * time.Hour)) {
		t.Fatalf("resolved at %s, want the earning window's start", a.EndsAt)
	}
}

// TestTurningARuleOffResolvesItsAlerts: a firing alert whose rule is
// turned off (a restart with a new config) resolves at once.
func TestTurningARuleOffResolvesItsAlerts(t *testing.T) {
	e := newEnv(t, "ps", "presearch", alerts.DefaultRules())
	e.apply(snapshot("node-a", e.clk.t, false))
	e.clk.t = e.clk.t.Add(time.Hour)
	want(t, e.evaluate(), "node_down/node-a:firing")
	e.cfg.Rules = e.cfg.Rules.For(alerts.SourceRules{Disable: []string{alerts.RuleNodeDown}})
	e.ev = alerts.New(e.st, e.cfg)
	want(t, e.evaluate(), "node_down/node-a:resolved")
	if a := e.only("node_down", "node-a"); !a.EndsAt.Equal(e.clk.t) {
		t.Fatalf("resolved at %s, want now (%s)", a.EndsAt, e.clk.t)
	}
}

// TestNodeDownWhenTheSourceCannotReachItsNode: a Spacemesh source that
// has not reached its node since its last commit for longer than For
// finds the node down, though its last snapshot said it was up; the
// next commit after the node answers again resolves it.
func TestNodeDownWhenTheSourceCannotReachItsNode(t *testing.T) {
	rules := alerts.DefaultRules()
	rules.NodeDown.For = 5 * time.Minute
	rules.MissedReward.Enabled = false
	e := newEnv(t, "sm", "spacemesh", rules)
	b := store.Batch{Nodes: []store.NodeStatus{{Node: "sm-node", Time: e.clk.t, Connected: ptr(true), Synced: ptr(true)}},
		Checkpoint: &store.Checkpoint{Height: 10}, Coverage: &store.Range{From: 0, To: 10}}
	e.apply(b)
	lastCommit := e.clk.t
	e.state.State, e.state.LastError = store.StateRetrying, "connection refused"
	e.clk.t = lastCommit.Add(5*time.Minute - time.Second)
	want(t, e.evaluate())
	e.clk.t = lastCommit.Add(5 * time.Minute)
	want(t, e.evaluate(), "node_down/sm-node:firing")
	if a := e.only("node_down", "sm-node"); !a.StartsAt.Equal(lastCommit.Add(5*time.Minute)) || !strings.Contains(a.Annotations["description"], "connection refused") {
		t.Fatalf("alert %+v: want it firing 5 minutes after the last commit, saying why", a)
	}
	e.clk.t = e.clk.t.Add(time.Minute)
	e.state.State = store.StateLive
	e.apply(store.Batch{Checkpoint: &store.Checkpoint{Height: 11}, Coverage: &store.Range{From: 11, To: 11}})
	want(t, e.evaluate(), "node_down/sm-node:resolved")
	if a := e.only("node_down", "sm-node"); !a.EndsAt.Equal(e.clk.t) {
		t.Fatalf("resolved at %s, want the commit's %s", a.EndsAt, e.clk.t)
	}
}
