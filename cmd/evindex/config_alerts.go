package main

import (
	"fmt"
	"time"

	"github.com/evindex/evindex/indexer/alerts"
)

// AlertsConfig is the alerts block: where alert notifications go.
type AlertsConfig struct {
	// ExternalURL is the address users reach this evindex at; webhooks
	// carry it as externalURL and link each alert's history from it.
	ExternalURL string          `yaml:"external_url" doc:"the URL users reach evindex at (https://evindex.example.org), sent as externalURL and in each alert's generatorURL; empty: none"`
	Webhooks    []WebhookConfig `yaml:"webhooks" doc:"receivers that get every firing and resolution, in the Alertmanager webhook format (version 4)"`
	Delivery    DeliveryConfig  `yaml:"delivery" doc:"how the webhook outbox is sent"`
	// The rules every source is evaluated with (a source's own alerts
	// block changes them for it): alert_rules.go.
	Interval        time.Duration              `yaml:"interval" doc:"how often each source's rules are evaluated, besides after every commit"`
	NodeDown        alerts.NodeDownRule        `yaml:"node_down" doc:"node_down: a Presearch or Spacemesh node not connected, without peers or not synced"`
	SourceStalled   alerts.SourceStalledRule   `yaml:"source_stalled" doc:"source_stalled: a source behind its upstream that commits nothing"`
	MissedReward    alerts.MissedRewardRule    `yaml:"missed_reward" doc:"missed_reward: a tracked account missed a reward it was eligible for"`
	EarningsStopped alerts.EarningsStoppedRule `yaml:"earnings_stopped" doc:"earnings_stopped: a connected Presearch node that earns nothing"`
}

// WebhookConfig is one alerts.webhooks entry. The URL, the token and the
// header may be secrets: no log, error or API answer shows them.
type WebhookConfig struct {
	Name string `yaml:"name" doc:"the receiver's name: the payload's receiver and the metrics' webhook label (default: the URL's host:port)"`
	URL  string `yaml:"url" example:"https://hooks.example.org/alertmanager" doc:"http or https URL the notifications are POSTed to; usually ${EVINDEX_WEBHOOK_URL} when it holds a secret (never shown)"`
	// TokenFile and Header are the two ways to authenticate; at most one.
	TokenFile string        `yaml:"token_file" doc:"file holding a bearer token, sent as Authorization: Bearer TOKEN and read again before each request"`
	Header    string        `yaml:"header" doc:"one header sent with each request, \"Name: value\" (e.g. \"X-Api-Key: ${HOOK_KEY}\"); not with token_file"`
	Timeout   time.Duration `yaml:"timeout" doc:"longest wait for one request's answer (0: 10s)"`
}

// DeliveryConfig paces the sending of the webhook outbox.
type DeliveryConfig struct {
	// Concurrency bounds the webhooks sent to at once; each webhook gets
	// its notifications one at a time, in the order they happened.
	Concurrency int `yaml:"concurrency" doc:"webhooks sent to at once (each gets its notifications one at a time, in order)"`
	// MinBackoff and MaxBackoff bound the wait after a failed attempt: it
	// doubles per failure, with jitter, up to MaxBackoff, so a receiver
	// that comes back gets its backlog within MaxBackoff. A Retry-After
	// of the receiver (up to an hour) is honoured when longer.
	MinBackoff time.Duration `yaml:"min_backoff" doc:"wait after a webhook's first failed attempt; doubles per failure, with jitter"`
	MaxBackoff time.Duration `yaml:"max_backoff" doc:"longest wait between attempts (a receiver's Retry-After, up to 1h, wins when longer)"`
	// PollInterval is how often the outbox is read for new rows.
	PollInterval time.Duration `yaml:"poll_interval" doc:"how often the outbox is read for new notifications"`
}

