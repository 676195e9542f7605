package bolt

import (
	"github.com/evindex/evindex/store"

	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	migrations "github.com/evindex/evindex/migrations/bolt"
)

// Sources returns every source that has written to the store, by name.
func (s *Store) Sources(ctx context.Context) ([]store.SourceInfo, error) {
	var out []store.SourceInfo
	err := s.view(func(tx *bbolt.Tx) error {
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
func (s *Store) Source(ctx context.Context, name string) (store.SourceInfo, error) {
	var out store.SourceInfo
	err := s.view(func(tx *bbolt.Tx) (err error) {
		out, err = sourceInfo(tx, name)
		return err
	})
	if err != nil {
		return store.SourceInfo{}, fmt.Errorf("source %s: %w", name, err)
	}
	return out, nil
}

func sourceInfo(tx *bbolt.Tx, name string) (store.SourceInfo, error) {
	v := tx.Bucket(migrations.BucketSources).Get([]byte(name))
	if v == nil {
		return store.SourceInfo{}, store.ErrNotFound
	}
	var r sourceRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return store.SourceInfo{}, store.ErrCorrupt
	}
	in := store.SourceInfo{Name: name, Kind: r.Kind, Epochs: r.Epochs, Meta: r.Meta, Events: r.Events, Blocks: r.Blocks, Rewards: r.Rewards, Rejected: r.Rejected}
	if cp, ok, err := checkpoint(tx, name); err != nil {
		return store.SourceInfo{}, err
	} else if ok {
		in.Checkpoint = &cp
	}
	return in, nil
}

func sourceNames(tx *bbolt.Tx) []string {
	var names []string
	_ = tx.Bucket(migrations.BucketSources).ForEach(func(k, _ []byte) error {
		names = append(names, string(k))
		return nil
	})
	return names
}

func checkpoint(tx *bbolt.Tx, source string) (store.Checkpoint, bool, error) {
	v := tx.Bucket(migrations.BucketCheckpoints).Get([]byte(source))
	if v == nil {
		return store.Checkpoint{}, false, nil
	}
	var cp store.Checkpoint
	if err := json.Unmarshal(v, &cp); err != nil {
		return store.Checkpoint{}, false, fmt.Errorf("checkpoint of %s: %w", source, store.ErrCorrupt)
	}
	return cp, true, nil
}

// Checkpoint returns the source's checkpoint; found is false before its
// first commit.
func (s *Store) Checkpoint(ctx context.Context, source string) (cp store.Checkpoint, found bool, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		cp, found, err = checkpoint(tx, source)
		return err
	})
	return cp, found, err
}

// Coverage returns the source's proven-scanned height ranges, ascending
// and disjoint.
func (s *Store) Coverage(ctx context.Context, source string) ([]store.Range, error) {
	out, err := s.ranges(migrations.BucketCoverage, source)
	if err != nil {
		return nil, fmt.Errorf("coverage of %s: %w", source, err)
	}
	return out, nil
}

// ranges reads a source's ranges from a bucket of mergeCoverage's layout.
func (s *Store) ranges(bucket []byte, source string) ([]store.Range, error) {
	var out []store.Range
	err := s.view(func(tx *bbolt.Tx) error {
		prefix := appendText(nil, source)
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(k) != len(prefix)+8 || len(v) != 8 {
				return store.ErrCorrupt
			}
			out = append(out, store.Range{From: binary.BigEndian.Uint64(k[len(prefix):]), To: binary.BigEndian.Uint64(v)})
		}
		return nil
	})
	return out, err
}

// State returns a source-private value written through Batch.State, or nil.
func (s *Store) State(ctx context.Context, source, key string) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bbolt.Tx) error {
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

// States returns every source-private value of the source (written
// through Batch.State), by key; copying a store moves them with the
// records.
func (s *Store) States(ctx context.Context, source string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.view(func(tx *bbolt.Tx) error {
		prefix := appendText(nil, source)
		c := tx.Bucket(migrations.BucketState).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			out[string(k[len(prefix):])] = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("states of %s: %w", source, err)
	}
	return out, nil
}
