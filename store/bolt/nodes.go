package bolt

import (
	"github.com/evindex/evindex/store"

	"bytes"
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	migrations "github.com/evindex/evindex/migrations/bolt"
)

const cursorNodes = 'n'

// Nodes returns the latest snapshot of every node of source (of every
// source when source is empty), ordered by source and node.
func (s *Store) Nodes(ctx context.Context, source string) ([]store.NodeStatus, error) {
	var out []store.NodeStatus
	err := s.view(func(tx *bbolt.Tx) error {
		var prefix []byte
		if source != "" {
			prefix = appendText(nil, source)
		}
		c := tx.Bucket(migrations.BucketNodesLatest).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var n store.NodeStatus
			if err := decodeNode(v, &n); err != nil {
				return err
			}
			out = append(out, n)
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return out, nil
}

// NodeHistory returns one page of a node's snapshots in time order.
func (s *Store) NodeHistory(ctx context.Context, q store.NodeHistoryQuery) (store.Page[store.NodeStatus], error) {
	after, err := store.DecodeCursor(cursorNodes, q.Cursor)
	if err != nil {
		return store.Page[store.NodeStatus]{}, err
	}
	var out store.Page[store.NodeStatus]
	err = s.view(func(tx *bbolt.Tx) error {
		p := appendText(appendText(nil, q.Source), q.Node)
		lo, hi := p, p
		if !q.FromTime.IsZero() {
			lo = appendU64(bytes.Clone(p), timeKey(q.FromTime))
		}
		if !q.ToTime.IsZero() {
			if t := timeKey(q.ToTime); t > 0 {
				hi = appendU64(bytes.Clone(p), t-1)
			}
		}
		it := &keyIter{c: tx.Bucket(migrations.BucketNodes).Cursor(), lo: lo, hi: hi, desc: q.Desc, primary: true}
		out, err = page([]*keyIter{it}, q.Desc, cursorNodes, q.Limit, after, func(pk, val []byte) (store.NodeStatus, bool, error) {
			var n store.NodeStatus
			if err := decodeNode(val, &n); err != nil {
				return n, false, err
			}
			ok := (q.FromTime.IsZero() || !n.Time.Before(q.FromTime)) && (q.ToTime.IsZero() || n.Time.Before(q.ToTime))
			return n, ok, nil
		})
		return err
	})
	if err != nil {
		return store.Page[store.NodeStatus]{}, fmt.Errorf("node history: %w", err)
	}
	return out, nil
}
