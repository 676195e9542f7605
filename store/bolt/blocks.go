package bolt

import (
	"github.com/evindex/evindex/store"

	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	migrations "github.com/evindex/evindex/migrations/bolt"
)

const cursorBlocks = 'b'

// Blocks returns one page of blocks in (source, height) order.
func (s *Store) Blocks(ctx context.Context, q store.BlockQuery) (store.Page[store.Block], error) {
	after, err := store.DecodeCursor(cursorBlocks, q.Cursor)
	if err != nil {
		return store.Page[store.Block]{}, err
	}
	var out store.Page[store.Block]
	err = s.view(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		lo, hi := heightBounds(q.Source, q.FromHeight, q.ToHeight)
		it := &keyIter{c: tx.Bucket(migrations.BucketBlocks).Cursor(), lo: lo, hi: hi, desc: q.Desc, primary: true}
		out, err = page([]*keyIter{it}, q.Desc, cursorBlocks, q.Limit, after, func(pk, val []byte) (store.Block, bool, error) {
			var b store.Block
			if err := decodeBlock(pk, val, &b); err != nil {
				return b, false, err
			}
			ok := (q.Source == "" || b.Source == q.Source) &&
				(q.FromHeight == nil || b.Height >= *q.FromHeight) &&
				(q.ToHeight == nil || b.Height <= *q.ToHeight)
			return b, ok, nil
		})
		return err
	})
	if err != nil {
		return store.Page[store.Block]{}, fmt.Errorf("list blocks: %w", err)
	}
	return out, nil
}

// Block returns one block, or ErrNotFound.
func (s *Store) Block(ctx context.Context, source string, height uint64) (store.Block, error) {
	var b store.Block
	err := s.view(func(tx *bbolt.Tx) error {
		k := blockKey(source, height)
		v := tx.Bucket(migrations.BucketBlocks).Get(k)
		if v == nil {
			return store.ErrNotFound
		}
		return decodeBlock(k, v, &b)
	})
	if err != nil {
		return store.Block{}, fmt.Errorf("block %s/%d: %w", source, height, err)
	}
	return b, nil
}
