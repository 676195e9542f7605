package bolt_test

import (
	"bytes"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/storetest"
)

// TestRecordWritesReplaysToSameFile replays the recorded writes of a run
// of Apply transactions (new events, a replay, a replaced block, a
// coverage merge) with bbolt alone into a fresh file and finds every
// bucket equal to the file Apply wrote: nothing Apply writes escapes the
// record, which is what evbench's floor phase relies on.
func TestRecordWritesReplaysToSameFile(t *testing.T) {
	var txs [][]bolt.WriteOp
	dir := t.TempDir()
	st, err := bolt.Open(dir, bolt.Options{RecordWrites: func(ops []bolt.WriteOp) { txs = append(txs, ops) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	groups := [][]store.Batch{
		{storetest.FlowBatch(1, 3), storetest.FlowBatch(2, 5)},
		{storetest.FlowBatch(3, 2)},
		{storetest.FlowBatch(2, 5), storetest.FlowBatch(4, 1)}, // a replay, then new
	}
	replaced := storetest.FlowBatch(4, 2)
	replaced.Blocks[0].BlockID = "other"
	groups = append(groups, []store.Batch{replaced})
	for _, g := range groups {
		if err := st.Apply(ctx, g...); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if len(txs) != len(groups) {
		t.Fatalf("recorded %d transactions, want %d", len(txs), len(groups))
	}

	// A fresh file with the same schema, then the writes alone.
	fresh := t.TempDir()
	empty, err := bolt.Open(fresh, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	empty.Close()
	db, err := bbolt.Open(fresh+"/"+bolt.FileName, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ops := range txs {
		err := db.Update(func(tx *bbolt.Tx) error {
			for _, op := range ops {
				b := tx.Bucket([]byte(op.Bucket))
				if op.Delete {
					if err := b.Delete(op.Key); err != nil {
						return err
					}
				} else if err := b.Put(op.Key, op.Value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	got := dump(t, db)
	db.Close()
	orig, err := bbolt.Open(dir+"/"+bolt.FileName, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	want := dump(t, orig)
	if len(want) == 0 {
		t.Fatal("the applied file is empty")
	}
	for name, kv := range want {
		if len(kv) != len(got[name]) {
			t.Errorf("bucket %s: replay holds %d keys, Apply wrote %d", name, len(got[name]), len(kv))
			continue
		}
		for k, v := range kv {
			if g, ok := got[name][k]; !ok || !bytes.Equal([]byte(g), []byte(v)) {
				t.Errorf("bucket %s key %x: replay %x, Apply %x", name, k, g, v)
			}
		}
	}
}

// dump reads every top-level bucket's keys and values.
func dump(t *testing.T, db *bbolt.DB) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	err := db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			m := map[string]string{}
			err := b.ForEach(func(k, v []byte) error { m[string(k)] = string(v); return nil })
			out[string(name)] = m
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
