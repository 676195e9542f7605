// Package alerts evaluates evindex's alert rules on what the store holds:
// a node down, a source stalled, a missed reward, a node that stopped
// earning. Each evaluation compares the conditions the stored data shows
// with the stored alerts and returns the transitions (an episode firing
// or resolving, with one outbox row per webhook) as a batch, which the
// source's runner commits fenced by its lease.
//
// Every time an episode carries is taken from the data (the snapshot
// that showed the node down, the window that earned nothing, the
// commit that ended a stall), not from when the evaluation ran, so an
// evaluation repeated after a crash finds the same episodes: a restart
// neither loses a transition (the data is stored, the next evaluation
// writes it) nor repeats one (the stored alert says it is written).
package alerts

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The rules.
const (
	// RuleNodeDown: a node's latest stored status says it is not
	// connected (Presearch), has no peers or is not synced (Spacemesh),
	// or the source cannot reach its node (Spacemesh), for longer than
	// NodeDownRule.For.
	RuleNodeDown = "node_down"
	// RuleSourceStalled: the source is behind its upstream by more than
	// its lag threshold and has committed nothing for longer than
	// SourceStalledRule.For.
	RuleSourceStalled = "source_stalled"
	// RuleMissedReward: an account missed a reward it was eligible for
	// (store.MissedRewards).
	RuleMissedReward = "missed_reward"
	// RuleEarningsStopped: a connected Presearch node whose last
	// EarningsStoppedRule.Windows stats windows earned nothing.
	RuleEarningsStopped = "earnings_stopped"
)

// RuleNames lists the rules in the order they are documented.
func RuleNames() []string {
	return []string{RuleNodeDown, RuleSourceStalled, RuleMissedReward, RuleEarningsStopped}
}

// NodeDownRule configures node_down.
type NodeDownRule struct {
	Enabled bool          `yaml:"enabled" doc:"alert when a node is not connected, has no peers or is not synced (Presearch, Spacemesh)"`
	For     time.Duration `yaml:"for" doc:"how long the node must stay down before the alert fires"`
}

// SourceStalledRule configures source_stalled.
type SourceStalledRule struct {
	Enabled bool          `yaml:"enabled" doc:"alert when a source is behind its upstream by more than its lag_threshold and commits nothing"`
	For     time.Duration `yaml:"for" doc:"how long without a commit before the alert fires"`
}

// MissedRewardRule configures missed_reward.
type MissedRewardRule struct {
	Enabled bool `yaml:"enabled" doc:"alert when a tracked account misses a reward it was eligible for (see /v1/rewards/missed)"`
	// ResolveAfter is measured on the source's own clock (the time of the
	// heights it has indexed), so a backfill resolves what it fires.
	ResolveAfter time.Duration `yaml:"resolve_after" doc:"the alert resolves when the account misses nothing more for this long of the chain's time"`
}

// EarningsStoppedRule configures earnings_stopped.
type EarningsStoppedRule struct {
	Enabled bool `yaml:"enabled" doc:"alert when a connected Presearch node earns nothing in its last windows"`
	Windows int  `yaml:"windows" doc:"how many consecutive stats windows without earnings fire the alert"`
}

// Rules is the configuration of every rule for one source.
type Rules struct {
	NodeDown        NodeDownRule
	SourceStalled   SourceStalledRule
	MissedReward    MissedRewardRule
	EarningsStopped EarningsStoppedRule
}

// DefaultRules has every rule on, with the defaults the README gives.
func DefaultRules() Rules {
	return Rules{
		NodeDown:        NodeDownRule{Enabled: true, For: 10 * time.Minute},
		SourceStalled:   SourceStalledRule{Enabled: true, For: 15 * time.Minute},
		MissedReward:    MissedRewardRule{Enabled: true, ResolveAfter: time.Hour},
		EarningsStopped: EarningsStoppedRule{Enabled: true, Windows: 3},
	}
}

// MaxWindows bounds EarningsStoppedRule.Windows: the evaluation reads
// that many windows of every node.
const MaxWindows = 1000

