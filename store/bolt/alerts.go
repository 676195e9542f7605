package bolt

import (
	"github.com/evindex/evindex/store"

	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	migrations "github.com/evindex/evindex/migrations/bolt"
)

// deliveryValue is the stored form of an outbox row; its ID is the key.
// Claims are not stored (outboxClaims). An alert is stored as its JSON.
type deliveryValue struct {
	Webhook     string      `json:"webhook"`
	Alert       store.Alert `json:"alert"`
	Created     time.Time   `json:"created"`
	Attempts    int         `json:"attempts,omitempty"`
	NextAttempt time.Time   `json:"next_attempt,omitzero"`
	LastError   string      `json:"last_error,omitempty"`
}

// latestAlertKey is source 0 rule 0 subject.
func latestAlertKey(source, rule, subject string) []byte {
	return append(appendText(appendText(nil, source), rule), subject...)
}

// putAlerts writes a batch's alert episodes, keeps each (rule, subject)'s
// newest one, and appends its outbox rows.
func (w *writer) putAlerts(b *store.Batch) error {
	now := w.s.now().UTC()
	ab, lb := w.tx.Bucket(migrations.BucketAlerts), w.tx.Bucket(migrations.BucketAlertsLatest)
	for i := range b.Alerts {
		a := &b.Alerts[i]
		a.UpdatedAt = now
		v, err := json.Marshal(a)
		if err != nil {
			return err
		}
		if err := w.put(ab, store.AlertKey(a), v); err != nil {
			return fmt.Errorf("alert %s/%s: %w", a.Rule, a.Subject, err)
		}
		lk := latestAlertKey(a.Source, a.Rule, a.Subject)
		starts := appendU64(nil, timeKey(a.StartsAt))
		if old := lb.Get(lk); old == nil || bytes.Compare(old, starts) <= 0 {
			if err := w.put(lb, lk, starts); err != nil {
				return fmt.Errorf("alert %s/%s: %w", a.Rule, a.Subject, err)
			}
		}
	}
	db := w.tx.Bucket(migrations.BucketDeliveries)
	for i := range b.Deliveries {
		d := &b.Deliveries[i]
		d.Alert.UpdatedAt = now
		v, err := json.Marshal(deliveryValue{Webhook: d.Webhook, Created: now, Attempts: d.Attempts,
			NextAttempt: d.NextAttempt.UTC(), LastError: d.LastError, Alert: d.Alert})
		if err != nil {
			return err
		}
		// The bucket's sequence numbers the rows: it only grows, so an
		// id is never reused after its row is delivered. (It is bucket
		// metadata, outside the write log of Options.RecordWrites.)
		id, err := db.NextSequence()
		if err != nil {
			return err
		}
		if err := w.put(db, appendU64(nil, id), v); err != nil {
			return fmt.Errorf("delivery to %s: %w", d.Webhook, err)
		}
	}
	return nil
}

func decodeAlert(k, v []byte) (store.Alert, error) {
	var a store.Alert
	if _, _, _, _, ok := store.ParseAlertKey(k); !ok || json.Unmarshal(v, &a) != nil {
		return store.Alert{}, fmt.Errorf("alert %q: %w", k, store.ErrCorrupt)
	}
	a.Normalize()
	return a, nil
}

// Alerts returns one page of alerts in (source, starts_at, rule,
// subject) order, or reversed with q.Desc. It returns ErrCursorInvalid
// for a cursor that is not from this list.
func (s *Store) Alerts(ctx context.Context, q store.AlertQuery) (store.Page[store.Alert], error) {
	after, err := store.DecodeCursor(store.CursorAlerts, q.Cursor)
	if err != nil {
		return store.Page[store.Alert]{}, err
	}
	if after != nil {
		if _, _, _, _, ok := store.ParseAlertKey(after); !ok {
			return store.Page[store.Alert]{}, store.ErrCursorInvalid
		}
	}
	var out store.Page[store.Alert]
	err = s.view(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		it := &keyIter{c: tx.Bucket(migrations.BucketAlerts).Cursor(), desc: q.Desc, primary: true}
		if q.Source != "" {
			it.lo, it.hi = appendText(nil, q.Source), appendText(nil, q.Source)
		}
		out, err = page([]*keyIter{it}, q.Desc, store.CursorAlerts, q.Limit, after, func(pk, val []byte) (store.Alert, bool, error) {
			a, err := decodeAlert(pk, val)
			if err != nil {
				return a, false, err
			}
			ok := (q.Source == "" || a.Source == q.Source) && (q.State == "" || a.State == q.State) && (q.Rule == "" || a.Rule == q.Rule)
			return a, ok, nil
		})
		return err
	})
	if err != nil {
		return store.Page[store.Alert]{}, fmt.Errorf("list alerts: %w", err)
	}
	return out, nil
}

