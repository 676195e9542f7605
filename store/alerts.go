package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"time"
)

// The states of an Alert.
const (
	// AlertFiring: the rule's condition holds (since StartsAt).
	AlertFiring = "firing"
	// AlertResolved: it held from StartsAt until EndsAt.
	AlertResolved = "resolved"
)

// Alert is one episode of a rule's condition holding for a subject of a
// source: it fires at StartsAt and resolves at EndsAt. Its identity is
// (Source, Rule, Subject, StartsAt): resolving rewrites the episode, a
// new episode of the same (Source, Rule, Subject) is a new record with
// the same Fingerprint. Alerts are written by Apply in the same
// transaction as the data that changed them, so a restart neither loses
// nor repeats a transition.
type Alert struct {
	Source string `json:"source"`
	Rule   string `json:"rule"` // the rule's name, e.g. "node_down"
	// Subject is what within the source the rule is about (a node, an
	// account); "" for the source itself.
	Subject  string    `json:"subject,omitempty"`
	StartsAt time.Time `json:"starts_at"`
	State    string    `json:"state"`            // AlertFiring or AlertResolved
	EndsAt   time.Time `json:"ends_at,omitzero"` // zero while firing
	// Fingerprint is AlertFingerprint(Source, Rule, Subject); ValidateBatch
	// sets it, so every backend and every episode agree.
	Fingerprint string `json:"fingerprint"`
	// Labels identify the alert to a receiver (Alertmanager's labels):
	// they stay the same for a (Source, Rule, Subject). Annotations
	// describe the episode (a summary, the node's last status).
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// UpdatedAt is when the episode was last written; Apply sets it.
	UpdatedAt time.Time `json:"updated_at"`
}

// Normalize puts an alert's times in UTC, as every backend returns them
// (the JSON the backends keep alerts as carries the zone).
func (a *Alert) Normalize() {
	a.StartsAt, a.UpdatedAt = a.StartsAt.UTC(), a.UpdatedAt.UTC()
	if !a.EndsAt.IsZero() {
		a.EndsAt = a.EndsAt.UTC()
	}
}

// AlertFingerprint is the stable identity of (source, rule, subject):
// 16 hex digits of a 64-bit FNV-1a hash, the form Alertmanager gives its
// fingerprints, the same for every episode, on every backend and
// process, so a receiver can deduplicate deliveries by it (and StartsAt).
func AlertFingerprint(source, rule, subject string) string {
	h := fnv.New64a()
	for _, s := range []string{source, rule, subject} {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s))))
		h.Write([]byte(s))
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// Delivery is one row of the webhook outbox: an alert transition (the
// alert as it was written) to be sent to one webhook. Apply writes it in
// the same transaction as the transition, so a transition is never lost
// between the store and the sender; the sender claims due rows
// (ClaimDeliveries), sends them, and records the outcome
// (FinishDelivery): a delivered row is removed, a failed one is due again
// at NextAttempt. Delivery is at least once.
type Delivery struct {
	// ID is assigned by Apply, ascending in commit order; the ID in a
	// batch is ignored.
	ID      uint64
	Webhook string // the configured webhook's name
	Alert   Alert  // the alert as the transition left it
	Created time.Time
	// Attempts counts failed attempts; LastError is the last one's
	// error, NextAttempt when the row is due again (zero: at once).
	Attempts    int
	NextAttempt time.Time
	LastError   string
	// ClaimedBy holds a claim until ClaimedUntil (see ClaimDeliveries);
	// "" when unclaimed.
	ClaimedBy    string
	ClaimedUntil time.Time
}

// AlertQuery selects alerts: of Source (every source when empty), in
// State (either when empty), of Rule (every rule when empty), in
// (source, starts_at, rule, subject) order or reversed with Desc.
type AlertQuery struct {
	Source string
	State  string
	Rule   string
	Desc   bool
	Limit  int
	Cursor string
}

// DeliveryClaim asks for due outbox rows: NextAttempt at or before Now,
// not claimed by anyone until after Now, of Webhook ("" every webhook),
// at most Limit (0 means DefaultLimit), in ID order. The rows returned
// are claimed by Owner until Now+Hold.
type DeliveryClaim struct {
	Owner   string
	Webhook string
	Now     time.Time
	Hold    time.Duration
	Limit   int
}

// DeliveryResult is the outcome of sending one claimed row: Delivered
// removes it; otherwise Attempts grows by one, Error becomes its
// LastError, it is due again at NextAttempt, and the claim is released.
type DeliveryResult struct {
	ID          uint64
	Owner       string // who claimed it
	Delivered   bool
	Error       string
	NextAttempt time.Time
}

// AlertStore is the part of the contract that keeps alerts and the
// webhook outbox (Batch.Alerts, Batch.Deliveries).
type AlertStore interface {
	// Alerts returns one page of alerts. It returns ErrCursorInvalid for
	// a cursor of another list.
	Alerts(ctx context.Context, q AlertQuery) (Page[Alert], error)
	// LatestAlerts returns the newest episode of every (rule, subject) of
	// source, firing or resolved, in (rule, subject) order: what a rule's
	// evaluator starts from.
	LatestAlerts(ctx context.Context, source string) ([]Alert, error)
	// Deliveries returns the outbox rows of webhook ("" every webhook)
	// in ID order, claimed or not, at most limit (0: every row).
	Deliveries(ctx context.Context, webhook string, limit int) ([]Delivery, error)
	// ClaimDeliveries returns due rows and claims them (see
	// DeliveryClaim), so that several senders sharing a store never send
	// one row at once while its claim holds. A store with one writer
	// keeps claims in memory: they end with the process.
	ClaimDeliveries(ctx context.Context, c DeliveryClaim) ([]Delivery, error)
	// FinishDelivery records the outcome of a claimed row. It returns
	// ErrClaimLost when the row is gone or no longer claimed by r.Owner
	// (its claim ran out and another sender took it): nothing changes.
	FinishDelivery(ctx context.Context, r DeliveryResult) error
}

