package store

import (
	"context"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/evindex/evindex/migrations"
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
func (s *Store) Events(ctx context.Context, q EventQuery) (Page[Event], error) {
	after, err := decodeCursor(cursorEvents, q.Cursor)
	if err != nil {
		return Page[Event]{}, err
	}
	var out Page[Event]
	err = s.db.View(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		lo, hi := heightBounds(q.Source, q.FromHeight, q.ToHeight)
		index := func(bucket []byte, values ...string) []*keyIter {
			its := make([]*keyIter, 0, len(values))
			for _, v := range values {
				its = append(its, &keyIter{c: tx.Bucket(bucket).Cursor(), prefix: appendText(nil, v), lo: lo, hi: hi, desc: q.Desc})
			}
			return its
		}
		var its []*keyIter
		switch {
		case q.TxID != "":
			its = index(migrations.BucketEventsByTx, q.TxID)
		case q.Address != "":
			its = index(migrations.BucketEventsByAddr, q.Address)
		case len(q.Types) > 0:
			its = index(migrations.BucketEventsByType, q.Types...)
		case q.Contract != "":
			its = index(migrations.BucketEventsByCtr, q.Contract)
		default:
			its = []*keyIter{{c: tx.Bucket(migrations.BucketEvents).Cursor(), lo: lo, hi: hi, desc: q.Desc, primary: true}}
		}
		eb := tx.Bucket(migrations.BucketEvents)
		out, err = page(its, q.Desc, cursorEvents, q.Limit, after, func(pk, val []byte) (Event, bool, error) {
			if val == nil {
				if val = eb.Get(pk); val == nil {
					return Event{}, false, nil // index entry without record: Check reports it
				}
			}
			var e Event
			if err := decodeEvent(pk, val, &e); err != nil {
				return e, false, fmt.Errorf("event %x: %w", pk, err)
			}
			return e, q.matches(&e), nil
		})
		return err
	})
	if err != nil {
		return Page[Event]{}, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

func (q *EventQuery) matches(e *Event) bool {
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
