package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportAndBackupRefuseWhatIsNotTheirData points export and backup at
// URLs that answer something else: a base URL with a query or fragment is
// a usage error, an answer of the wrong content type (the dashboard's
// HTML) is an error naming it, and a failed transfer leaves neither a half
// file nor a damaged earlier one.
func TestExportAndBackupRefuseWhatIsNotTheirData(t *testing.T) {
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<!doctype html><title>evindex</title>"))
	}))
	defer html.Close()
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Content-Length", "100000")
		w.Write([]byte(`{"source":"a"}` + "\n"))
	}))
	defer cut.Close()

	dir := t.TempDir()
	out := filepath.Join(dir, "e.parquet")
	const earlier = "an earlier export, whole"
	if err := os.WriteFile(out, []byte(earlier), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"QueryInBase", []string{"export", "--url", html.URL + "/?x=1", "--format", "parquet", "-o", out, "rewards"}, 2, "no query or fragment"},
		{"FragmentInBase", []string{"export", "--url", html.URL + "/#top", "--format", "parquet", "-o", out, "rewards"}, 2, "no query or fragment"},
		{"HTMLAnswer", []string{"export", "--url", html.URL, "--format", "parquet", "-o", out, "rewards"}, 1, "answered text/html"},
		{"CutShort", []string{"export", "--url", cut.URL, "--format", "ndjson", "-o", out, "rewards"}, 1, "stopped part way"},
		{"BackupQueryInBase", []string{"backup", "--url", html.URL + "/?x=1", "-o", out}, 2, "no query or fragment"},
		{"BackupHTMLAnswer", []string{"backup", "--url", html.URL, "-o", out}, 1, "answered text/html"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			err := run(t.Context(), tt.args, noEnv, &stdout, &stderr)
			code := exitCode(err, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.says) || strings.Contains(stderr.String(), "corrupt") {
				t.Fatalf("exit %d, stderr %q; want exit %d saying %q", code, stderr.String(), tt.code, tt.says)
			}
			if got, _ := os.ReadFile(out); string(got) != earlier {
				t.Fatalf("the earlier file now holds %.100q", got)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
				t.Fatalf("left behind: %v", left)
			}
		})
	}
}
