package main

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketBytes adds, per top-level bucket of the bbolt file at path, its
// allocated leaf and branch bytes divided by events to out. The file must
// not be open elsewhere.
func bucketBytes(path string, events float64, out map[string]float64) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("open for stats: %w", err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
			st := bk.Stats()
			out[string(name)] = float64(st.LeafAlloc+st.BranchAlloc+st.InlineBucketInuse) / events
			return nil
		})
	})
}
