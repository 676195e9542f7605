package bolt

import (
	"github.com/evindex/evindex/store"

	"bytes"

	bbolt "go.etcd.io/bbolt"
)

// keyIter walks one bucket range in key order and yields primary keys. For
// an index bucket, each key is prefix + primary key and prefix is stripped;
// for a primary bucket prefix is empty and val carries the record.
type keyIter struct {
	c       *bbolt.Cursor
	prefix  []byte
	lo, hi  []byte // bounds on the primary key; hi includes every key it prefixes
	desc    bool
	primary bool

	pk, val []byte // current position; pk nil when exhausted
}

func (it *keyIter) start(after []byte) {
	var k, v []byte
	if !it.desc {
		seek := append(bytes.Clone(it.prefix), it.lo...)
		if after != nil {
			a := append(append(bytes.Clone(it.prefix), after...), 0)
			if bytes.Compare(a, seek) > 0 {
				seek = a
			}
		}
		k, v = it.c.Seek(seek)
	} else {
		var end []byte // exclusive upper bound; nil is +inf
		if it.hi != nil {
			end = prefixEnd(append(bytes.Clone(it.prefix), it.hi...))
		} else if len(it.prefix) > 0 {
			end = prefixEnd(it.prefix)
		}
		if after != nil {
			a := append(bytes.Clone(it.prefix), after...)
			if end == nil || bytes.Compare(a, end) < 0 {
				end = a
			}
		}
		if end == nil {
			k, v = it.c.Last()
		} else if k, _ = it.c.Seek(end); k == nil {
			k, v = it.c.Last()
		} else {
			k, v = it.c.Prev()
		}
	}
	it.load(k, v)
}

func (it *keyIter) next() {
	if it.pk == nil {
		return
	}
	if it.desc {
		it.load(it.c.Prev())
	} else {
		it.load(it.c.Next())
	}
}

func (it *keyIter) load(k, v []byte) {
	it.pk, it.val = nil, nil
	if k == nil || !bytes.HasPrefix(k, it.prefix) {
		return
	}
	pk := k[len(it.prefix):]
	if it.desc {
		if it.lo != nil && bytes.Compare(pk, it.lo) < 0 {
			return
		}
	} else if it.hi != nil {
		n := min(len(pk), len(it.hi))
		if bytes.Compare(pk[:n], it.hi) > 0 {
			return
		}
	}
	it.pk = pk
	if it.primary {
		it.val = v
	}
}

// scanBudget bounds how many keys one page may examine when residual
// filters reject rows, so a read transaction stays short; the page then
// ends early with a cursor and the client continues.
const scanBudget = 200_000

// merged walks several iterators as one stream in primary-key order,
// dropping repeats (an event found through two of its addresses). fn
// returns false to stop. It reports whether keys remain after the stop.
func merged(its []*keyIter, desc bool, after []byte, fn func(pk, val []byte) bool) (more bool) {
	for _, it := range its {
		it.start(after)
	}
	for {
		var best *keyIter
		for _, it := range its {
			if it.pk == nil {
				continue
			}
			if best == nil {
				best = it
				continue
			}
			c := bytes.Compare(it.pk, best.pk)
			if (!desc && c < 0) || (desc && c > 0) {
				best = it
			}
		}
		if best == nil {
			return false
		}
		pk, val := best.pk, best.val
		for _, it := range its {
			if it != best && it.pk != nil && bytes.Equal(it.pk, pk) {
				if it.primary && val == nil {
					val = it.val
				}
				it.next()
			}
		}
		if !fn(pk, val) {
			best.next()
			for _, it := range its {
				if it.pk != nil {
					return true
				}
			}
			return false
		}
		best.next()
	}
}

// page runs a list query: it walks the iterators from the cursor, keeps
// the rows match accepts, and stops at limit rows or the scan budget. Its
// Next cursor names the last key walked.
func page[T any](its []*keyIter, desc bool, kind byte, limit int, cursor []byte,
	match func(pk, val []byte) (T, bool, error)) (store.Page[T], error) {
	items, next, err := scan(its, desc, limit, cursor, match)
	if err != nil {
		return store.Page[T]{}, err
	}
	out := store.Page[T]{Items: items}
	if next != nil {
		out.Next = store.EncodeCursor(kind, next)
	}
	return out, nil
}

// scan is page without the cursor encoding, for a walk that goes on inside
// the store: next is a copy of the last key walked (it outlives the
// transaction) when more rows may follow, nil at the end.
func scan[T any](its []*keyIter, desc bool, limit int, after []byte,
	match func(pk, val []byte) (T, bool, error)) (items []T, next []byte, err error) {
	if limit <= 0 {
		limit = store.DefaultLimit
	}
	if limit > store.MaxLimit {
		limit = store.MaxLimit
	}
	var (
		last    []byte
		scanned int
	)
	more := merged(its, desc, after, func(pk, val []byte) bool {
		scanned++
		item, ok, e := match(pk, val)
		if e != nil {
			err = e
			return false
		}
		last = pk
		if ok {
			items = append(items, item)
		}
		return len(items) < limit && scanned < scanBudget
	})
	if err != nil {
		return nil, nil, err
	}
	if more && last != nil {
		next = bytes.Clone(last)
	}
	return items, next, nil
}
