package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/evindex/evindex/store/bolt"
)

func runBackupCmd(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "backup", "--url URL -o FILE",
		"Copies a consistent snapshot of a running evindex's database to FILE while it keeps ingesting.\n"+
			"The copy is checked before it is kept. To restore: stop evindex, put FILE in the data dir as evindex.db.")
	base := fs.String("url", "http://127.0.0.1:8080", "base URL of the running evindex")
	out := fs.String("o", "", "output file (required)")
	token := fs.String("token", "", "bearer token (default $EVINDEX_TOKEN)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("backup: -o FILE is required")
	}
	if *token == "" {
		*token = e.getenv("EVINDEX_TOKEN")
	}
	u, err := apiURL("backup", *base, "/v1/admin/backup")
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("backup: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if err := expectType("backup", u, resp, "application/octet-stream"); err != nil {
		return err
	}
	// Download into a private temp dir as evindex.db, check it, then move
	// it into place: a failed or partial download never replaces FILE.
	tmpDir, err := os.MkdirTemp(filepath.Dir(*out), ".evindex-backup-")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, bolt.FileName)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	n, err := io.Copy(f, resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup: download: %w", err)
	}
	st, err := bolt.Open(tmpDir, bolt.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("backup: the copy does not open: %w", err)
	}
	cerr := st.Check(ctx)
	st.Close()
	if cerr != nil {
		return fmt.Errorf("backup: the copy is not sound: %w", cerr)
	}
	if err := os.Rename(tmp, *out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(e.stdout, "backup: %s (%d bytes, checked)\n", *out, n)
	return nil
}
