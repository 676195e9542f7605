package alerts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/evindex/evindex/store"
)

// Message is the body of one webhook POST: Alertmanager's webhook format,
// version 4, so receivers written for Alertmanager (chat bots, pagers)
// take it unchanged. The fields and their JSON names and order are those
// Alertmanager's webhook notifier encodes (notify/webhook's Message, which
// embeds template.Data, then version, groupKey and truncatedAlerts).
type Message struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	Alerts            []Notification    `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   uint64            `json:"truncatedAlerts"`
}

// Notification is one alert of a Message (Alertmanager's template.Alert).
// Times are RFC 3339 in UTC as Go encodes them; EndsAt of a firing alert
// is the zero time, "0001-01-01T00:00:00Z", as Alertmanager sends it for
// an alert without a known end.
type Notification struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	// Fingerprint is the same for every notification of one alert's
	// identity, firing and resolved: with Status and StartsAt it is what a
	// receiver deduplicates by, since delivery is at least once.
	Fingerprint string `json:"fingerprint"`
}

// NewMessage is the Message that tells receiver about one alert's
// transition. Each outbox row is one alert, so the group is the alert
// itself: its labels are the group's, as in an Alertmanager route with
// group_by: ['...'], and groupKey is spelled as Alertmanager spells it for
// the root route ({}:{label="value", ...}).
func NewMessage(receiver, externalURL string, n Notification) Message {
	n.Labels = nonNil(n.Labels)
	n.Annotations = nonNil(n.Annotations)
	n.StartsAt = n.StartsAt.UTC()
	if n.Status == store.AlertFiring {
		n.EndsAt = time.Time{}
	} else {
		n.EndsAt = n.EndsAt.UTC()
	}
	return Message{
		Receiver:          receiver,
		Status:            n.Status,
		Alerts:            []Notification{n},
		GroupLabels:       maps.Clone(n.Labels),
		CommonLabels:      maps.Clone(n.Labels),
		CommonAnnotations: maps.Clone(n.Annotations),
		ExternalURL:       externalURL,
		Version:           "4",
		GroupKey:          "{}:" + labelSetString(n.Labels),
		TruncatedAlerts:   0,
	}
}

// labelSetString spells labels as Prometheus's model.LabelSet does:
// sorted by name, name="value" with Go quoting, comma and space between.
func labelSetString(labels map[string]string) string {
	parts := make([]string, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, labels[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// Encode is the request body of m, encoded as Alertmanager encodes its own
// (encoding/json's Encoder: HTML characters escaped, a final newline).
func (m Message) Encode() ([]byte, error) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(m); err != nil {
		return nil, fmt.Errorf("encode webhook message: %w", err)
	}
	return buf.Bytes(), nil
}

// GeneratorURL is the link a notification carries to its source's alert
// history on this evindex, or "" without an external URL.
func GeneratorURL(externalURL, source string) string {
	if externalURL == "" {
		return ""
	}
	return strings.TrimRight(externalURL, "/") + "/v1/alerts?source=" + url.QueryEscape(source)
}
