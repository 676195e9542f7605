package bolt_test

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"
	"time"

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

// TestRewardTotalsByHourReplaceDays: a file at version 8 holds day totals;
// the step to 9 drops them and sums its rewards per hour instead.
func TestRewardTotalsByHourReplaceDays(t *testing.T) {
	db := openDB(t)
	if _, to, err := migrations.Up(db, migrations.All[:8]); err != nil || to != 8 {
		t.Fatalf("build v8: to=%d err=%v", to, err)
	}
	// A reward of the first (JSON) format, at 2026-01-01T01:30Z.
	key := []byte("flow\x00node1\x00\x18\x96\x3a\x5e\x0f\x5a\x30\x00r1")
	val := []byte(`{"k":"flow_node_reward","id":"r1","t":"2026-01-01T01:30:00Z","a":"123","u":"FLOW","d":8,"al":["node1/1"],"s":"flow","acc":"node1"}`)
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(migrations.BucketRewards).Put(key, val) }); err != nil {
		t.Fatal(err)
	}
	if _, to, err := migrations.Up(db, migrations.All); err != nil || to != migrations.Latest() {
		t.Fatalf("upgrade: to=%d err=%v", to, err)
	}
	hour := uint64(1 + time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC).Unix()/3600)
	err := db.View(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{migrations.BucketRewardDays, migrations.BucketRewardDaysAlias} {
			if tx.Bucket(b) != nil {
				t.Errorf("bucket %s is still there", b)
			}
		}
		self := binary.BigEndian.AppendUint64([]byte("flow\x00node1\x00"), hour)
		alias := append(binary.BigEndian.AppendUint64([]byte("flow\x00node1/1\x00"), hour), "node1\x00"...)
		// One part: FLOW, flow_node_reward, 8 decimals, 1 reward of 123.
		want := "\x01\x04FLOW\x10flow_node_reward\x08\x01\x01\x7b"
		if got := tx.Bucket(migrations.BucketRewardHours).Get(self); string(got) != want {
			t.Errorf("hour total %q, want %q", got, want)
		}
		if got := tx.Bucket(migrations.BucketRewardHoursAlias).Get(alias); string(got) != want {
			t.Errorf("alias hour total %q, want %q", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
