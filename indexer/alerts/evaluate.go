package alerts

import (
	"context"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/evindex/evindex/store"
)

// Config is one source's evaluation.
type Config struct {
	Source string
	Kind   string // the source's kind: which rules apply
	Rules  Rules
	// Webhooks are the names of the configured webhooks: every
	// transition writes one outbox row for each.
	Webhooks []string
	// Now is the clock the durations of the rules are measured on
	// (default time.Now).
	Now func() time.Time
}

// Evaluator evaluates one source's rules on the store.
type Evaluator struct {
	st  store.Store
	cfg Config
}

// New returns the evaluator of cfg.Source on st.
func New(st store.Store, cfg Config) *Evaluator {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Evaluator{st: st, cfg: cfg}
}

// ruleKey names an alert of the source: its rule and subject.
type ruleKey struct{ rule, subject string }

// finding is what a rule concluded about one subject.
type finding struct {
	ruleKey
	// fire: the condition holds and the alert fires at starts. Without
	// fire, the condition does not hold: a firing alert resolves at ends
	// (zero: now), unless keep says the rule cannot tell yet.
	fire        bool
	keep        bool
	starts      time.Time
	ends        time.Time
	annotations map[string]string
}

// Evaluate compares what the store holds of the source (and status, the
// runner's view of it) with the source's stored alerts, and returns the
// transitions as a batch of the source (alerts and their outbox rows),
// or nil when nothing changes. The caller commits it fenced by the
// source's lease; evaluating again before the commit returns the same.
func (e *Evaluator) Evaluate(ctx context.Context, status store.SourceStatus) (*store.Batch, error) {
	now := e.cfg.Now().UTC()
	latest, err := e.st.LatestAlerts(ctx, e.cfg.Source)
	if err != nil {
		return nil, fmt.Errorf("alerts of %s: %w", e.cfg.Source, err)
	}
	stored := map[ruleKey]store.Alert{}
	for _, a := range latest {
		stored[ruleKey{a.Rule, a.Subject}] = a
	}
	var found []finding
	for _, r := range []struct {
		name string
		eval func(context.Context, time.Time, store.SourceStatus, map[ruleKey]store.Alert) ([]finding, error)
	}{
		{RuleNodeDown, e.nodeDown},
		{RuleSourceStalled, e.sourceStalled},
		{RuleMissedReward, e.missedReward},
		{RuleEarningsStopped, e.earningsStopped},
	} {
		if !e.cfg.Rules.enabled(r.name) {
			continue
		}
		fs, err := r.eval(ctx, now, status, stored)
		if err != nil {
			return nil, fmt.Errorf("%s of %s: %w", r.name, e.cfg.Source, err)
		}
		found = append(found, fs...)
	}
	b := store.Batch{Source: e.cfg.Source}
	seen := map[ruleKey]bool{}
	for _, f := range found {
		seen[f.ruleKey] = true
		l, has := stored[f.ruleKey]
		firing := has && l.State == store.AlertFiring
		switch {
		case f.fire && !firing:
			starts := f.starts
			if has && starts.Before(l.EndsAt) {
				starts = l.EndsAt // episodes of a subject do not overlap
			}
			if has && !starts.After(l.StartsAt) {
				starts = l.StartsAt.Add(time.Nanosecond)
			}
			b.Alerts = append(b.Alerts, store.Alert{Source: e.cfg.Source, Rule: f.rule, Subject: f.subject,
				StartsAt: starts, State: store.AlertFiring, Labels: e.labels(f.ruleKey), Annotations: f.annotations})
		case !f.fire && !f.keep && firing:
			b.Alerts = append(b.Alerts, resolve(l, f.ends, now, f.annotations))
		}
	}
	// A firing alert no rule speaks of any more (its rule was turned
	// off, or its subject is gone from what the source stores) resolves
	// now.
	for k, l := range stored {
		if !seen[k] && l.State == store.AlertFiring {
			b.Alerts = append(b.Alerts, resolve(l, time.Time{}, now, nil))
		}
	}
	if len(b.Alerts) == 0 {
		return nil, nil
	}
	for _, a := range b.Alerts {
		for _, w := range e.cfg.Webhooks {
			b.Deliveries = append(b.Deliveries, store.Delivery{Webhook: w, Alert: a})
		}
	}
	return &b, nil
}

