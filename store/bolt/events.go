package bolt

import (
	"github.com/evindex/evindex/store"

	"bytes"
	"context"
	"fmt"
	"slices"

	bbolt "go.etcd.io/bbolt"

	migrations "github.com/evindex/evindex/migrations/bolt"
)

const cursorEvents = 'e'

// heightBounds turns a source and an inclusive height range into primary
// key bounds for keys shaped source 0 height(8) ...
func heightBounds(source string, from, to *uint64) (lo, hi []byte) {
	if source == "" {
		return nil, nil
	}
	p := appendText(nil, source)
	lo, hi = p, p
	if from != nil {
		lo = appendU64(appendText(nil, source), *from)
	}
	if to != nil {
		hi = appendU64(appendText(nil, source), *to)
	}
	return lo, hi
}

// Events returns one page of events matching q, in identity order
// (source, height, tx index, event index), or reversed with q.Desc. It
// returns ErrCursorInvalid for a cursor that is not from this list.
func (s *Store) Events(ctx context.Context, q store.EventQuery) (store.Page[store.Event], error) {
	after, err := store.DecodeCursor(cursorEvents, q.Cursor)
	if err != nil {
		return store.Page[store.Event]{}, err
	}
	var out store.Page[store.Event]
	err = s.view(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Height bounds seek within a source's keys; without a source,
		// every source's range is read (the sources are few).
		sources := []string{q.Source}
		if q.Source == "" && (q.FromHeight != nil || q.ToHeight != nil) {
			sources = sourceNames(tx)
		}
		index := func(bucket []byte, values ...string) []*keyIter {
			its := make([]*keyIter, 0, len(values)*len(sources))
			for _, v := range values {
				for _, src := range sources {
					lo, hi := heightBounds(src, q.FromHeight, q.ToHeight)
					its = append(its, &keyIter{c: tx.Bucket(bucket).Cursor(), prefix: appendText(nil, v), lo: lo, hi: hi, desc: q.Desc})
				}
			}
			return its
		}
		var its []*keyIter
		switch {
		case q.TxID != "":
			its = append(index(migrations.BucketEventsByTx, q.TxID), txGroupIters(tx, &q)...)
		case q.Address != "":
			its = index(migrations.BucketEventsByAddr, q.Address)
		case len(q.Types) > 0:
			its = index(migrations.BucketEventsByType, q.Types...)
		case q.Contract != "":
			// Events whose contract is their type's prefix are found
			// through by_type, under each type of the contract; the
			// others (and every event of an earlier file) in by_contract.
			its = index(migrations.BucketEventsByCtr, q.Contract)
			its = append(its, index(migrations.BucketEventsByType, typesOf(tx, q.Contract)...)...)
		default:
			for _, src := range sources {
				lo, hi := heightBounds(src, q.FromHeight, q.ToHeight)
				its = append(its, &keyIter{c: tx.Bucket(migrations.BucketEvents).Cursor(), lo: lo, hi: hi, desc: q.Desc, primary: true})
			}
		}
		eb := tx.Bucket(migrations.BucketEvents)
		blocks := blocksOf(tx)
		out, err = page(its, q.Desc, cursorEvents, q.Limit, after, func(pk, val []byte) (store.Event, bool, error) {
			if val == nil {
				if val = eb.Get(pk); val == nil {
					return store.Event{}, false, nil // index entry without record: Check reports it
				}
			}
			var e store.Event
			if err := decodeEvent(pk, val, &e, blocks, s.codecs.lookup); err != nil {
				return e, false, fmt.Errorf("event %x: %w", pk, err)
			}
			return e, eventMatches(&q, &e), nil
		})
		return err
	})
	if err != nil {
		return store.Page[store.Event]{}, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// eventMatches reports whether e is one of the events q lists.
func eventMatches(q *store.EventQuery, e *store.Event) bool {
	switch {
	case q.Source != "" && e.Source != q.Source,
		len(q.Types) > 0 && !slices.Contains(q.Types, e.Type),
		q.Contract != "" && e.Contract != q.Contract,
		q.Address != "" && !slices.Contains(e.Addresses, q.Address),
		q.TxID != "" && e.TxID != q.TxID,
		q.FromHeight != nil && e.Height < *q.FromHeight,
		q.ToHeight != nil && e.Height > *q.ToHeight:
		return false
	}
	return true
}

// typesOf lists the event types in by_type that the contract is a proper
// prefix of (see contractInType), seeking past each type's entries. A
// type that only starts with the contract's text ("TokenB.E" for
// "Token") is listed too; its events fail the contract match.
func typesOf(tx *bbolt.Tx, contract string) []string {
	prefix := []byte(contract)
	var out []string
	c := tx.Bucket(migrations.BucketEventsByType).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); {
		i := bytes.IndexByte(k, sep)
		if i < 0 {
			return out // a malformed key; Check reports it
		}
		typ := string(k[:i])
		out = append(out, typ)
		k, _ = c.Seek(append([]byte(typ), sep+1))
	}
	return out
}

// txGroupIters walks the events of each transaction a tx id's group
// entries name, within the query's source and heights.
func txGroupIters(tx *bbolt.Tx, q *store.EventQuery) []*keyIter {
	var its []*keyIter
	prefix := txGroupPrefix(q.TxID)
	eb := tx.Bucket(migrations.BucketEvents)
	c := tx.Bucket(migrations.BucketEventsByTx).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		group, src, h, ok := parseTxGroup(k)
		if !ok || len(k) != len(prefix)+len(group) {
			continue // another tx id that this one prefixes, or a malformed key Check reports
		}
		if q.Source != "" && src != q.Source || q.FromHeight != nil && h < *q.FromHeight || q.ToHeight != nil && h > *q.ToHeight {
			continue
		}
		g := bytes.Clone(group)
		its = append(its, &keyIter{c: eb.Cursor(), lo: g, hi: g, desc: q.Desc, primary: true})
	}
	return its
}