// defaultAlerts is the alerts block before the file applies.
func defaultAlerts() AlertsConfig {
	c := AlertsConfig{Delivery: DeliveryConfig{Concurrency: 4, MinBackoff: time.Second, MaxBackoff: 5 * time.Minute, PollInterval: time.Second}}
	c.setRules(alerts.DefaultRules())
	return c
}

// problems adds the alerts block's problems to p. No message quotes a
// URL, a header or a token.
func (c *AlertsConfig) problems(p *problemList) {
	if c.ExternalURL != "" {
		if err := alerts.CheckURL(c.ExternalURL); err != nil {
			p.add(&ConfigError{"alerts.external_url", err.Error()})
		}
	}
	names := map[string]int{}
	for i, w := range c.Webhooks {
		pfx := fmt.Sprintf("alerts.webhooks[%d]", i)
		switch {
		case w.URL == "":
			p.add(&ConfigError{pfx + ".url", "required"})
		default:
			if err := alerts.CheckURL(w.URL); err != nil {
				p.add(&ConfigError{pfx + ".url", err.Error()})
			}
		}
		switch {
		case w.TokenFile != "" && w.Header != "":
			p.add(&ConfigError{pfx + ".header", "set together with token_file: use one of them"})
		case w.TokenFile != "":
			if _, err := alerts.ReadToken(w.TokenFile); err != nil {
				p.add(&ConfigError{pfx + ".token_file", err.Error()})
			}
		case w.Header != "":
			if _, _, err := alerts.ParseHeader(w.Header); err != nil {
				p.add(&ConfigError{pfx + ".header", err.Error()})
			}
		}
		if w.Timeout < 0 {
			p.add(&ConfigError{pfx + ".timeout", "must be positive (or left out for the default)"})
		}
		name := webhookName(w)
		switch j, dup := names[name]; {
		case w.Name != "" && !validWebhookName(w.Name):
			p.add(&ConfigError{pfx + ".name", fmt.Sprintf("%q: use letters, digits and . _ : -", w.Name)})
		case name == "":
		case dup && w.Name == "":
			p.add(&ConfigError{pfx + ".name", fmt.Sprintf("required: alerts.webhooks[%d] has the same host (%s); give each a name", j, name)})
		case dup:
			p.add(&ConfigError{pfx + ".name", fmt.Sprintf("%q is already the name of alerts.webhooks[%d]", name, j)})
		default:
			names[name] = i
		}
	}
	d := c.Delivery
	if d.Concurrency < 1 {
		p.add(&ConfigError{"alerts.delivery.concurrency", "must be at least 1"})
	}
	if d.MinBackoff <= 0 {
		p.add(&ConfigError{"alerts.delivery.min_backoff", "must be positive"})
	}
	if d.MaxBackoff < d.MinBackoff {
		p.add(&ConfigError{"alerts.delivery.max_backoff", fmt.Sprintf("%s: must be at least min_backoff (%s)", d.MaxBackoff, d.MinBackoff)})
	}
	if d.PollInterval <= 0 {
		p.add(&ConfigError{"alerts.delivery.poll_interval", "must be positive"})
	}
}

// webhookName is the webhook's name: its own, or its URL's host:port.
func webhookName(w WebhookConfig) string {
	if w.Name != "" {
		return w.Name
	}
	return alerts.DefaultName(w.URL)
}

// validWebhookName reports whether s can name a webhook: it is a metric
// label value and a store key, so plain characters only.
func validWebhookName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == ':' || r == '-') {
			return false
		}
	}
	return s != "" && len(s) <= 128
}

// webhooks is the alerts block's webhooks as the deliverer takes them.
func (c *AlertsConfig) webhooks() []alerts.Webhook {
	out := make([]alerts.Webhook, len(c.Webhooks))
	for i, w := range c.Webhooks {
		out[i] = alerts.Webhook{Name: webhookName(w), URL: w.URL, TokenFile: w.TokenFile, Header: w.Header, Timeout: w.Timeout}
	}
	return out
}
