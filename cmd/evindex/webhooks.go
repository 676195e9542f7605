package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/evindex/evindex/indexer/alerts"
	"github.com/evindex/evindex/store"
)

// newWebhooks is the webhook outbox's deliverer, nil when no
// alerts.webhooks are configured. Every process of a shared store runs
// one: the store's claims keep two from sending a row at once.
func newWebhooks(cfg Config, st store.Store, reg prometheus.Registerer, log zerolog.Logger) (*alerts.Deliverer, error) {
	if len(cfg.Alerts.Webhooks) == 0 {
		return nil, nil
	}
	d := cfg.Alerts.Delivery
	deliverer, err := alerts.NewDeliverer(alerts.DelivererConfig{
		Outbox:       st,
		Webhooks:     cfg.Alerts.webhooks(),
		ExternalURL:  cfg.Alerts.ExternalURL,
		Owner:        instanceName(cfg),
		Concurrency:  d.Concurrency,
		MinBackoff:   d.MinBackoff,
		MaxBackoff:   d.MaxBackoff,
		PollInterval: d.PollInterval,
		Logger:       log,
		Metrics:      alerts.NewDeliveryMetrics(reg),
	})
	if err != nil {
		return nil, fmt.Errorf("alerts.webhooks: %w", err)
	}
	return deliverer, nil
}
