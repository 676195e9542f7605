package bolt

import (
	"github.com/evindex/evindex/store"

	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	bbolt "go.etcd.io/bbolt"

	migrations "github.com/evindex/evindex/migrations/bolt"
)

// A source's dictionary is kept in the file: its events are packed with
// it, name it, and read back after a reopen; the same id with other
// fragments is refused, and a transaction that fails leaves no trace of
// the dictionary it brought.
func TestPayloadDictionaryKeptInFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dict := store.PayloadDictionary{ID: 7, Fragments: []string{`{"kind":"`, `","amount":"`, `"}`}}
	payload := func(i int) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"kind":"reward","amount":"%d"}`, i))
	}
	batch := func(from, to int) store.Batch {
		b := store.Batch{Source: "chain"}
		for i := from; i < to; i++ {
			b.Events = append(b.Events, store.Event{Height: uint64(i), Type: "t", Payload: payload(i)})
		}
		return b
	}
	first := batch(1, 3)
	first.PayloadDictionary = &dict
	// The next batch does not repeat the dictionary: the source keeps it.
	if err := s.Apply(ctx, first, batch(3, 5)); err != nil {
		t.Fatal(err)
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(migrations.BucketEvents).ForEach(func(k, v []byte) error {
			id, n := binary.Uvarint(v[2:])
			if v[1]&evPayloadPacked == 0 || v[1]&evPayloadDict == 0 || n <= 0 || id != dict.ID {
				return fmt.Errorf("event %x: value %x is not packed with dictionary 7", k, v)
			}
			if len(v) > 2+n+4+len(`reward","amount":"4"}`) {
				return fmt.Errorf("event %x: value %x is longer than a packed one", k, v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	changed := store.PayloadDictionary{ID: 7, Fragments: []string{`{"kind":"`}}
	b := batch(5, 6)
	b.PayloadDictionary = &changed
	if err := s.Apply(ctx, b); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("dictionary 7 with other fragments: %v, want ErrInvalid", err)
	}
	// A dictionary whose transaction fails is not in the file: the same
	// id with other fragments is then a new dictionary.
	brings := store.Batch{Source: "other", PayloadDictionary: &store.PayloadDictionary{ID: 8, Fragments: []string{`"amount"`}}}
	failing := batch(5, 6)
	failing.PayloadDictionary = &changed
	if err := s.Apply(ctx, brings, failing); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a transaction with dictionary 7 changed: %v, want ErrInvalid", err)
	}
	b = store.Batch{Source: "other", PayloadDictionary: &store.PayloadDictionary{ID: 8, Fragments: []string{`"kind"`}}}
	if err := s.Apply(ctx, b); err != nil {
		t.Fatalf("dictionary 8 after its failed transaction: %v", err)
	}
	for _, bad := range []store.PayloadDictionary{{ID: 0, Fragments: []string{"ab"}}, {ID: 9, Fragments: []string{"a"}}} {
		b := store.Batch{Source: "chain", PayloadDictionary: &bad}
		if err := s.Apply(ctx, b); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("dictionary %+v: %v, want ErrInvalid", bad, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Events(ctx, store.EventQuery{Source: "chain"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Items) != 4 {
		t.Fatalf("%d events after reopening, want 4", len(got.Items))
	}
	for i, e := range got.Items {
		if want := payload(i + 1); string(e.Payload) != string(want) {
			t.Errorf("event %d: payload %s, want %s", e.Height, e.Payload, want)
		}
	}
	if err := s.Check(ctx); err != nil {
		t.Error(err)
	}
}
