package httpapi

import (
	"context"
	"encoding/json"
	"io"

	"github.com/evindex/evindex/store"
)

// listAlerts writes the stored alert episodes, for GET /v1/alerts (see
// the README's "Missed rewards and alerts"): each firing, and its
// resolution, as the rules found them on the stored data, in (source,
// starts_at, rule, subject) order with the list conventions of every
// other list.
func (s lists) listAlerts(ctx context.Context, p *params, w io.Writer) error {
	q := store.AlertQuery{Source: p.str("source"), State: p.str("state"), Rule: p.str("rule"), Desc: p.desc()}
	if q.State != "" && q.State != store.AlertFiring && q.State != store.AlertResolved {
		states := []string{store.AlertFiring, store.AlertResolved}
		p.fail(invalidParam("state", "%q is not one of firing, resolved%s", q.State, suggest(q.State, states)))
	}
	lr := p.listRequest()
	if err := p.check(); err != nil {
		return err
	}
	if err := s.sourceExists(ctx, q.Source); err != nil {
		return err
	}
	return writeList(ctx, w, listing[store.Alert]{
		name:  ListAlerts,
		query: q,
		fetch: func(ctx context.Context, cursor string, limit int) (store.Page[store.Alert], error) {
			q.Cursor, q.Limit = cursor, limit
			return s.st.Alerts(ctx, q)
		},
		item:    alertItem,
		header:  alertHeader,
		row:     alertRow,
		parquet: alertParquet,
	}, lr)
}

// alertJSON is one alert episode; ends_at is null while it fires.
type alertJSON struct {
	Source      string            `json:"source"`
	Rule        string            `json:"rule"`
	Subject     string            `json:"subject"`
	State       string            `json:"state"`
	StartsAt    *apiTime          `json:"starts_at"`
	EndsAt      *apiTime          `json:"ends_at"`
	Fingerprint string            `json:"fingerprint"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	UpdatedAt   *apiTime          `json:"updated_at"`
}

func nonEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func alertItem(a *store.Alert) any {
	return alertJSON{a.Source, a.Rule, a.Subject, a.State, jsonTime(a.StartsAt), jsonTime(a.EndsAt), a.Fingerprint,
		nonEmpty(a.Labels), nonEmpty(a.Annotations), jsonTime(a.UpdatedAt)}
}

// labelText is a label map as one cell: its JSON object.
func labelText(m map[string]string) string {
	b, _ := json.Marshal(nonEmpty(m)) // a map of strings always encodes
	return string(b)
}

var alertHeader = []string{"source", "rule", "subject", "state", "starts_at", "ends_at", "fingerprint", "labels", "annotations", "updated_at"}

func alertRow(a *store.Alert) []string {
	return []string{a.Source, a.Rule, a.Subject, a.State, csvTime(a.StartsAt), csvTime(a.EndsAt), a.Fingerprint,
		labelText(a.Labels), labelText(a.Annotations), csvTime(a.UpdatedAt)}
}

type alertPq struct {
	Source      string `parquet:"source,dict"`
	Rule        string `parquet:"rule,dict"`
	Subject     string `parquet:"subject,dict"`
	State       string `parquet:"state,dict"`
	StartsAt    int64  `parquet:"starts_at,timestamp(microsecond)"`
	EndsAt      int64  `parquet:"ends_at,optional,timestamp(microsecond)"`
	Fingerprint string `parquet:"fingerprint,dict"`
	Labels      string `parquet:"labels,json"`
	Annotations string `parquet:"annotations,json"`
	UpdatedAt   int64  `parquet:"updated_at,timestamp(microsecond)"`
}

func alertParquet(w io.Writer) rowWriter[store.Alert] {
	return newParquetWriter(w, func(a *store.Alert) alertPq {
		return alertPq{a.Source, a.Rule, a.Subject, a.State, micros(a.StartsAt), micros(a.EndsAt), a.Fingerprint,
			labelText(a.Labels), labelText(a.Annotations), micros(a.UpdatedAt)}
	})
}
