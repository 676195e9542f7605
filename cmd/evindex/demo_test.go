package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGitIgnoresDemoLeftovers checks that what the README's commands
// leave in a checkout (the demo's default data dir, a built evindex) is
// ignored, so a `git add -A` never commits a database.
func TestGitIgnoresDemoLeftovers(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if exec.Command(git, "-C", root, "rev-parse", "--git-dir").Run() != nil {
		t.Skip("not a git checkout")
	}
	for _, path := range []string{"evindex-demo/evindex.db", "evindex-demo/demo.json", "evindex", "cmd/evindex/evindex.test"} {
		// check-ignore exits 0 when the path is ignored, 1 when not.
		if err := exec.Command(git, "-C", root, "check-ignore", "-q", "--no-index", path).Run(); err != nil {
			t.Errorf("%s is not ignored by .gitignore (%v)", path, err)
		}
	}
	for _, path := range []string{"cmd/evindex/main.go", "README.md"} {
		if exec.Command(git, "-C", root, "check-ignore", "-q", "--no-index", path).Run() == nil {
			t.Errorf("%s is ignored", path)
		}
	}
}

// TestDemoStateRefusesAnOlderHistory: a data dir made by a demo whose
// simulated history had another shape is refused, naming the dir, instead
// of resumed into a different chain; the demo's own state resumes.
func TestDemoStateRefusesAnOlderHistory(t *testing.T) {
	dir := t.TempDir()
	started := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	s, err := loadDemoState(dir, started)
	if err != nil || !s.Started.Equal(started) {
		t.Fatalf("first start: %+v, %v", s, err)
	}
	if s, err = loadDemoState(dir, started.Add(time.Hour)); err != nil || !s.Started.Equal(started) {
		t.Fatalf("restart: %+v, %v, want the first start kept", s, err)
	}
	old := filepath.Join(t.TempDir(), "old")
	if err := os.MkdirAll(old, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, "demo.json"), []byte(`{"started":"2026-11-30T10:00:00Z"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = loadDemoState(old, started)
	if err == nil || !strings.Contains(err.Error(), "made by an older evindex demo") || !strings.Contains(err.Error(), old) {
		t.Fatalf("an older demo's state: %v", err)
	}
}
