package alerts

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/store"
)

// DelivererConfig configures the sending of the webhook outbox.
type DelivererConfig struct {
	// Outbox is the store the alert transitions' outbox rows are in.
	Outbox store.AlertStore
	// Webhooks are the receivers; rows of a webhook not among them stay
	// in the outbox (counted as pending) until it is configured again.
	Webhooks []Webhook
	// ExternalURL is sent as externalURL and the base of generatorURL.
	ExternalURL string
	// Owner names this process in the outbox's claims (the instance name).
	Owner string
	// Concurrency bounds the webhooks sent to at once. Each webhook gets
	// its rows one at a time in the order they were written, so a
	// receiver sees an alert fire before it resolves.
	Concurrency int
	// MinBackoff and MaxBackoff bound the wait after a failed attempt (see
	// indexer.Backoff); a receiver's Retry-After wins when longer.
	MinBackoff, MaxBackoff time.Duration
	// PollInterval is how often the outbox is read for due rows.
	PollInterval time.Duration
	Logger       zerolog.Logger
	// Metrics, when set, counts deliveries.
	Metrics *DeliveryMetrics
	// Now is the clock of claims and next attempts; nil: time.Now.
	Now func() time.Time
	// Client sends the requests; nil: one that follows no redirect.
	Client *http.Client
}

// DeliveryMetrics are the webhook outbox's metrics, by webhook name.
type DeliveryMetrics struct {
	Sent    *prometheus.CounterVec
	Failed  *prometheus.CounterVec
	Pending *prometheus.GaugeVec
}

// The names of the delivery metrics, which the generated Prometheus rules
// also read.
const (
	MetricDeliveriesSent    = "evindex_webhook_deliveries_sent_total"
	MetricDeliveriesFailed  = "evindex_webhook_deliveries_failed_total"
	MetricDeliveriesPending = "evindex_webhook_deliveries_pending"
)

// NewDeliveryMetrics creates the metrics and registers them with reg
// (nil: not registered).
func NewDeliveryMetrics(reg prometheus.Registerer) *DeliveryMetrics {
	hook := []string{"webhook"}
	m := &DeliveryMetrics{
		Sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDeliveriesSent,
			Help: "Alert notifications a webhook answered with 2xx (a notification resent after a crash counts again)."}, hook),
		Failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDeliveriesFailed,
			Help: "Attempts to send an alert notification that failed (no answer, or not 2xx); each is retried."}, hook),
		Pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricDeliveriesPending,
			Help: "Alert notifications in the outbox, not yet answered with 2xx, per webhook."}, hook),
	}
	if reg != nil {
		reg.MustRegister(m.Sent, m.Failed, m.Pending)
	}
	return m
}

// Deliverer drains the webhook outbox: it POSTs each due row to its
// webhook and removes the row only once the receiver answered 2xx, so a
// notification survives any crash before that (at least once; receivers
// deduplicate by fingerprint, status and startsAt). A failed attempt is
// retried with a jittered exponential backoff per webhook.
type Deliverer struct {
	cfg     DelivererConfig
	senders map[string]*sender
	order   []string // webhook names, in config order
	log     zerolog.Logger

	mu sync.Mutex
	// busy marks webhooks being drained; waitUntil holds a webhook back
	// until its head row is due again.
	busy      map[string]bool
	waitUntil map[string]time.Time
	// storeFailing marks webhooks whose last outbox read failed, so the
	// error is logged once per streak.
	storeFailing map[string]bool
}

// pendingEvery is how often the pending gauge is counted.
const pendingEvery = time.Second

