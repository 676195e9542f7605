package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/evindex/evindex/migrations"
)

const cursorBlocks = 'b'

// Blocks returns one page of blocks in (source, height) order.
func (s *BoltStore) Blocks(ctx context.Context, q BlockQuery) (Page[Block], error) {
	after, err := decodeCursor(cursorBlocks, q.Cursor)
	if err != nil {
		return Page[Block]{}, err
	}
	var out Page[Block]
	err = s.view(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		lo, hi := heightBounds(q.Source, q.FromHeight, q.ToHeight)
		it := &keyIter{c: tx.Bucket(migrations.BucketBlocks).Cursor(), lo: lo, hi: hi, desc: q.Desc, primary: true}
		out, err = page([]*keyIter{it}, q.Desc, cursorBlocks, q.Limit, after, func(pk, val []byte) (Block, bool, error) {
			var b Block
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
		return Page[Block]{}, fmt.Errorf("list blocks: %w", err)
	}
	return out, nil
}

// Block returns one block, or ErrNotFound.
func (s *BoltStore) Block(ctx context.Context, source string, height uint64) (Block, error) {
	var b Block
	err := s.view(func(tx *bolt.Tx) error {
		k := blockKey(source, height)
		v := tx.Bucket(migrations.BucketBlocks).Get(k)
		if v == nil {
			return ErrNotFound
		}
		return decodeBlock(k, v, &b)
	})
	if err != nil {
		return Block{}, fmt.Errorf("block %s/%d: %w", source, height, err)
	}
	return b, nil
}