// Validate returns every problem of the rules, one a line, each
// naming its key under the alerts block ("node_down.for: ...").
func (r Rules) Validate() error {
	var errs []string
	if r.NodeDown.For < 0 {
		errs = append(errs, "node_down.for: must not be negative")
	}
	if r.SourceStalled.For < 0 {
		errs = append(errs, "source_stalled.for: must not be negative")
	}
	if r.MissedReward.ResolveAfter <= 0 {
		errs = append(errs, "missed_reward.resolve_after: must be positive")
	}
	if r.EarningsStopped.Windows < 1 || r.EarningsStopped.Windows > MaxWindows {
		errs = append(errs, fmt.Sprintf("earnings_stopped.windows: %d: want 1 to %d", r.EarningsStopped.Windows, MaxWindows))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// SourceRules is a source's own alerts block: what differs from the
// top-level rules for it. Zero values keep the top-level ones.
type SourceRules struct {
	Disable                  []string      `yaml:"disable" doc:"rules that do not apply to this source (node_down, source_stalled, missed_reward, earnings_stopped)"`
	NodeDownFor              time.Duration `yaml:"node_down_for" doc:"node_down's for, for this source (0: the alerts block's)"`
	SourceStalledFor         time.Duration `yaml:"source_stalled_for" doc:"source_stalled's for, for this source (0: the alerts block's)"`
	MissedRewardResolveAfter time.Duration `yaml:"missed_reward_resolve_after" doc:"missed_reward's resolve_after, for this source (0: the alerts block's)"`
	EarningsStoppedWindows   int           `yaml:"earnings_stopped_windows" doc:"earnings_stopped's windows, for this source (0: the alerts block's)"`
}

// Validate returns every problem of a source's alerts block, one a line,
// each naming its key ("disable[0]: ...").
func (s SourceRules) Validate() error {
	var errs []string
	for i, name := range s.Disable {
		if !slices.Contains(RuleNames(), name) {
			errs = append(errs, fmt.Sprintf("disable[%d]: %q is not a rule (%s)", i, name, strings.Join(RuleNames(), ", ")))
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"node_down_for", s.NodeDownFor}, {"source_stalled_for", s.SourceStalledFor}, {"missed_reward_resolve_after", s.MissedRewardResolveAfter}} {
		if d.v < 0 {
			errs = append(errs, d.key+": must not be negative")
		}
	}
	if s.EarningsStoppedWindows < 0 || s.EarningsStoppedWindows > MaxWindows {
		errs = append(errs, fmt.Sprintf("earnings_stopped_windows: %d: want 0 to %d", s.EarningsStoppedWindows, MaxWindows))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// For returns r with a source's own block applied.
func (r Rules) For(s SourceRules) Rules {
	off := func(name string) bool { return slices.Contains(s.Disable, name) }
	r.NodeDown.Enabled = r.NodeDown.Enabled && !off(RuleNodeDown)
	r.SourceStalled.Enabled = r.SourceStalled.Enabled && !off(RuleSourceStalled)
	r.MissedReward.Enabled = r.MissedReward.Enabled && !off(RuleMissedReward)
	r.EarningsStopped.Enabled = r.EarningsStopped.Enabled && !off(RuleEarningsStopped)
	if s.NodeDownFor > 0 {
		r.NodeDown.For = s.NodeDownFor
	}
	if s.SourceStalledFor > 0 {
		r.SourceStalled.For = s.SourceStalledFor
	}
	if s.MissedRewardResolveAfter > 0 {
		r.MissedReward.ResolveAfter = s.MissedRewardResolveAfter
	}
	if s.EarningsStoppedWindows > 0 {
		r.EarningsStopped.Windows = s.EarningsStoppedWindows
	}
	return r
}

// enabled reports whether the named rule is on.
func (r Rules) enabled(name string) bool {
	switch name {
	case RuleNodeDown:
		return r.NodeDown.Enabled
	case RuleSourceStalled:
		return r.SourceStalled.Enabled
	case RuleMissedReward:
		return r.MissedReward.Enabled
	case RuleEarningsStopped:
		return r.EarningsStopped.Enabled
	}
	return false
}
