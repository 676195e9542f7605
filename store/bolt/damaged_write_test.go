package bolt_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/storetest"
)

// TestWritesToADamagedFileNameIt garbles one page at a time of a file and
// then replays every height into it, as a restarted source does: a write
// that meets a damaged page returns ErrCorrupt naming the file, where
// bbolt's assertion had killed the daemon in the writer ("Page expected
// to be: 15332, but self identifies as ...").
func TestWritesToADamagedFileNameIt(t *testing.T) {
	src := t.TempDir()
	s, err := bolt.Open(src, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const heights = 200
	for h := uint64(1); h <= heights; h++ {
		if err := s.Apply(ctx, storetest.FlowBatch(h, 6)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	good, err := os.ReadFile(filepath.Join(src, bolt.FileName))
	if err != nil {
		t.Fatal(err)
	}
	const pageSize = 4096
	failed := 0
	for pg := 2; pg < len(good)/pageSize; pg += 3 {
		bad := bytes.Clone(good)
		r := rand.New(rand.NewPCG(uint64(pg), 12))
		for i := pg * pageSize; i < (pg+1)*pageSize; i++ {
			bad[i] = byte(r.Uint32())
		}
		dir := t.TempDir()
		path := filepath.Join(dir, bolt.FileName)
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := bolt.Open(dir, bolt.Options{})
		if err != nil {
			continue // found at open
		}
		// One transaction replays every height.
		var all []store.Batch
		for h := uint64(1); h <= heights; h++ {
			all = append(all, storetest.FlowBatch(h, 6))
		}
		err = s.Apply(ctx, all...)
		s.Close()
		if err == nil {
			continue // the page was free, or rewritten before it was read
		}
		failed++
		if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Errorf("page %d garbled: Apply: %v; want ErrCorrupt naming %s", pg, err, path)
		}
	}
	if failed == 0 {
		t.Fatal("no garbled page made a write fail: the test damaged nothing a write reads")
	}
	t.Logf("%d damaged files failed a write with ErrCorrupt", failed)
}
