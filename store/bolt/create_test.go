package bolt_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	migrations "github.com/evindex/evindex/migrations/bolt"
	"github.com/evindex/evindex/store/bolt"
)

// TestCreationInterruptedLeavesNoFile: a process killed while creating a new
// database leaves only the temporary file, never evindex.db without a schema,
// so `evindex check` (a read-only open) after such a kill reports a missing
// file rather than "schema version 0 is older than N", and the next start
// creates the file afresh.
func TestCreationInterruptedLeavesNoFile(t *testing.T) {
	dir := t.TempDir()
	// What a kill between creating and migrating left behind: a bbolt file
	// with no schema under the temporary name.
	if err := os.WriteFile(filepath.Join(dir, bolt.FileName+".new"), []byte("half written"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := bolt.Open(dir, bolt.Options{ReadOnly: true})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read-only open after an interrupted creation: %v, want a missing file", err)
	}

	st, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatalf("open after an interrupted creation: %v", err)
	}
	if v := st.SchemaVersion(); v != migrations.Latest() {
		t.Fatalf("schema version %d, want %d", v, migrations.Latest())
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, bolt.FileName+".new")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temporary file left after creation: %v", err)
	}
	ro, err := bolt.Open(dir, bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open of a created file: %v", err)
	}
	ro.Close()
}

// TestEmptyFileBecomesADatabase: an empty evindex.db (created by hand, or by
// a crash of an older build) is initialized with the whole schema at once.
func TestEmptyFileBecomesADatabase(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, bolt.FileName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if v := st.SchemaVersion(); v != migrations.Latest() {
		t.Fatalf("schema version %d, want %d", v, migrations.Latest())
	}
}
