package bolt_test

import (
	"errors"
	"path/filepath"
	"testing"

	bbolt "go.etcd.io/bbolt"

	migrations "github.com/evindex/evindex/migrations/bolt"
)

func openDB(t *testing.T) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "evindex.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestUpgradeFromVersion1(t *testing.T) {
	db := openDB(t)
	if _, to, err := migrations.Up(db, migrations.All[:1]); err != nil || to != 1 {
		t.Fatalf("build v1: to=%d err=%v", to, err)
	}
	// Data written at version 1 must survive the upgrade.
	if err := db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(migrations.BucketEvents).Put([]byte("k"), []byte("v"))
	}); err != nil {
		t.Fatal(err)
	}
	from, to, err := migrations.Up(db, migrations.All)
	if err != nil {
		t.Fatal(err)
	}
	if from != 1 || to != migrations.Latest() {
		t.Fatalf("upgrade went %d -> %d, want 1 -> %d", from, to, migrations.Latest())
	}
	err = db.View(func(tx *bbolt.Tx) error {
		if got := tx.Bucket(migrations.BucketEvents).Get([]byte("k")); string(got) != "v" {
			t.Errorf("event lost in upgrade: %q", got)
		}
		for _, b := range [][]byte{migrations.BucketNodes, migrations.BucketNodesLatest, migrations.BucketRewardsAlias} {
			if tx.Bucket(b) == nil {
				t.Errorf("bucket %s missing after upgrade", b)
			}
		}
		if v := migrations.Version(tx); v != migrations.Latest() {
			t.Errorf("stored version %d", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Running again is a no-op.
	if from, to, err := migrations.Up(db, migrations.All); err != nil || from != to {
		t.Fatalf("second run: %d -> %d, %v", from, to, err)
	}
}

func TestRefuseNewerSchema(t *testing.T) {
	db := openDB(t)
	future := append(append([]migrations.Migration{}, migrations.All...),
		migrations.Migration{Version: migrations.Latest() + 1, Name: "future", Up: func(*bbolt.Tx) error { return nil }})
	if _, _, err := migrations.Up(db, future); err != nil {
		t.Fatal(err)
	}
	_, _, err := migrations.Up(db, migrations.All)
	if !errors.Is(err, migrations.ErrTooNew) {
		t.Fatalf("got %v, want ErrTooNew", err)
	}
}
