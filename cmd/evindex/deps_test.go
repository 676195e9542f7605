package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryDoesNotLinkTesting keeps test helpers out of the evindex binary:
// a non-test file that imports testing (or a package that does, like
// store/storetest) adds the testing package and its flags to what we ship.
func TestBinaryDoesNotLinkTesting(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go command not on PATH: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "testing" || strings.HasSuffix(pkg, "/storetest") {
			t.Errorf("evindex links %s; only _test.go files may import it", pkg)
		}
	}
}
