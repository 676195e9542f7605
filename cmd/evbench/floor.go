package main

import (
	"bufio"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/evindex/evindex/store/bolt"
)

// The floor is what bbolt itself costs for what evindex stores: the exact
// keys and values store.Apply wrote for the pre-built groups, in the same
// transactions, replayed as plain Puts and Deletes. Apply / floor is then
// the share of the write path that is ours (validation, encoding, index
// derivation, allocation), and a slower Apply cannot flatter the end-to-end
// ratio.

// floor captures Apply's writes of the pre-built groups in one child and
// replays them with bbolt alone in another; only the replay is timed.
func (b *bench) floor(ctx context.Context, batches string) error {
	writes := b.path("writes.gob")
	defer os.Remove(writes)
	dir := b.path("floor-capture")
	_, err := runChild(ctx, b.log, phaseArgs{Name: "floor-capture", Dir: dir, File: batches, Out: writes}, nil)
	os.RemoveAll(dir)
	if err != nil {
		return err
	}
	dir = b.path("floor")
	r, err := runChild(ctx, b.log, phaseArgs{Name: "floor", Dir: dir, File: writes}, nil)
	os.RemoveAll(dir)
	if err != nil {
		return err
	}
	b.res.FloorEPS = float64(b.res.IngestEvents) / r.Seconds
	b.progress("floor: Apply's writes replayed with bbolt alone in %.2fs (%d transactions): %.0f events/s", r.Seconds, r.Events, b.res.FloorEPS)
	return nil
}

// phaseFloorCapture applies the pre-built groups as phaseStore does and
// writes each committed transaction's writes to ph.Out.
func phaseFloorCapture(ctx context.Context, ph phaseArgs) (phaseResult, error) {
	f, err := os.Create(ph.Out)
	if err != nil {
		return phaseResult{}, fmt.Errorf("writes file: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	enc := gob.NewEncoder(w)
	var encErr error
	st, err := bolt.Open(ph.Dir, bolt.Options{RecordWrites: func(ops []bolt.WriteOp) {
		if encErr == nil {
			encErr = enc.Encode(ops)
		}
	}})
	if err != nil {
		return phaseResult{}, err
	}
	defer st.Close()
	res, err := timeApply(ctx, ph.File, st.Apply)
	if err != nil {
		return phaseResult{}, err
	}
	if encErr != nil {
		return phaseResult{}, fmt.Errorf("writes file: %w", encErr)
	}
	if err := w.Flush(); err != nil {
		return phaseResult{}, fmt.Errorf("writes file: %w", err)
	}
	return res, f.Close()
}

// phaseFloor replays the captured transactions with bbolt alone into a
// file with evindex's schema, fsync on every commit, opened and tuned as
// bolt.Open and Apply open and tune theirs. Events holds the number of
// transactions; only the Update calls are timed.
func phaseFloor(ctx context.Context, ph phaseArgs) (phaseResult, error) {
	// The schema (buckets, meta) as evindex creates it, untimed.
	st, err := bolt.Open(ph.Dir, bolt.Options{})
	if err != nil {
		return phaseResult{}, err
	}
	if err := st.Close(); err != nil {
		return phaseResult{}, err
	}
	db, err := bbolt.Open(filepath.Join(ph.Dir, bolt.FileName), 0o600, &bbolt.Options{FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return phaseResult{}, fmt.Errorf("open floor file: %w", err)
	}
	defer db.Close()
	f, err := os.Open(ph.File)
	if err != nil {
		return phaseResult{}, fmt.Errorf("open writes: %w", err)
	}
	defer f.Close()
	dec := gob.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	var (
		res  phaseResult
		busy time.Duration
	)
	for {
		var ops []bolt.WriteOp
		if err := dec.Decode(&ops); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return phaseResult{}, fmt.Errorf("read writes: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return phaseResult{}, err
		}
		t := time.Now()
		err := db.Update(func(tx *bbolt.Tx) error {
			bolt.TuneWriteTx(tx)
			for _, op := range ops {
				b := tx.Bucket([]byte(op.Bucket))
				if b == nil {
					return fmt.Errorf("replay: no bucket %q", op.Bucket)
				}
				var err error
				if op.Delete {
					err = b.Delete(op.Key)
				} else {
					err = b.Put(op.Key, op.Value)
				}
				if err != nil {
					return fmt.Errorf("replay into %s: %w", op.Bucket, err)
				}
			}
			return nil
		})
		if err != nil {
			return phaseResult{}, err
		}
		busy += time.Since(t)
		res.Events++
	}
	res.Seconds = busy.Seconds()
	return res, nil
}