// Limits of an alert's maps.
const (
	// MaxAlertLabels bounds the labels and the annotations of an alert.
	MaxAlertLabels = 64
	// MaxAnnotationLen bounds an annotation's value, in bytes.
	MaxAnnotationLen = 4096
)

// CheckAlert reports the first field of an alert no backend may store,
// after setting its Fingerprint; ValidateBatch calls it.
func CheckAlert(a *Alert) *FieldError {
	if err := checkText("rule", a.Rule, false); err != nil {
		return err
	}
	if err := checkText("subject", a.Subject, true); err != nil {
		return err
	}
	if a.StartsAt.IsZero() {
		return fieldErr("starts_at", nil, "required")
	}
	if err := checkTime("starts_at", a.StartsAt); err != nil {
		return err
	}
	if err := checkTime("ends_at", a.EndsAt); err != nil {
		return err
	}
	switch a.State {
	case AlertFiring:
		if !a.EndsAt.IsZero() {
			return fieldErr("ends_at", []byte(a.EndsAt.UTC().Format(time.RFC3339Nano)), "set on a firing alert")
		}
	case AlertResolved:
		if a.EndsAt.IsZero() || a.EndsAt.Before(a.StartsAt) {
			return fieldErr("ends_at", []byte(a.EndsAt.UTC().Format(time.RFC3339Nano)), "a resolved alert ends at or after it starts")
		}
	default:
		return fieldErr("state", []byte(a.State), "want %s or %s", AlertFiring, AlertResolved)
	}
	for _, m := range []struct {
		field string
		kv    map[string]string
		max   int
	}{{"labels", a.Labels, MaxTextLen}, {"annotations", a.Annotations, MaxAnnotationLen}} {
		if len(m.kv) > MaxAlertLabels {
			return fieldErr(m.field, nil, "%d entries, more than %d", len(m.kv), MaxAlertLabels)
		}
		for _, k := range slices.Sorted(maps.Keys(m.kv)) {
			if err := checkText(m.field+"."+k, k, false); err != nil {
				return err
			}
			if err := checkText(m.field+"."+k, truncate(m.kv[k], MaxTextLen), true); err != nil {
				return err
			}
			if len(m.kv[k]) > m.max {
				return fieldErr(m.field+"."+k, []byte(m.kv[k]), "%d bytes, longer than %d", len(m.kv[k]), m.max)
			}
		}
	}
	a.Fingerprint = AlertFingerprint(a.Source, a.Rule, a.Subject)
	a.Normalize()
	return nil
}

// truncate cuts s to n bytes, so a long annotation is checked for NUL
// and UTF-8 by checkText without tripping its length bound.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// validateAlerts checks a batch's alerts and deliveries: both belong to
// the batch's source, whose lease fences them like its records.
func validateAlerts(b *Batch) error {
	for i := range b.Alerts {
		a := &b.Alerts[i]
		if a.Source == "" {
			a.Source = b.Source
		}
		if a.Source != b.Source {
			return fmt.Errorf("%w: alerts[%d]: source %q in a batch of %q", ErrInvalid, i, a.Source, b.Source)
		}
		if err := CheckAlert(a); err != nil {
			return fmt.Errorf("alerts[%d].%w", i, err)
		}
	}
	for i := range b.Deliveries {
		d := &b.Deliveries[i]
		if d.Alert.Source == "" {
			d.Alert.Source = b.Source
		}
		if d.Alert.Source != b.Source {
			return fmt.Errorf("%w: deliveries[%d]: alert of source %q in a batch of %q", ErrInvalid, i, d.Alert.Source, b.Source)
		}
		if err := checkText("webhook", d.Webhook, false); err != nil {
			return fmt.Errorf("deliveries[%d].%w", i, err)
		}
		if err := CheckAlert(&d.Alert); err != nil {
			return fmt.Errorf("deliveries[%d].alert.%w", i, err)
		}
		if err := checkTime("next_attempt", d.NextAttempt); err != nil {
			return fmt.Errorf("deliveries[%d].%w", i, err)
		}
	}
	return nil
}

// AlertKey is the key an alerts cursor names: source 0 starts_at(8) rule
// 0 subject, the bbolt layout every backend's cursors use.
func AlertKey(a *Alert) []byte {
	k := append([]byte(a.Source), 0)
	k = binary.BigEndian.AppendUint64(k, uint64(max(a.StartsAt.UnixNano(), 0)))
	k = append(append(k, a.Rule...), 0)
	return append(k, a.Subject...)
}

// ParseAlertKey splits an alerts cursor's key.
func ParseAlertKey(k []byte) (source string, startsNs int64, rule, subject string, ok bool) {
	i := bytes.IndexByte(k, 0)
	if i < 0 || len(k) < i+1+8 {
		return "", 0, "", "", false
	}
	source = string(k[:i])
	ns := binary.BigEndian.Uint64(k[i+1:])
	rest := k[i+9:]
	j := bytes.IndexByte(rest, 0)
	if j < 0 || ns > 1<<63-1 {
		return "", 0, "", "", false
	}
	return source, int64(ns), string(rest[:j]), string(rest[j+1:]), true
}

// CursorAlerts is the kind letter of the alerts list's cursors.
const CursorAlerts = 'a'
