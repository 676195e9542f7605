package bolt_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/storetest"
)

var ctx = context.Background()

func u64(v uint64) *uint64 { return &v }

// TestConformance runs the store contract's suite on bbolt files, each
// checked for integrity when its test ends.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return storetest.MustOpen(t) })
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, bolt.FileName): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode %v, want %v", path, got, want)
		}
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = bolt.Open(dir, bolt.Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if want := filepath.Join(dir, bolt.FileName); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the file %s", err, want)
	}
}

func TestCorruptFileIsAnErrorNotAPanic(t *testing.T) {
	for name, content := range map[string][]byte{
		"Garbage":   []byte("this is not a bbolt file, just some text that is long enough to look like a header page or two"),
		"Truncated": nil,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if content == nil {
				s, err := bolt.Open(dir, bolt.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Apply(ctx, storetest.FlowBatch(1, 4)); err != nil {
					t.Fatal(err)
				}
				s.Close()
				raw, _ := os.ReadFile(filepath.Join(dir, bolt.FileName))
				content = raw[:100]
			}
			if err := os.WriteFile(filepath.Join(dir, bolt.FileName), content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := bolt.Open(dir, bolt.Options{})
			if err == nil {
				t.Fatal("opened a corrupt file")
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, bolt.FileName)) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestStateAndBackup(t *testing.T) {
	s := storetest.MustOpen(t)
	if err := s.Apply(ctx, store.Batch{Source: "pre", State: map[string][]byte{"limiter": []byte("t1,t2")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, storetest.FlowBatch(7, 3)); err != nil {
		t.Fatal(err)
	}
	v, _ := s.State(ctx, "pre", "limiter")
	if string(v) != "t1,t2" {
		t.Fatalf("state %q", v)
	}
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, bolt.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backup(ctx, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	restored, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if err := restored.Check(ctx); err != nil {
		t.Fatal(err)
	}
	cp, found, _ := restored.Checkpoint(ctx, "flow")
	if !found || cp.Height != 7 {
		t.Fatalf("restored checkpoint %+v %v", cp, found)
	}
	if got := len(storetest.AllEvents(t, restored, store.EventQuery{})); got != 3 {
		t.Fatalf("restored %d events, want 3", got)
	}
}
