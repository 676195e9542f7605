package main

import (
	"os/exec"
	"path/filepath"
	"testing"
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
