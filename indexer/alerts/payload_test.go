package alerts

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
)

// TestMessageIsAlertmanagerV4 compares the bodies of a firing and a
// resolved notification with golden files written in the shape
// Alertmanager's webhook notifier sends (version 4): the same keys in the
// same order, RFC 3339 times, the zero endsAt of a firing alert, empty
// maps as {} rather than null, and the groupKey spelled as Alertmanager's.
func TestMessageIsAlertmanagerV4(t *testing.T) {
	labels := map[string]string{"alertname": "node_down", "source": "pre-main", "node": "node-1", "severity": "critical"}
	starts := time.Date(2026, 12, 1, 11, 0, 0, 123_000_000, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		golden string
		msg    Message
	}{
		{"alertmanager_v4_firing.json", NewMessage("pager", "https://evindex.example.org", Notification{
			Status: store.AlertFiring, Labels: labels, StartsAt: starts,
			Annotations:  map[string]string{"summary": "node node-1 of pre-main is not connected > 5m"},
			EndsAt:       starts.Add(time.Hour), // a firing alert has no end yet, whatever it carries
			GeneratorURL: GeneratorURL("https://evindex.example.org/", "pre-main"),
			Fingerprint:  "0f1e2d3c4b5a6978",
		})},
		{"alertmanager_v4_resolved.json", NewMessage("pager", "", Notification{
			Status: store.AlertResolved, Labels: labels, StartsAt: starts,
			EndsAt:      time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC),
			Fingerprint: "0f1e2d3c4b5a6978",
		})},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			got, err := tc.msg.Encode()
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", tc.golden))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("body differs from the Alertmanager v4 golden file\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

// TestMessageDecodesAsAlertmanagerReceiversRead decodes a body into the
// types receivers written for Alertmanager use (its template.Data and
// webhook.Message fields, spelled out here), strictly: no key missing,
// none unknown.
func TestMessageDecodesAsAlertmanagerReceiversRead(t *testing.T) {
	type amAlert struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
	}
	type amMessage struct {
		Receiver          string            `json:"receiver"`
		Status            string            `json:"status"`
		Alerts            []amAlert         `json:"alerts"`
		GroupLabels       map[string]string `json:"groupLabels"`
		CommonLabels      map[string]string `json:"commonLabels"`
		CommonAnnotations map[string]string `json:"commonAnnotations"`
		ExternalURL       string            `json:"externalURL"`
		Version           string            `json:"version"`
		GroupKey          string            `json:"groupKey"`
		TruncatedAlerts   uint64            `json:"truncatedAlerts"`
	}
	starts := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	body, err := NewMessage("chat", "", Notification{Status: store.AlertFiring, StartsAt: starts, Fingerprint: "00000000000000aa"}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(body, &keys); err != nil {
		t.Fatal(err)
	}
	if n := reflect.TypeFor[amMessage]().NumField(); len(keys) != n {
		t.Errorf("%d top-level keys, Alertmanager sends %d: %s", len(keys), n, body)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var m amMessage
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	a := m.Alerts[0]
	if m.Version != "4" || m.Status != "firing" || a.Status != "firing" || !a.StartsAt.Equal(starts) || !a.EndsAt.IsZero() ||
		a.Labels == nil || a.Annotations == nil || m.GroupKey != "{}:{}" {
		t.Errorf("decoded %+v", m)
	}
}
