package bolt

import (
	"github.com/evindex/evindex/store"

	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	migrations "github.com/evindex/evindex/migrations/bolt"
)

const cursorRejected = 'q'

// rejectedKey is source 0 height(8) key: a source's quarantined records
// in position order.
func rejectedKey(source string, height uint64, key string) []byte {
	return append(blockKey(source, height), key...)
}

// A rejected record's value:
//
//	codecV2 kind field reason raw_size time raw
//
// and a counting record's (store.Rejected.Counted), which keeps no raw
// bytes:
//
//	rejectedCounting kind field reason raw_size time counted last_key
//
// Records kept in full keep the version 2 layout, so files written
// before counting records read the same.
const rejectedCounting = 3

func encodeRejected(r *store.Rejected) []byte {
	x := enc{b: make([]byte, 0, 32+len(r.Kind)+len(r.Field)+len(r.Reason)+len(r.Raw)+len(r.LastKey))}
	if r.Counted > 0 {
		x.b = append(x.b, rejectedCounting)
	} else {
		x.b = append(x.b, codecV2)
	}
	x.str(r.Kind)
	x.str(r.Field)
	x.str(r.Reason)
	x.uvarint(uint64(r.RawSize))
	x.time(r.Time)
	if r.Counted > 0 {
		x.uvarint(r.Counted)
		x.str(r.LastKey)
		return x.b
	}
	x.b = append(x.b, r.Raw...)
	return x.b
}

func decodeRejected(k, v []byte, r *store.Rejected) error {
	i := bytes.IndexByte(k, sep)
	if i < 0 || len(k) < i+9 {
		return fmt.Errorf("rejected record %q: %w", k, store.ErrCorrupt)
	}
	*r = store.Rejected{Source: string(k[:i]), Height: binary.BigEndian.Uint64(k[i+1:]), Key: string(k[i+9:])}
	if err := decodeRejectedValue(v, r); err != nil {
		return fmt.Errorf("rejected record %q: %w", k, err)
	}
	return nil
}

// decodeRejectedValue reads the fields a rejected record's value holds.
func decodeRejectedValue(v []byte, r *store.Rejected) error {
	if len(v) == 0 || v[0] != codecV2 && v[0] != rejectedCounting {
		return store.ErrCorrupt
	}
	d := dec{b: v[1:]}
	r.Kind, r.Field, r.Reason = d.str(), d.str(), d.str()
	r.RawSize = int(d.uvarint())
	r.Time = d.time()
	if v[0] == rejectedCounting {
		r.Counted, r.LastKey = d.uvarint(), d.str()
		if d.err == nil && (r.Counted == 0 || len(d.b) > 0) {
			d.err = errShortValue
		}
	} else {
		r.Raw = bytes.Clone(d.b)
	}
	if d.err != nil {
		return store.ErrCorrupt
	}
	return nil
}

// rejectedRecords is how many rejected records a stored value stands
// for: one, or a counting record's count.
func rejectedRecords(v []byte) uint64 {
	if len(v) == 0 || v[0] != rejectedCounting {
		return 1
	}
	var r store.Rejected
	if decodeRejectedValue(v, &r) != nil {
		return 1
	}
	return r.Records()
}

func (w *writer) putRejected(info *sourceRecord, r *store.Rejected) error {
	if r.Time.IsZero() {
		r.Time = w.s.now().UTC()
	}
	k := rejectedKey(r.Source, r.Height, r.Key)
	b := w.tx.Bucket(migrations.BucketRejected)
	// The source counts the records, not the values: a counting record
	// stands for many, and one rewritten with another count changes it.
	if old := b.Get(k); old != nil {
		info.Rejected -= min(info.Rejected, rejectedRecords(old))
	}
	info.Rejected += r.Records()
	return w.put(b, k, encodeRejected(r))
}

// Rejected returns one page of quarantined records in (source, height,
// key) order, or reversed with q.Desc. It returns ErrCursorInvalid for a
// cursor that is not from this list.
func (s *Store) Rejected(ctx context.Context, q store.RejectedQuery) (store.Page[store.Rejected], error) {
	after, err := store.DecodeCursor(cursorRejected, q.Cursor)
	if err != nil {
		return store.Page[store.Rejected]{}, err
	}
	var out store.Page[store.Rejected]
	err = s.view(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		lo, hi := heightBounds(q.Source, q.FromHeight, q.ToHeight)
		it := &keyIter{c: tx.Bucket(migrations.BucketRejected).Cursor(), lo: lo, hi: hi, desc: q.Desc, primary: true}
		out, err = page([]*keyIter{it}, q.Desc, cursorRejected, q.Limit, after, func(pk, val []byte) (store.Rejected, bool, error) {
			var r store.Rejected
			if err := decodeRejected(pk, val, &r); err != nil {
				return r, false, err
			}
			ok := (q.Source == "" || r.Source == q.Source) &&
				(q.FromHeight == nil || r.Height >= *q.FromHeight) &&
				(q.ToHeight == nil || r.Height <= *q.ToHeight)
			return r, ok, nil
		})
		return err
	})
	if err != nil {
		return store.Page[store.Rejected]{}, fmt.Errorf("list rejected: %w", err)
	}
	return out, nil
}
