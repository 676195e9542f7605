package bolt_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/storetest"
)

// stallBound is how long a test waits for something that must not depend
// on a reader at all. It is no latency target: on main a held reader kept
// Apply waiting for as long as the reader lived (forever here), so any
// bound tells the two apart; it is generous so a loaded CI machine
// never trips it.
const stallBound = 2 * time.Minute

// bigBatch is one height with n events of about 1 KiB each: a few hundred
// of them grow the file by megabytes.
func bigBatch(h uint64, n int) store.Batch {
	b := storetest.FlowBatch(h, n)
	pad := strings.Repeat("x", 1000)
	for i := range b.Events {
		b.Events[i].Payload = json.RawMessage(`{"type":"Event","value":{"pad":"` + pad + `","h":` + jsonInt(h) + `,"i":` + jsonInt(uint64(i)) + `}}`)
	}
	return b
}

func jsonInt(v uint64) string { b, _ := json.Marshal(v); return string(b) }

// TestSlowReaderDoesNotStallApply holds a read transaction open, as a
// backup or export to a slow client would, while Apply grows the file by
// 16 MB. bbolt remaps a file that outgrows its mapping, and a remap waits
// for every open reader: the writer, and every new reader behind it, then
// waited on the slowest client. The mapping is reserved far ahead of the
// file, so the writer never waits on a reader.
func TestSlowReaderDoesNotStallApply(t *testing.T) {
	s := storetest.MustOpen(t)
	if err := s.Apply(ctx, bigBatch(1, 1)); err != nil {
		t.Fatal(err)
	}
	release := bolt.HoldRead(s)
	applied := make(chan error, 1)
	go func() {
		for h := uint64(2); h < 2+400; h++ {
			if err := s.Apply(ctx, bigBatch(h, 40)); err != nil {
				applied <- err
				return
			}
		}
		applied <- nil
	}()
	select {
	case err := <-applied:
		release()
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(stallBound):
		release()
		<-applied
		t.Fatalf("Apply waited %v for a read transaction to end", stallBound)
	}
	if got := len(storetest.AllEvents(t, s, store.EventQuery{})); got != 1+400*40 {
		t.Fatalf("%d events stored, want %d", got, 1+400*40)
	}
}

// blockedWriter is a client that takes the first bytes and then stops
// reading until released.
type blockedWriter struct {
	writing, release chan struct{}
	n                int
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		close(w.writing)
		<-w.release
	}
	w.n += len(p)
	return len(p), nil
}

// TestBackupHoldsNoTransactionWhileClientReads stops reading a backup after
// its first bytes: no read transaction may stay open meanwhile, since one
// held at the client's pace keeps every page it sees from being reused.
func TestBackupHoldsNoTransactionWhileClientReads(t *testing.T) {
	s := storetest.MustOpen(t)
	for h := uint64(1); h <= 50; h++ {
		if err := s.Apply(ctx, bigBatch(h, 20)); err != nil {
			t.Fatal(err)
		}
	}
	w := &blockedWriter{writing: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	var n int64
	go func() {
		var err error
		n, err = s.Backup(ctx, w)
		done <- err
	}()
	select {
	case <-w.writing:
	case err := <-done:
		t.Fatalf("backup ended before writing: %v", err)
	}
	open := bolt.OpenReadTxs(s)
	// The writer is not held either.
	if err := s.Apply(ctx, bigBatch(51, 20)); err != nil {
		t.Fatal(err)
	}
	close(w.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if open != 0 {
		t.Fatalf("%d read transactions open while the backup client was not reading", open)
	}
	if n == 0 || int64(w.n) != n {
		t.Fatalf("backup wrote %d bytes, reported %d", w.n, n)
	}
}