// resolve is l resolved at ends (now when zero or before it started),
// with notes added to its annotations.
func resolve(l store.Alert, ends, now time.Time, notes map[string]string) store.Alert {
	if ends.IsZero() || ends.Before(l.StartsAt) {
		ends = now
	}
	if ends.Before(l.StartsAt) {
		ends = l.StartsAt
	}
	l.State, l.EndsAt = store.AlertResolved, ends
	if len(notes) > 0 {
		merged := make(map[string]string, len(l.Annotations)+len(notes))
		for k, v := range l.Annotations {
			merged[k] = v
		}
		for k, v := range notes {
			merged[k] = v
		}
		l.Annotations = merged
	}
	return l
}

// severity of each rule, as a receiver routes on it.
var severity = map[string]string{
	RuleNodeDown:        "critical",
	RuleSourceStalled:   "warning",
	RuleMissedReward:    "warning",
	RuleEarningsStopped: "warning",
}

// subjectLabel names a rule's subject among its labels.
var subjectLabel = map[string]string{
	RuleNodeDown:        "node",
	RuleEarningsStopped: "node",
	RuleMissedReward:    "account",
}

// labels identify an alert to a receiver; they depend only on the
// alert's identity, so every episode of a subject carries the same.
func (e *Evaluator) labels(k ruleKey) map[string]string {
	l := map[string]string{"alertname": k.rule, "source": e.cfg.Source, "kind": e.cfg.Kind, "severity": severity[k.rule]}
	if name := subjectLabel[k.rule]; name != "" && k.subject != "" {
		l[name] = k.subject
	}
	return l
}

// nodeIsDown says whether a snapshot shows the node down, and why.
func nodeIsDown(n *store.NodeStatus) (bool, string) {
	switch {
	case n.Connected != nil && !*n.Connected:
		return true, "not connected"
	case n.Synced != nil && !*n.Synced:
		return true, "not synced"
	}
	return false, ""
}

// maxHistoryPages bounds the walk back through a node's snapshots to
// where its current state began.
const maxHistoryPages = 20

