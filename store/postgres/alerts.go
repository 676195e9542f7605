package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evindex/evindex/store"
)

// alertKey is an alert's identity, the primary key of alerts.
type alertKey struct {
	source     string
	startsNs   int64
	rule, subj string
}

func keyOfAlert(a *store.Alert) alertKey {
	return alertKey{a.Source, timeKey(a.StartsAt), a.Rule, a.Subject}
}

// writeAlerts upserts the transaction's alert episodes and appends its
// outbox rows, whose ids follow the batches' order.
func (p *plan) writeAlerts(ctx context.Context, tx pgx.Tx) error {
	if n := len(p.alerts.items); n > 0 {
		src, rule, subj, state, fp := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		starts, ends := make([]int64, n), make([]*int64, n)
		labels, notes := make([]string, n), make([]string, n)
		for i := range p.alerts.items {
			a := &p.alerts.items[i]
			src[i], rule[i], subj[i], state[i], fp[i], starts[i] = a.Source, a.Rule, a.Subject, a.State, a.Fingerprint, timeKey(a.StartsAt)
			if !a.EndsAt.IsZero() {
				e := nanos(a.EndsAt)
				ends[i] = &e
			}
			var err error
			if labels[i], err = jsonText(a.Labels); err != nil {
				return fmt.Errorf("alerts: %w", err)
			}
			if notes[i], err = jsonText(a.Annotations); err != nil {
				return fmt.Errorf("alerts: %w", err)
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO alerts (source, starts_ns, rule, subject, state, ends_ns, fingerprint, labels, annotations, updated_ns)
			SELECT s, t, r, j, st, e, f, l::jsonb, a::jsonb, $10
			FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::text[]) u(s, t, r, j, st, e, f, l, a)
			ON CONFLICT (source, starts_ns, rule, subject) DO UPDATE SET state = excluded.state, ends_ns = excluded.ends_ns,
				fingerprint = excluded.fingerprint, labels = excluded.labels, annotations = excluded.annotations, updated_ns = excluded.updated_ns`,
			src, starts, rule, subj, state, ends, fp, labels, notes, nanos(p.now))
		if err != nil {
			return fmt.Errorf("alerts: %w", err)
		}
	}
	if n := len(p.deliveries); n > 0 {
		hook, alert, lastErr := make([]string, n), make([]string, n), make([]string, n)
		attempts, next := make([]int64, n), make([]int64, n)
		for i := range p.deliveries {
			d := &p.deliveries[i]
			d.Alert.UpdatedAt = p.now
			v, err := json.Marshal(d.Alert)
			if err != nil {
				return fmt.Errorf("deliveries: %w", err)
			}
			hook[i], alert[i], lastErr[i], attempts[i], next[i] = d.Webhook, string(v), d.LastError, int64(d.Attempts), nanos(d.NextAttempt)
		}
		_, err := tx.Exec(ctx, `INSERT INTO deliveries (webhook, alert, created_ns, attempts, next_attempt_ns, last_error)
			SELECT w, a::jsonb, $6, n, x, e
			FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[]) WITH ORDINALITY u(w, a, n, x, e, ord)
			ORDER BY ord`, hook, alert, attempts, next, lastErr, nanos(p.now))
		if err != nil {
			return fmt.Errorf("deliveries: %w", err)
		}
	}
	return nil
}

// jsonText is a label map as the JSON text of a jsonb column; none is {}.
func jsonText(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

const alertColumns = `source, starts_ns, rule, subject, state, ends_ns, fingerprint, labels, annotations, updated_ns`

func scanAlert(row pgx.CollectableRow) (store.Alert, error) {
	var a store.Alert
	var starts, updated int64
	var ends *int64
	var labels, notes []byte
	if err := row.Scan(&a.Source, &starts, &a.Rule, &a.Subject, &a.State, &ends, &a.Fingerprint, &labels, &notes, &updated); err != nil {
		return a, err
	}
	a.StartsAt, a.UpdatedAt = time.Unix(0, starts).UTC(), fromNanos(updated)
	if ends != nil {
		a.EndsAt = fromNanos(*ends)
	}
	if err := unmarshalLabels(labels, &a.Labels); err != nil {
		return a, err
	}
	return a, unmarshalLabels(notes, &a.Annotations)
}

// unmarshalLabels reads a jsonb label map; {} is none, as the batch had.
func unmarshalLabels(b []byte, m *map[string]string) error {
	if err := json.Unmarshal(b, m); err != nil {
		return fmt.Errorf("alert labels: %w", store.ErrCorrupt)
	}
	if len(*m) == 0 {
		*m = nil
	}
	return nil
}

// Alerts returns one page of alerts in (source, starts_at, rule,
// subject) order, or reversed with q.Desc. It returns
// store.ErrCursorInvalid for a cursor that is not from this list.
func (s *Store) Alerts(ctx context.Context, q store.AlertQuery) (store.Page[store.Alert], error) {
	after, err := decodeCursor(store.CursorAlerts, q.Cursor)
	if err != nil {
		return store.Page[store.Alert]{}, err
	}
	if !storable(q.Source, q.State, q.Rule) {
		return store.Page[store.Alert]{}, nil
	}
	limit := pageLimit(q.Limit)
	var a args
	var where []string
	keys := []string{"source", "starts_ns", "rule", "subject"}
	if after != nil {
		src, ns, rule, subj, ok := store.ParseAlertKey(after)
		if !ok {
			return store.Page[store.Alert]{}, store.ErrCursorInvalid
		}
		where = append(where, keyset(&a, keys, []any{src, ns, rule, subj}, q.Desc))
	}
	if q.Source != "" {
		where = append(where, "source = "+a.add(q.Source))
	}
	if q.State != "" {
		where = append(where, "state = "+a.add(q.State))
	}
	if q.Rule != "" {
		where = append(where, "rule = "+a.add(q.Rule))
	}
	rows, err := s.read.Query(ctx, `SELECT `+alertColumns+` FROM alerts WHERE `+and(where)+
		` ORDER BY `+orderBy(keys, q.Desc)+` LIMIT `+strconv.Itoa(limit+1), a...)
	if err != nil {
		return store.Page[store.Alert]{}, s.redact(fmt.Errorf("list alerts: %w", err))
	}
	items, err := pgx.CollectRows(rows, scanAlert)
	if err != nil {
		return store.Page[store.Alert]{}, s.redact(fmt.Errorf("list alerts: %w", err))
	}
	return pageOf(items, limit, store.CursorAlerts, store.AlertKey), nil
}

// LatestAlerts returns the newest episode of every (rule, subject) of
// source, in (rule, subject) order. It reads the primary: an evaluator
// writes on what it finds.
func (s *Store) LatestAlerts(ctx context.Context, source string) ([]store.Alert, error) {
	if !storable(source) {
		return nil, nil
	}
	rows, err := s.db.Query(ctx, `SELECT DISTINCT ON (rule, subject) `+alertColumns+` FROM alerts
		WHERE source = $1 ORDER BY rule, subject, starts_ns DESC`, source)
	if err != nil {
		return nil, s.redact(fmt.Errorf("latest alerts of %s: %w", source, err))
	}
	out, err := pgx.CollectRows(rows, scanAlert)
	if err != nil {
		return nil, s.redact(fmt.Errorf("latest alerts of %s: %w", source, err))
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

const deliveryColumns = `id, webhook, alert, created_ns, attempts, next_attempt_ns, last_error, claimed_by, claimed_until_ns`

func scanDelivery(row pgx.CollectableRow) (store.Delivery, error) {
	var d store.Delivery
	var id, created, attempts, next, until int64
	var alert []byte
	if err := row.Scan(&id, &d.Webhook, &alert, &created, &attempts, &next, &d.LastError, &d.ClaimedBy, &until); err != nil {
		return d, err
	}
	if err := json.Unmarshal(alert, &d.Alert); err != nil {
		return d, fmt.Errorf("delivery %d: %w", id, store.ErrCorrupt)
	}
	d.Alert.Normalize()
	d.ID, d.Created, d.Attempts, d.NextAttempt, d.ClaimedUntil = uint64(id), fromNanos(created), int(attempts), fromNanos(next), fromNanos(until)
	return d, nil
}

// Deliveries returns the outbox rows of webhook ("" every webhook) in
// ID order, at most limit (0: every row), with their claims.
func (s *Store) Deliveries(ctx context.Context, webhook string, limit int) ([]store.Delivery, error) {
	if !storable(webhook) {
		return nil, nil
	}
	sql := `SELECT ` + deliveryColumns + ` FROM deliveries WHERE ($1 = '' OR webhook = $1) ORDER BY id`
	if limit > 0 {
		sql += ` LIMIT ` + strconv.Itoa(limit)
	}
	rows, err := s.db.Query(ctx, sql, webhook)
	if err != nil {
		return nil, s.redact(fmt.Errorf("deliveries: %w", err))
	}
	out, err := pgx.CollectRows(rows, scanDelivery)
	if err != nil {
		return nil, s.redact(fmt.Errorf("deliveries: %w", err))
	}
	return out, nil
}

// ClaimDeliveries returns the due, unclaimed outbox rows and claims them
// for c.Owner until c.Now+c.Hold. Rows another transaction is claiming
// at the same moment are skipped (SKIP LOCKED), so two senders never get
// one row while its claim holds.
func (s *Store) ClaimDeliveries(ctx context.Context, c store.DeliveryClaim) ([]store.Delivery, error) {
	if c.Owner == "" {
		return nil, fmt.Errorf("claim deliveries: owner: %w: empty", store.ErrInvalid)
	}
	if !storable(c.Owner, c.Webhook) {
		return nil, nil
	}
	limit := c.Limit
	if limit <= 0 {
		limit = store.DefaultLimit
	}
	now := nanos(c.Now)
	rows, err := s.db.Query(ctx, `UPDATE deliveries d SET claimed_by = $1, claimed_until_ns = $2
		FROM (SELECT id FROM deliveries WHERE ($3 = '' OR webhook = $3) AND next_attempt_ns <= $4 AND claimed_until_ns <= $4
			ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED) due
		WHERE d.id = due.id
		RETURNING d.id, d.webhook, d.alert, d.created_ns, d.attempts, d.next_attempt_ns, d.last_error, d.claimed_by, d.claimed_until_ns`,
		c.Owner, nanos(c.Now.Add(c.Hold)), c.Webhook, now, limit)
	if err != nil {
		return nil, s.redact(fmt.Errorf("claim deliveries: %w", err))
	}
	out, err := pgx.CollectRows(rows, scanDelivery)
	if err != nil {
		return nil, s.redact(fmt.Errorf("claim deliveries: %w", err))
	}
	slices.SortFunc(out, func(a, b store.Delivery) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// FinishDelivery records the outcome of a row r.Owner claimed: delivered
// rows are removed, failed ones due again at r.NextAttempt. It returns
// store.ErrClaimLost when the row is gone or claimed by another.
func (s *Store) FinishDelivery(ctx context.Context, r store.DeliveryResult) error {
	if r.ID > maxHeight || !storable(r.Owner, r.Error) {
		return fmt.Errorf("finish delivery %d: %w", r.ID, store.ErrClaimLost)
	}
	var sql string
	args := []any{int64(r.ID), r.Owner}
	if r.Delivered {
		sql = `DELETE FROM deliveries WHERE id = $1 AND claimed_by = $2`
	} else {
		sql = `UPDATE deliveries SET attempts = attempts + 1, last_error = $3, next_attempt_ns = $4, claimed_by = '', claimed_until_ns = 0
			WHERE id = $1 AND claimed_by = $2`
		args = append(args, r.Error, nanos(r.NextAttempt))
	}
	tag, err := s.db.Exec(ctx, sql, args...)
	if err != nil {
		return s.redact(fmt.Errorf("finish delivery %d: %w", r.ID, err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("finish delivery %d: %w", r.ID, store.ErrClaimLost)
	}
	return nil
}
