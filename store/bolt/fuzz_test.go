package bolt

import (
	"github.com/evindex/evindex/store"

	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzKeys checks the key encodings: every key parses back to what built
// it, and byte order is the order of the fields it encodes, so range scans
// and cursors see rows in identity order.
func FuzzKeys(f *testing.F) {
	f.Add("flow-main", uint64(1), uint32(0), uint32(0), "flow-main", uint64(1), uint32(0), uint32(1))
	f.Add("a", uint64(255), uint32(1), uint32(2), "a", uint64(256), uint32(0), uint32(0))
	f.Add("sm", uint64(1)<<63, ^uint32(0), ^uint32(0), "sm-node", uint64(0), uint32(0), uint32(0))
	f.Add("x\xff", uint64(7), uint32(7), uint32(7), "x", ^uint64(0), uint32(7), uint32(7))
	f.Fuzz(func(t *testing.T, s1 string, h1 uint64, tx1, ev1 uint32, s2 string, h2 uint64, tx2, ev2 uint32) {
		if s1 == "" || s2 == "" || strings.IndexByte(s1, 0) >= 0 || strings.IndexByte(s2, 0) >= 0 { // names Apply refuses
			return
		}
		k1, k2 := eventKey(s1, h1, tx1, ev1), eventKey(s2, h2, tx2, ev2)
		src, h, tx, ev, ok := parseEventKey(k1)
		if !ok || src != s1 || h != h1 || tx != tx1 || ev != ev1 {
			t.Fatalf("event key %x parses as %q %d %d %d %v", k1, src, h, tx, ev, ok)
		}
		want := cmp.Or(strings.Compare(s1, s2), cmp.Compare(h1, h2), cmp.Compare(tx1, tx2), cmp.Compare(ev1, ev2))
		if s1 != s2 && (strings.HasPrefix(s1, s2) || strings.HasPrefix(s2, s1)) {
			// A name that prefixes another sorts first: its separator is 0.
			want = cmp.Compare(len(s1), len(s2))
		}
		if got := bytes.Compare(k1, k2); got != want {
			t.Fatalf("event keys of (%q %d %d %d) and (%q %d %d %d) compare %d, want %d", s1, h1, tx1, ev1, s2, h2, tx2, ev2, got, want)
		}

		b1, b2 := blockKey(s1, h1), blockKey(s2, h2)
		if src, h, ok := parseBlockKey(b1); !ok || src != s1 || h != h1 {
			t.Fatalf("block key %x parses as %q %d %v", b1, src, h, ok)
		}
		wantB := cmp.Or(strings.Compare(s1, s2), cmp.Compare(h1, h2))
		if s1 != s2 && (strings.HasPrefix(s1, s2) || strings.HasPrefix(s2, s1)) {
			wantB = cmp.Compare(len(s1), len(s2))
		}
		if got := bytes.Compare(b1, b2); got != wantB {
			t.Fatalf("block keys of (%q %d) and (%q %d) compare %d, want %d", s1, h1, s2, h2, got, wantB)
		}

		// A cursor carries a key unchanged, and only to its own list.
		for _, kind := range []byte{cursorEvents, cursorRewards} {
			c := store.EncodeCursor(kind, k1)
			back, err := store.DecodeCursor(kind, c)
			if err != nil || !bytes.Equal(back, k1) {
				t.Fatalf("cursor %q decodes to %x, %v", c, back, err)
			}
			if _, err := store.DecodeCursor(kind+1, c); err == nil {
				t.Fatalf("a cursor of list %c is accepted by list %c", kind, kind+1)
			}
		}
	})
}

// FuzzDecodeCursor feeds arbitrary text where a cursor goes: it is a
// cursor of the list or ErrCursorInvalid, never a panic.
func FuzzDecodeCursor(f *testing.F) {
	for _, s := range []string{"", "e", "ZQ", "ZXgAAAAA", store.EncodeCursor(cursorEvents, eventKey("flow", 9, 1, 2)), "!!!", "ZQ==", strings.Repeat("A", 1000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := store.DecodeCursor(cursorEvents, s)
		if err != nil && err != store.ErrCursorInvalid {
			t.Fatalf("%q: %v", s, err)
		}
		if err == nil && s != "" && store.EncodeCursor(cursorEvents, k) != s {
			// Base64 has one spelling per byte string once padding and
			// trailing bits are fixed; anything else is not ours.
			if _, err := store.DecodeCursor(cursorEvents, store.EncodeCursor(cursorEvents, k)); err != nil {
				t.Fatalf("re-encoded cursor of %q does not decode: %v", s, err)
			}
		}
	})
}

// FuzzRecordRoundTrip writes an event and a block with arbitrary field
// values through Apply and reads them back: what a source may store comes
// back unchanged, or Apply refuses it with ErrInvalid before writing.
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add("ab01", int64(1700000000123456789), "c3", "A.1.T.E", "A.1.T", "f8d6e0586b0a20c7", []byte(`{"a":1}`), uint64(42))
	f.Add("", int64(0), "", "t", "", "", []byte(nil), uint64(0))
	f.Add(strings.Repeat("b", 300), int64(-5), "\x00", "τ", "c", "", []byte(`[]`), ^uint64(0))
	f.Add("x", int64(1), "y", "", "c\x00", "a\x00", []byte(`{`), uint64(1))
	s, err := Open(f.TempDir(), Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		if err := s.Check(context.Background()); err != nil {
			f.Errorf("store integrity: %v", err)
		}
		s.Close()
	})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, blockID string, ns int64, txID, typ, contract, addr string, payload []byte, height uint64) {
		e := store.Event{Height: height, BlockID: blockID, TxID: txID, TxIndex: 3, EventIndex: 4, Type: typ, Contract: contract}
		if ns > 0 {
			e.BlockTime = time.Unix(0, ns).UTC()
		}
		if addr != "" {
			e.Addresses = []string{addr}
		}
		if len(payload) > 0 {
			e.Payload = json.RawMessage(payload)
		}
		b := store.Block{Height: height, BlockID: blockID, BlockTime: e.BlockTime, EventCount: uint32(len(payload)), Status: typ}
		err := s.Apply(ctx, store.Batch{Source: "fz", Kind: "flow", Events: []store.Event{e}, Blocks: []store.Block{b},
			Checkpoint: &store.Checkpoint{Height: height}, Coverage: &store.Range{From: height, To: height}})
		if err != nil {
			if !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("apply: %v is not ErrInvalid", err)
			}
			return
		}
		p, err := s.Events(ctx, store.EventQuery{Source: "fz", FromHeight: &height, ToHeight: &height})
		if err != nil || len(p.Items) != 1 {
			t.Fatalf("read back: %d events, %v", len(p.Items), err)
		}
		got := p.Items[0]
		if got.BlockID != e.BlockID || !got.BlockTime.Equal(e.BlockTime) || got.TxID != e.TxID || got.Type != e.Type ||
			got.Contract != e.Contract || strings.Join(got.Addresses, ",") != strings.Join(e.Addresses, ",") ||
			!bytes.Equal(got.Payload, e.Payload) || got.Height != height || got.TxIndex != 3 || got.EventIndex != 4 {
			t.Fatalf("event %+v came back as %+v", e, got)
		}
		gb, err := s.Block(ctx, "fz", height)
		if err != nil || gb.BlockID != b.BlockID || !gb.BlockTime.Equal(b.BlockTime) || gb.EventCount != b.EventCount || gb.Status != b.Status {
			t.Fatalf("block %+v came back as %+v (%v)", b, gb, err)
		}
		// The indexes find it, and the file stays sound by its own check.
		for _, q := range []store.EventQuery{{TxID: txID}, {Address: addr}, {Contract: contract}, {Types: []string{typ}}} {
			if q.TxID == "" && q.Address == "" && q.Contract == "" && (len(q.Types) == 0 || q.Types[0] == "") {
				continue
			}
			q.Source, q.FromHeight, q.ToHeight = "fz", &height, &height
			if p, err := s.Events(ctx, q); err != nil || len(p.Items) != 1 {
				t.Fatalf("query %+v: %d events, %v", q, len(p.Items), err)
			}
		}
		if err := s.Check(ctx); err != nil {
			t.Fatalf("after storing %+v: %v", e, err)
		}
	})
}
