package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/evindex/evindex/migrations"
)

// Sources returns every source that has written to the store, by name.
func (s *BoltStore) Sources(ctx context.Context) ([]SourceInfo, error) {
	var out []SourceInfo
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(migrations.BucketSources).ForEach(func(k, _ []byte) error {
			in, err := sourceInfo(tx, string(k))
			if err != nil {
				return err
			}
			out = append(out, in)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	return out, nil
}

// Source returns one source's bookkeeping, or ErrNotFound.
func (s *BoltStore) Source(ctx context.Context, name string) (SourceInfo, error) {
	var out SourceInfo
	err := s.view(func(tx *bolt.Tx) (err error) {
		out, err = sourceInfo(tx, name)
		return err
	})
	if err != nil {
		return SourceInfo{}, fmt.Errorf("source %s: %w", name, err)
	}
	return out, nil
}

func sourceInfo(tx *bolt.Tx, name string) (SourceInfo, error) {
	v := tx.Bucket(migrations.BucketSources).Get([]byte(name))
	if v == nil {
		return SourceInfo{}, ErrNotFound
	}
	var r sourceRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return SourceInfo{}, ErrCorrupt
	}
	in := SourceInfo{Name: name, Kind: r.Kind, Epochs: r.Epochs, Meta: r.Meta, Events: r.Events, Blocks: r.Blocks, Rewards: r.Rewards, Rejected: r.Rejected}
	if cp, ok, err := checkpoint(tx, name); err != nil {
		return SourceInfo{}, err
	} else if ok {
		in.Checkpoint = &cp
	}
	return in, nil
}

func sourceNames(tx *bolt.Tx) []string {
	var names []string
	_ = tx.Bucket(migrations.BucketSources).ForEach(func(k, _ []byte) error {
		names = append(names, string(k))
		return nil
	})
	return names
}

func checkpoint(tx *bolt.Tx, source string) (Checkpoint, bool, error) {
	v := tx.Bucket(migrations.BucketCheckpoints).Get([]byte(source))
	if v == nil {
		return Checkpoint{}, false, nil
	}
	var cp Checkpoint
	if err := json.Unmarshal(v, &cp); err != nil {
		return Checkpoint{}, false, fmt.Errorf("checkpoint of %s: %w", source, ErrCorrupt)
	}
	return cp, true, nil
}

// Checkpoint returns the source's checkpoint; found is false before its
// first commit.
func (s *BoltStore) Checkpoint(ctx context.Context, source string) (cp Checkpoint, found bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		cp, found, err = checkpoint(tx, source)
		return err
	})
	return cp, found, err
}

// Coverage returns the source's proven-scanned height ranges, ascending
// and disjoint.
func (s *BoltStore) Coverage(ctx context.Context, source string) ([]Range, error) {
	out, err := s.ranges(migrations.BucketCoverage, source)
	if err != nil {
		return nil, fmt.Errorf("coverage of %s: %w", source, err)
	}
	return out, nil
}

// ranges reads a source's ranges from a bucket of mergeCoverage's layout.
func (s *BoltStore) ranges(bucket []byte, source string) ([]Range, error) {
	var out []Range
	err := s.view(func(tx *bolt.Tx) error {
		prefix := appendText(nil, source)
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(k) != len(prefix)+8 || len(v) != 8 {
				return ErrCorrupt
			}
			out = append(out, Range{From: binary.BigEndian.Uint64(k[len(prefix):]), To: binary.BigEndian.Uint64(v)})
		}
		return nil
	})
	return out, err
}

// State returns a source-private value written through Batch.State, or nil.
func (s *BoltStore) State(ctx context.Context, source, key string) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(migrations.BucketState).Get(append(appendText(nil, source), key...)); v != nil {
			out = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state %s/%s: %w", source, key, err)
	}
	return out, nil
}