// NewDeliverer checks the webhooks and returns their deliverer.
func NewDeliverer(cfg DelivererConfig) (*Deliverer, error) {
	if cfg.Outbox == nil || cfg.Owner == "" {
		return nil, errors.New("webhook deliverer: an outbox and an owner are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Concurrency = max(cfg.Concurrency, 1)
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	d := &Deliverer{cfg: cfg, senders: map[string]*sender{}, log: cfg.Logger.With().Str("component", "webhooks").Logger(),
		busy: map[string]bool{}, waitUntil: map[string]time.Time{}, storeFailing: map[string]bool{}}
	for _, h := range cfg.Webhooks {
		if _, dup := d.senders[h.Name]; dup || h.Name == "" {
			return nil, fmt.Errorf("webhook %q: names must be unique and not empty", h.Name)
		}
		s, err := newSender(h, cfg.Client)
		if err != nil {
			return nil, err
		}
		d.senders[h.Name] = s
		d.order = append(d.order, h.Name)
		if m := cfg.Metrics; m != nil {
			// Every configured webhook has its series from the start, so
			// a receiver that never answered shows as 0 sent, not absent.
			m.Sent.WithLabelValues(h.Name)
			m.Failed.WithLabelValues(h.Name)
			m.Pending.WithLabelValues(h.Name)
		}
	}
	return d, nil
}

// Run drains the outbox until ctx ends. A send in flight then is
// abandoned; its row stays and is sent again by the next run.
func (d *Deliverer) Run(ctx context.Context) error {
	for _, name := range d.order {
		s := d.senders[name]
		d.log.Info().Str("webhook", name).Str("url", s.hook.RedactedURL()).Msg("alert notifications go to this webhook")
	}
	d.reportOrphans(ctx)
	sem := make(chan struct{}, d.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(d.cfg.PollInterval)
	defer tick.Stop()
	var counted time.Time
	for {
		// Counting reads every row, so not more often than every
		// pendingEvery, however short the poll interval.
		if time.Since(counted) >= pendingEvery {
			d.countPending(ctx)
			counted = time.Now()
		}
		now := d.cfg.Now()
		for _, name := range d.order {
			if !d.startDrain(name, now) {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				d.endDrain(name)
				return nil
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				defer d.endDrain(name)
				d.drain(ctx, name)
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// startDrain marks name busy unless it is busy or waiting already.
func (d *Deliverer) startDrain(name string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.busy[name] || d.waitUntil[name].After(now) {
		return false
	}
	d.busy[name] = true
	return true
}

func (d *Deliverer) endDrain(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.busy, name)
}

// holdBack keeps name from being drained before until.
func (d *Deliverer) holdBack(name string, until time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.waitUntil[name] = until
}

// drain sends name's rows in ID order until none is due, one fails, or
// another process is sending them.
func (d *Deliverer) drain(ctx context.Context, name string) {
	s := d.senders[name]
	for ctx.Err() == nil {
		now := d.cfg.Now()
		head, err := d.cfg.Outbox.Deliveries(ctx, name, 1)
		if d.storeError(ctx, name, "read the outbox", err) || len(head) == 0 {
			return
		}
		h := head[0]
		switch {
		case h.NextAttempt.After(now):
			// The oldest row is in its backoff: the later ones wait behind
			// it, so the receiver gets them in order.
			d.holdBack(name, h.NextAttempt)
			return
		case h.ClaimedBy != "" && h.ClaimedBy != d.cfg.Owner && h.ClaimedUntil.After(now):
			return // another process is sending this webhook's rows
		}
		// One row at a time: a claimed row that is not sent would wait
		// out its hold before anyone may send it.
		rows, err := d.cfg.Outbox.ClaimDeliveries(ctx, store.DeliveryClaim{Owner: d.cfg.Owner, Webhook: name, Now: now, Hold: s.hook.Timeout*2 + 5*time.Second, Limit: 1})
		if d.storeError(ctx, name, "claim from the outbox", err) || len(rows) == 0 {
			return // another sender took the due rows first
		}
		if rows[0].ID != h.ID {
			// Another process sharing the store claimed the head in
			// between. This row goes out only once the head is gone
			// (delivered), so the order holds across processes; until
			// then it is handed back at once, unchanged but for its
			// attempt count, rather than held for the whole claim.
			head, err := d.cfg.Outbox.Deliveries(ctx, name, 1)
			if d.storeError(ctx, name, "read the outbox", err) || len(head) == 0 || head[0].ID != rows[0].ID {
				r := rows[0]
				err := d.cfg.Outbox.FinishDelivery(ctx, store.DeliveryResult{ID: r.ID, Owner: d.cfg.Owner, Error: r.LastError, NextAttempt: r.NextAttempt})
				if err != nil && !errors.Is(err, store.ErrClaimLost) {
					d.storeError(ctx, name, "hand a delivery back", err)
				}
				return
			}
		}
		if !d.send(ctx, s, rows[0]) {
			return
		}
	}
}

// send POSTs one claimed row and records the outcome; it reports whether
// the receiver took it.
func (d *Deliverer) send(ctx context.Context, s *sender, row store.Delivery) bool {
	name := s.hook.Name
	msg := NewMessage(name, d.cfg.ExternalURL, notificationOf(row.Alert, d.cfg.ExternalURL))
	body, err := msg.Encode()
	if err != nil {
		d.log.Error().Err(err).Str("webhook", name).Uint64("delivery", row.ID).Msg("cannot encode an alert notification")
		return false
	}
	now := d.cfg.Now()
	o := s.post(ctx, body, now)
	if ctx.Err() != nil {
		return false // stopping: the row stays and is sent again
	}
	if o.err == nil {
		if m := d.cfg.Metrics; m != nil {
			m.Sent.WithLabelValues(name).Inc()
		}
		err := d.cfg.Outbox.FinishDelivery(ctx, store.DeliveryResult{ID: row.ID, Owner: d.cfg.Owner, Delivered: true})
		switch {
		case errors.Is(err, store.ErrClaimLost):
			// The claim ran out during a slow answer and another sender
			// took the row: it may be sent twice, which receivers
			// deduplicate.
			d.log.Warn().Str("webhook", name).Uint64("delivery", row.ID).Msg("delivered after its claim ran out; it may be sent again")
		case err != nil:
			d.storeError(ctx, name, "record a delivery", err)
			return false // the row stays and is sent again
		}
		d.log.Debug().Str("webhook", name).Uint64("delivery", row.ID).Str("fingerprint", row.Alert.Fingerprint).Str("status", row.Alert.State).Msg("alert notification delivered")
		return true
	}
	attempt := row.Attempts + 1
	wait := indexer.Backoff(attempt, d.cfg.MinBackoff, d.cfg.MaxBackoff)
	if o.hasRetryAfter && o.retryAfter > wait {
		wait = o.retryAfter
	}
	next := now.Add(wait)
	if m := d.cfg.Metrics; m != nil {
		m.Failed.WithLabelValues(name).Inc()
	}
	d.log.Warn().Str("webhook", name).Err(o.err).Int("attempt", attempt).Int64("retry_in_ms", wait.Milliseconds()).Uint64("delivery", row.ID).Msg("alert notification not delivered; retrying")
	err = d.cfg.Outbox.FinishDelivery(ctx, store.DeliveryResult{ID: row.ID, Owner: d.cfg.Owner, Error: o.err.Error(), NextAttempt: next})
	if err != nil && !errors.Is(err, store.ErrClaimLost) {
		d.storeError(ctx, name, "record a failed delivery", err)
	}
	d.holdBack(name, next)
	return false
}

// storeError logs an outbox error once per streak of them and reports
// whether there was one. The next poll tries again.
func (d *Deliverer) storeError(ctx context.Context, name, what string, err error) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		delete(d.storeFailing, name)
		return false
	}
	if ctx.Err() == nil && !d.storeFailing[name] {
		d.log.Error().Err(err).Str("webhook", name).Msg("cannot " + what + "; trying again")
	}
	d.storeFailing[name] = true
	return true
}

// countPending sets the pending gauge from the outbox.
func (d *Deliverer) countPending(ctx context.Context) {
	if d.cfg.Metrics == nil {
		return
	}
	counts, err := d.pending(ctx)
	if err != nil {
		return // the drains log the store's errors
	}
	for _, name := range d.order {
		d.cfg.Metrics.Pending.WithLabelValues(name).Set(float64(counts[name]))
	}
	for name, n := range counts {
		if _, ok := d.senders[name]; !ok {
			d.cfg.Metrics.Pending.WithLabelValues(name).Set(float64(n))
		}
	}
}

// pending counts the outbox's rows per webhook.
func (d *Deliverer) pending(ctx context.Context) (map[string]int, error) {
	rows, err := d.cfg.Outbox.Deliveries(ctx, "", 0)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, r := range rows {
		counts[r.Webhook]++
	}
	return counts, nil
}

// reportOrphans says which outbox rows belong to no configured webhook:
// they stay until a webhook of that name is configured again.
func (d *Deliverer) reportOrphans(ctx context.Context) {
	counts, err := d.pending(ctx)
	if err != nil {
		return
	}
	for name, n := range counts {
		if _, ok := d.senders[name]; !ok {
			d.log.Warn().Str("webhook", name).Int("pending", n).Msg("alert notifications for a webhook that is no longer configured stay in the outbox")
		}
	}
}

// notificationOf is the Alertmanager view of a stored alert transition.
func notificationOf(a store.Alert, externalURL string) Notification {
	labels := maps.Clone(a.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	if labels["alertname"] == "" {
		labels["alertname"] = a.Rule // Alertmanager's one required label
	}
	return Notification{
		Status:       a.State,
		Labels:       labels,
		Annotations:  maps.Clone(a.Annotations),
		StartsAt:     a.StartsAt,
		EndsAt:       a.EndsAt,
		GeneratorURL: GeneratorURL(externalURL, a.Source),
		Fingerprint:  a.Fingerprint,
	}
}