// stateSince returns the time of the earliest snapshot of the run of
// snapshots, ending with the latest, whose down state is down.
func (e *Evaluator) stateSince(ctx context.Context, node string, down bool) (time.Time, error) {
	q := store.NodeHistoryQuery{Source: e.cfg.Source, Node: node, Desc: true, Limit: store.DefaultLimit}
	var since time.Time
	for range maxHistoryPages {
		p, err := e.st.NodeHistory(ctx, q)
		if err != nil {
			return time.Time{}, err
		}
		for i := range p.Items {
			if d, _ := nodeIsDown(&p.Items[i]); d != down {
				return since, nil
			}
			since = p.Items[i].Time
		}
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	return since, nil
}

// nodeDown finds each node's state from its stored snapshots and, for a
// Spacemesh source, whether the source reaches its node at all.
func (e *Evaluator) nodeDown(ctx context.Context, now time.Time, status store.SourceStatus, stored map[ruleKey]store.Alert) ([]finding, error) {
	if e.cfg.Kind != "presearch" && e.cfg.Kind != "spacemesh" {
		return nil, nil
	}
	forDur := e.cfg.Rules.NodeDown.For
	nodes, err := e.st.Nodes(ctx, e.cfg.Source)
	if err != nil {
		return nil, err
	}
	cp, hasCP, err := e.st.Checkpoint(ctx, e.cfg.Source)
	if err != nil {
		return nil, err
	}
	// A Spacemesh source's upstream is its node: a source that has not
	// reached it since its last commit finds the node down.
	unreachable := e.cfg.Kind == "spacemesh" && hasCP && !cp.UpdatedAt.IsZero() &&
		(status.State == store.StateRetrying || status.State == store.StateFailed) && !now.Before(cp.UpdatedAt.Add(forDur))
	var out []finding
	for i := range nodes {
		n := &nodes[i]
		k := ruleKey{RuleNodeDown, n.Node}
		down, why := nodeIsDown(n)
		switch {
		case unreachable:
			out = append(out, finding{ruleKey: k, fire: true, starts: cp.UpdatedAt.Add(forDur), annotations: map[string]string{
				"summary":     fmt.Sprintf("%s: node %s cannot be reached", e.cfg.Source, n.Node),
				"description": fmt.Sprintf("evindex has not reached the node since its last commit at %s: %s", cp.UpdatedAt.Format(time.RFC3339), status.LastError),
				"down_since":  cp.UpdatedAt.Format(time.RFC3339Nano),
			}})
		case down:
			since, err := e.stateSince(ctx, n.Node, true)
			if err != nil {
				return nil, err
			}
			if now.Before(since.Add(forDur)) {
				out = append(out, finding{ruleKey: k, keep: true}) // down, not yet for long enough
				continue
			}
			out = append(out, finding{ruleKey: k, fire: true, starts: since.Add(forDur), annotations: map[string]string{
				"summary":     fmt.Sprintf("%s: node %s is %s", e.cfg.Source, n.Node, why),
				"description": fmt.Sprintf("node %s has been %s since %s (for more than %s)", n.Node, why, since.Format(time.RFC3339), forDur),
				"down_since":  since.Format(time.RFC3339Nano),
			}})
		default:
			l, has := stored[k]
			if !has || l.State != store.AlertFiring {
				out = append(out, finding{ruleKey: k})
				continue
			}
			back, err := e.stateSince(ctx, n.Node, false)
			if err != nil {
				return nil, err
			}
			if back.Before(l.StartsAt) && hasCP && cp.UpdatedAt.After(l.StartsAt) {
				back = cp.UpdatedAt // reached again: the first commit after it fired
			}
			out = append(out, finding{ruleKey: k, ends: back})
		}
	}
	return out, nil
}

// sourceStalled fires when the source is behind by more than its lag
// threshold and its last commit is older than For; any later commit
// resolves it.
func (e *Evaluator) sourceStalled(ctx context.Context, now time.Time, status store.SourceStatus, stored map[ruleKey]store.Alert) ([]finding, error) {
	cp, found, err := e.st.Checkpoint(ctx, e.cfg.Source)
	if err != nil || !found || cp.UpdatedAt.IsZero() {
		return nil, err
	}
	forDur := e.cfg.Rules.SourceStalled.For
	k := ruleKey{RuleSourceStalled, ""}
	if l, has := stored[k]; has && l.State == store.AlertFiring {
		if cp.UpdatedAt.After(l.StartsAt.Add(-forDur)) {
			return []finding{{ruleKey: k, ends: cp.UpdatedAt}}, nil
		}
		return []finding{{ruleKey: k, keep: true}}, nil
	}
	behind := status.HeadHeight > 0 && status.Lag > status.LagThreshold
	if !behind || now.Before(cp.UpdatedAt.Add(forDur)) {
		return []finding{{ruleKey: k}}, nil
	}
	return []finding{{ruleKey: k, fire: true, starts: cp.UpdatedAt.Add(forDur), annotations: map[string]string{
		"summary": fmt.Sprintf("%s has committed nothing since %s", e.cfg.Source, cp.UpdatedAt.Format(time.RFC3339)),
		"description": fmt.Sprintf("%s is %d behind its upstream (head %d, checkpoint %d, threshold %d) and has committed nothing for more than %s",
			e.cfg.Source, status.Lag, status.HeadHeight, cp.Height, status.LagThreshold, forDur),
		"checkpoint": strconv.FormatUint(cp.Height, 10),
		"head":       strconv.FormatUint(status.HeadHeight, 10),
	}}}, nil
}

// missedReward fires for an account's first missed reward past the ones
// its alerts already told of, and resolves once the account has missed
// nothing for ResolveAfter of the chain's time (the checkpoint's).
func (e *Evaluator) missedReward(ctx context.Context, now time.Time, _ store.SourceStatus, stored map[ruleKey]store.Alert) ([]finding, error) {
	byAccount := map[string][]store.MissedReward{}
	var accounts []string
	q := store.MissedQuery{Source: e.cfg.Source, Limit: store.MaxLimit}
	for {
		p, err := store.MissedRewards(ctx, e.st, q)
		if err != nil {
			return nil, err
		}
		for _, m := range p.Items {
			if byAccount[m.Account] == nil {
				accounts = append(accounts, m.Account)
			}
			byAccount[m.Account] = append(byAccount[m.Account], m) // in height order
		}
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	cp, _, err := e.st.Checkpoint(ctx, e.cfg.Source)
	if err != nil {
		return nil, err
	}
	chainNow := cp.Time
	if chainNow.IsZero() {
		chainNow = now
	}
	after := e.cfg.Rules.MissedReward.ResolveAfter
	var out []finding
	for _, acct := range accounts {
		misses := byAccount[acct]
		k := ruleKey{RuleMissedReward, acct}
		l, has := stored[k]
		if has && l.State == store.AlertFiring {
			from, _ := strconv.ParseUint(l.Annotations["height"], 10, 64)
			var last *store.MissedReward
			n := 0
			for i := range misses {
				if misses[i].Height >= from {
					last, n = &misses[i], n+1
				}
			}
			lastAt := l.StartsAt
			if last != nil && !last.Time.IsZero() {
				lastAt = last.Time
			}
			if chainNow.Before(lastAt.Add(after)) {
				out = append(out, finding{ruleKey: k, keep: true})
				continue
			}
			notes := map[string]string{"missed": strconv.Itoa(n)}
			if last != nil {
				notes["last_height"] = strconv.FormatUint(last.Height, 10)
			}
			out = append(out, finding{ruleKey: k, ends: lastAt.Add(after), annotations: notes})
			continue
		}
		var told uint64
		if has {
			told, _ = strconv.ParseUint(cmpOr(l.Annotations["last_height"], l.Annotations["height"]), 10, 64)
		}
		var fresh []store.MissedReward
		for _, m := range misses {
			if !has || m.Height > told {
				fresh = append(fresh, m)
			}
		}
		if len(fresh) == 0 {
			out = append(out, finding{ruleKey: k})
			continue
		}
		m := fresh[0]
		starts := m.Time
		if starts.IsZero() {
			starts = now
		}
		out = append(out, finding{ruleKey: k, fire: true, starts: starts, annotations: map[string]string{
			"summary":     fmt.Sprintf("%s: %s missed a reward at height %d (%s)", e.cfg.Source, acct, m.Height, m.Reason),
			"description": fmt.Sprintf("%s was eligible for %d reward(s) at height %d of epoch %d and earned none: %s; %d missed so far", acct, m.Eligibilities, m.Height, m.Epoch, m.Reason, len(fresh)),
			"height":      strconv.FormatUint(m.Height, 10),
			"epoch":       strconv.FormatUint(m.Epoch, 10),
			"reason":      m.Reason,
		}})
	}
	// Accounts whose misses are gone (a revert paid them) resolve.
	for k, l := range stored {
		if k.rule == RuleMissedReward && byAccount[k.subject] == nil && l.State == store.AlertFiring {
			out = append(out, finding{ruleKey: k})
		}
	}
	return out, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// earningsStopped fires for a connected Presearch node whose last
// Windows stats windows each earned zero, and resolves when a window
// earns again or the node disconnects (node_down speaks then).
func (e *Evaluator) earningsStopped(ctx context.Context, now time.Time, _ store.SourceStatus, stored map[ruleKey]store.Alert) ([]finding, error) {
	if e.cfg.Kind != "presearch" {
		return nil, nil
	}
	w := e.cfg.Rules.EarningsStopped.Windows
	nodes, err := e.st.Nodes(ctx, e.cfg.Source)
	if err != nil {
		return nil, err
	}
	var out []finding
	for i := range nodes {
		n := &nodes[i]
		k := ruleKey{RuleEarningsStopped, n.Node}
		p, err := e.st.Rewards(ctx, store.RewardQuery{Source: e.cfg.Source, Accounts: []string{n.Node}, Desc: true, Limit: w})
		if err != nil {
			return nil, err
		}
		var windows []store.Reward
		for _, r := range p.Items {
			if r.Account == n.Node && !r.PeriodEnd.IsZero() {
				windows = append(windows, r)
			}
		}
		zero := len(windows) == w
		for _, r := range windows {
			if v, ok := new(big.Int).SetString(r.RawAmount, 10); !ok || v.Sign() != 0 {
				zero = false
			}
		}
		connected := n.Connected != nil && *n.Connected
		switch {
		case zero && connected:
			out = append(out, finding{ruleKey: k, fire: true, starts: windows[0].PeriodEnd, annotations: map[string]string{
				"summary":     fmt.Sprintf("%s: node %s earned nothing in its last %d windows", e.cfg.Source, n.Node, w),
				"description": fmt.Sprintf("node %s is connected but earned 0 PRE from %s to %s", n.Node, windows[w-1].PeriodStart.Format(time.RFC3339), windows[0].PeriodEnd.Format(time.RFC3339)),
				"since":       windows[w-1].PeriodStart.Format(time.RFC3339Nano),
			}})
		case !connected:
			out = append(out, finding{ruleKey: k, ends: n.Time})
		case len(windows) > 0:
			out = append(out, finding{ruleKey: k, ends: windows[0].PeriodStart})
		default:
			out = append(out, finding{ruleKey: k})
		}
	}
	return out, nil
}
