package bolt_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evindex/evindex/store/bolt"
)

// TestOpenTightensExistingFiles opens a data dir and file left open to
// everyone (an earlier install, a careless restore): every open, not only
// the first, makes them private again.
func TestOpenTightensExistingFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, bolt.FileName)
	s, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, readOnly := range []bool{false, true} {
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := bolt.Open(dir, bolt.Options{ReadOnly: readOnly})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("read-only %v: %s mode %04o after open, want %04o", readOnly, p, got, want)
			}
		}
	}
}

// TestOpenRefusesASymlinkedFile puts a symlink where the database file
// belongs, to a file and to nothing: open refuses it, naming it, and
// neither target is touched or created.
func TestOpenRefusesASymlinkedFile(t *testing.T) {
	for _, existing := range []bool{true, false} {
		root := t.TempDir()
		dir := filepath.Join(root, "data")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(root, "elsewhere.txt")
		if existing {
			if err := os.WriteFile(target, []byte("someone else's file"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink(target, filepath.Join(dir, bolt.FileName)); err != nil {
			t.Fatal(err)
		}
		for _, readOnly := range []bool{false, true} {
			s, err := bolt.Open(dir, bolt.Options{ReadOnly: readOnly})
			if err == nil {
				s.Close()
				t.Fatalf("existing target %v, read-only %v: a symlinked database file was opened", existing, readOnly)
			}
			if !strings.Contains(err.Error(), "symlink") || !strings.Contains(err.Error(), target) {
				t.Errorf("error %v does not say the file is a symlink to %s", err, target)
			}
		}
		fi, err := os.Stat(target)
		switch {
		case existing && (err != nil || fi.Mode().Perm() != 0o644 || fi.Size() != int64(len("someone else's file"))):
			t.Errorf("the symlink's target changed: %v %v", fi, err)
		case !existing && !errors.Is(err, fs.ErrNotExist):
			t.Errorf("the symlink's target was created: %v", err)
		}
	}
}
