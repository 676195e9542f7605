package main

import (
	"fmt"
	"strings"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/indexer/alerts"
	"github.com/evindex/evindex/store"
)

// setRules sets the alerts block's rules, and the evaluation interval.
func (c *AlertsConfig) setRules(r alerts.Rules) {
	c.Interval = indexer.DefaultAlertInterval
	c.NodeDown, c.SourceStalled, c.MissedReward, c.EarningsStopped = r.NodeDown, r.SourceStalled, r.MissedReward, r.EarningsStopped
}

// rules are the alerts block's rules.
func (c *AlertsConfig) rules() alerts.Rules {
	return alerts.Rules{NodeDown: c.NodeDown, SourceStalled: c.SourceStalled, MissedReward: c.MissedReward, EarningsStopped: c.EarningsStopped}
}

// evaluator is the alert evaluation of a built source, with one outbox
// row per configured webhook for each transition.
func (c *AlertsConfig) evaluator(st store.Store, s builtSource) indexer.AlertEvaluator {
	return alerts.New(st, alerts.Config{
		Source:   s.src.Name(),
		Kind:     s.src.Kind(),
		Rules:    c.rules().For(s.alerts),
		Webhooks: alerts.WebhookNames(c.webhooks()),
	})
}

// alertRuleProblems adds the problems of the alert rules, the block's
// and each source's, to p, each under its key.
func (c *Config) alertRuleProblems(p *problemList) {
	if c.Alerts.Interval <= 0 {
		p.add(&ConfigError{"alerts.interval", "must be positive"})
	}
	addLines(p, "alerts", c.Alerts.rules().Validate())
	for i, s := range c.Sources {
		addLines(p, fmt.Sprintf("sources[%d].alerts", i), s.Alerts.Validate())
	}
}

// addLines adds each "key: message" line of err as a problem of
// prefix.key.
func addLines(p *problemList, prefix string, err error) {
	if err == nil {
		return
	}
	for line := range strings.SplitSeq(err.Error(), "\n") {
		k, msg, ok := strings.Cut(line, ": ")
		if !ok {
			p.add(&ConfigError{prefix, line})
			continue
		}
		p.add(&ConfigError{prefix + "." + k, msg})
	}
}
