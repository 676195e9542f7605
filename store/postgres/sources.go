package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evindex/evindex/store"
)

const sourceSelect = `name, kind, epoch_genesis_ns, epoch_block_ns, epoch_blocks, epoch_named, meta, events, blocks, rewards, rejected,
	checkpoint_height, checkpoint_block_id, checkpoint_time_ns, checkpoint_updated_ns`

func scanSource(row pgx.CollectableRow) (store.SourceInfo, error) {
	var in store.SourceInfo
	var eg, eb, en, cph, cpt, cpu *int64
	var cpb *string
	var ev, bl, rw, rj int64
	var meta []byte
	var named *bool
	err := row.Scan(&in.Name, &in.Kind, &eg, &eb, &en, &named, &meta, &ev, &bl, &rw, &rj, &cph, &cpb, &cpt, &cpu)
	if err != nil {
		return in, err
	}
	in.Events, in.Blocks, in.Rewards, in.Rejected = uint64(ev), uint64(bl), uint64(rw), uint64(rj)
	if len(meta) > 0 {
		in.Meta = meta
	}
	if eg != nil {
		in.Epochs = &store.Epochs{Genesis: fromNanos(*eg), BlockDuration: time.Duration(*eb), BlocksPerEpoch: uint64(*en), Named: named != nil && *named}
	}
	if cph != nil {
		in.Checkpoint = &store.Checkpoint{Height: uint64(*cph), BlockID: *cpb, Time: fromNanos(*cpt), UpdatedAt: fromNanos(*cpu)}
	}
	return in, nil
}

// Sources returns every source that has written to the store, by name.
func (s *Store) Sources(ctx context.Context) ([]store.SourceInfo, error) {
	rows, err := s.read.Query(ctx, `SELECT `+sourceSelect+` FROM sources ORDER BY name`)
	if err != nil {
		return nil, s.redact(fmt.Errorf("list sources: %w", err))
	}
	out, err := pgx.CollectRows(rows, scanSource)
	if err != nil {
		return nil, s.redact(fmt.Errorf("list sources: %w", err))
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// Source returns one source's bookkeeping, or store.ErrNotFound.
func (s *Store) Source(ctx context.Context, name string) (store.SourceInfo, error) {
	if !storable(name) {
		return store.SourceInfo{}, fmt.Errorf("source %s: %w", name, store.ErrNotFound)
	}
	rows, err := s.read.Query(ctx, `SELECT `+sourceSelect+` FROM sources WHERE name = $1`, name)
	if err != nil {
		return store.SourceInfo{}, s.redact(fmt.Errorf("source %s: %w", name, err))
	}
	in, err := pgx.CollectExactlyOneRow(rows, scanSource)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.SourceInfo{}, fmt.Errorf("source %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return store.SourceInfo{}, s.redact(fmt.Errorf("source %s: %w", name, err))
	}
	return in, nil
}

// Checkpoint returns the source's checkpoint; found is false before its
// first commit. It reads the primary: a resuming source must see its own
// last commit, never a replica behind it.
func (s *Store) Checkpoint(ctx context.Context, source string) (cp store.Checkpoint, found bool, err error) {
	if !storable(source) {
		return store.Checkpoint{}, false, nil
	}
	var h, t, u *int64
	var id *string
	err = s.db.QueryRow(ctx, `SELECT checkpoint_height, checkpoint_block_id, checkpoint_time_ns, checkpoint_updated_ns
		FROM sources WHERE name = $1`, source).Scan(&h, &id, &t, &u)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && h == nil {
		return store.Checkpoint{}, false, nil
	}
	if err != nil {
		return store.Checkpoint{}, false, s.redact(fmt.Errorf("checkpoint of %s: %w", source, err))
	}
	return store.Checkpoint{Height: uint64(*h), BlockID: *id, Time: fromNanos(*t), UpdatedAt: fromNanos(*u)}, true, nil
}

// Coverage returns the source's proven-scanned height ranges, ascending
// and disjoint.
func (s *Store) Coverage(ctx context.Context, source string) ([]store.Range, error) {
	out, err := s.ranges(ctx, "coverage", source)
	if err != nil {
		return nil, s.redact(fmt.Errorf("coverage of %s: %w", source, err))
	}
	return out, nil
}

// ranges reads the source's rows of a table shaped like coverage.
func (s *Store) ranges(ctx context.Context, table, source string) ([]store.Range, error) {
	if !storable(source) {
		return nil, nil
	}
	rows, err := s.read.Query(ctx, `SELECT from_height, to_height FROM `+table+` WHERE source = $1 ORDER BY from_height`, source)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Range, error) {
		var f, t int64
		err := row.Scan(&f, &t)
		return store.Range{From: uint64(f), To: uint64(t)}, err
	})
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return out, nil
}

// State returns a source-private value written through Batch.State, or
// nil. Like Checkpoint it reads the primary.
func (s *Store) State(ctx context.Context, source, key string) ([]byte, error) {
	if !storable(source) {
		return nil, nil
	}
	var v []byte
	err := s.db.QueryRow(ctx, `SELECT value FROM source_state WHERE source = $1 AND key = $2`, source, []byte(key)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, s.redact(fmt.Errorf("state %s/%s: %w", source, key, err))
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// States returns every source-private value of the source (Batch.State),
// by key; it reads the primary like State.
func (s *Store) States(ctx context.Context, source string) (map[string][]byte, error) {
	if !storable(source) {
		return map[string][]byte{}, nil
	}
	rows, err := s.db.Query(ctx, `SELECT key, value FROM source_state WHERE source = $1`, source)
	if err != nil {
		return nil, s.redact(fmt.Errorf("state of %s: %w", source, err))
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, s.redact(fmt.Errorf("state of %s: %w", source, err))
		}
		if v == nil {
			v = []byte{}
		}
		out[string(k)] = v
	}
	if err := rows.Err(); err != nil {
		return nil, s.redact(fmt.Errorf("state of %s: %w", source, err))
	}
	return out, nil
}