// LatestAlerts returns the newest episode of every (rule, subject) of
// source, in (rule, subject) order.
func (s *Store) LatestAlerts(ctx context.Context, source string) ([]store.Alert, error) {
	var out []store.Alert
	err := s.view(func(tx *bbolt.Tx) error {
		prefix := appendText(nil, source)
		ab := tx.Bucket(migrations.BucketAlerts)
		c := tx.Bucket(migrations.BucketAlertsLatest).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			rest := k[len(prefix):]
			i := bytes.IndexByte(rest, sep)
			if i < 0 || len(v) != 8 {
				return fmt.Errorf("latest alert %q: %w", k, store.ErrCorrupt)
			}
			a := store.Alert{Source: source, Rule: string(rest[:i]), Subject: string(rest[i+1:]),
				StartsAt: time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()}
			ak := store.AlertKey(&a)
			av := ab.Get(ak)
			if av == nil {
				return fmt.Errorf("latest alert %q: no episode: %w", k, store.ErrCorrupt)
			}
			got, err := decodeAlert(ak, av)
			if err != nil {
				return err
			}
			out = append(out, got)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("latest alerts of %s: %w", source, err)
	}
	return out, nil
}

// outboxClaims are the rows senders of this process hold.
type outboxClaims struct {
	mu sync.Mutex
	by map[uint64]claim
}

type claim struct {
	owner string
	until time.Time
}

func decodeDelivery(k, v []byte) (store.Delivery, error) {
	var dv deliveryValue
	if len(k) != 8 || json.Unmarshal(v, &dv) != nil {
		return store.Delivery{}, fmt.Errorf("delivery %x: %w", k, store.ErrCorrupt)
	}
	dv.Alert.Normalize()
	return store.Delivery{ID: binary.BigEndian.Uint64(k), Webhook: dv.Webhook, Created: dv.Created.UTC(),
		Attempts: dv.Attempts, NextAttempt: utcOrZero(dv.NextAttempt), LastError: dv.LastError, Alert: dv.Alert}, nil
}

// walkDeliveries calls fn with the outbox rows of webhook in ID order
// until it returns false.
func walkDeliveries(tx *bbolt.Tx, webhook string, fn func(d store.Delivery) bool) error {
	c := tx.Bucket(migrations.BucketDeliveries).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		d, err := decodeDelivery(k, v)
		if err != nil {
			return err
		}
		if webhook != "" && d.Webhook != webhook {
			continue
		}
		if !fn(d) {
			break
		}
	}
	return nil
}

// Deliveries returns the outbox rows of webhook ("" every webhook) in
// ID order, at most limit (0: every row), with their claims.
func (s *Store) Deliveries(ctx context.Context, webhook string, limit int) ([]store.Delivery, error) {
	var out []store.Delivery
	s.claims.mu.Lock()
	defer s.claims.mu.Unlock()
	err := s.view(func(tx *bbolt.Tx) error {
		return walkDeliveries(tx, webhook, func(d store.Delivery) bool {
			if c, ok := s.claims.by[d.ID]; ok {
				d.ClaimedBy, d.ClaimedUntil = c.owner, c.until
			}
			out = append(out, d)
			return limit <= 0 || len(out) < limit
		})
	})
	if err != nil {
		return nil, fmt.Errorf("deliveries: %w", err)
	}
	return out, nil
}

// ClaimDeliveries returns the due, unclaimed outbox rows and claims them
// for c.Owner until c.Now+c.Hold.
func (s *Store) ClaimDeliveries(ctx context.Context, c store.DeliveryClaim) ([]store.Delivery, error) {
	if err := checkOwner(c.Owner); err != nil {
		return nil, err
	}
	limit := cmp.Or(c.Limit, store.DefaultLimit)
	until := c.Now.Add(c.Hold).UTC()
	var out []store.Delivery
	s.claims.mu.Lock()
	defer s.claims.mu.Unlock()
	err := s.view(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return walkDeliveries(tx, c.Webhook, func(d store.Delivery) bool {
			if d.NextAttempt.After(c.Now) {
				return true
			}
			if held, ok := s.claims.by[d.ID]; ok && held.until.After(c.Now) {
				return true
			}
			d.ClaimedBy, d.ClaimedUntil = c.Owner, until
			out = append(out, d)
			return len(out) < limit
		})
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	if s.claims.by == nil {
		s.claims.by = map[uint64]claim{}
	}
	for _, d := range out {
		s.claims.by[d.ID] = claim{owner: c.Owner, until: until}
	}
	return out, nil
}

// FinishDelivery records the outcome of a row r.Owner claimed: delivered
// rows are removed, failed ones due again at r.NextAttempt. It returns
// ErrClaimLost when the row is gone or claimed by another.
func (s *Store) FinishDelivery(ctx context.Context, r store.DeliveryResult) error {
	s.claims.mu.Lock()
	defer s.claims.mu.Unlock()
	if held, ok := s.claims.by[r.ID]; !ok || held.owner != r.Owner {
		return fmt.Errorf("finish delivery %d: %w", r.ID, store.ErrClaimLost)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("finish delivery %d: %w", r.ID, err)
	}
	err := guard("write "+s.path, func() error {
		return s.db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket(migrations.BucketDeliveries)
			k := appendU64(nil, r.ID)
			v := b.Get(k)
			if v == nil {
				return store.ErrClaimLost
			}
			if r.Delivered {
				return b.Delete(k)
			}
			var dv deliveryValue
			if json.Unmarshal(v, &dv) != nil {
				return fmt.Errorf("delivery %d: %w", r.ID, store.ErrCorrupt)
			}
			dv.Attempts++
			dv.LastError = r.Error
			dv.NextAttempt = r.NextAttempt.UTC()
			nv, err := json.Marshal(dv)
			if err != nil {
				return err
			}
			return b.Put(k, nv)
		})
	})
	if err != nil {
		return fmt.Errorf("finish delivery %d: %w", r.ID, err)
	}
	delete(s.claims.by, r.ID)
	return nil
}

func utcOrZero(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// checkOwner refuses a claim without an owner: an unclaimed row's owner
// is "", so its outcome could be recorded without a claim.
func checkOwner(owner string) error {
	if owner == "" {
		return fmt.Errorf("claim deliveries: owner: %w: empty", store.ErrInvalid)
	}
	return nil
}
