package httpapi

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/storetest"
)

// TestBackup restores the served copy and reads the same data from it.
func TestBackup(t *testing.T) {
	e := newBoltEnv(t, withToken("backup-token"))
	r := e.getOK("/v1/admin/backup")
	if r.header.Get("Content-Type") != "application/octet-stream" ||
		r.header.Get("Content-Disposition") != `attachment; filename="evindex-20261123T100000Z.db"` {
		t.Fatalf("backup headers %v", r.header)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, bolt.FileName), r.body, 0o600); err != nil {
		t.Fatal(err)
	}
	copied, err := bolt.Open(dir, bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	defer copied.Close()
	ctx := context.Background()
	if err := copied.Check(ctx); err != nil {
		t.Fatalf("backup integrity: %v", err)
	}
	want, _ := e.st.Sources(ctx)
	got, err := copied.Sources(ctx)
	if err != nil || len(got) != len(want) {
		t.Fatalf("backup sources %v (%v), want %v", got, err, want)
	}
	for i := range want {
		if got[i].Events != want[i].Events || got[i].Rewards != want[i].Rewards || got[i].Blocks != want[i].Blocks ||
			got[i].Checkpoint == nil || got[i].Checkpoint.Height != want[i].Checkpoint.Height {
			t.Fatalf("backup source %+v, want %+v", got[i], want[i])
		}
	}
}

// TestBackupWithoutHotBackup: a backend that cannot copy itself (only
// the Store contract, as a shared database offers) answers 501 and says
// why, rather than failing as an internal error.
func TestBackupWithoutHotBackup(t *testing.T) {
	st := storetest.MustOpen(t)
	fill(t, st)
	e := newEnvStore(t, struct{ store.Store }{st}, withToken("backup-token"))
	r := e.get("/v1/admin/backup", "Authorization", "Bearer backup-token")
	if r.status != 501 || !strings.Contains(string(r.body), "not_implemented") || !strings.Contains(string(r.body), "no hot backup") {
		t.Fatalf("backup on a store without Backup: %d %s", r.status, r.body)
	}
}

// TestRequestLogOmitsQuery checks that the request log names the route and
// path but never a query string, which may carry values a user would not
// want in a log.
func TestRequestLogOmitsQuery(t *testing.T) {
	e := newEnv(t)
	e.getOK("/v1/events?limit=1&address=SECRETISH-VALUE")
	e.get("/v1/blocks/flow-main/1?api_key=SECRETISH-VALUE")
	logs := e.logs.String()
	if strings.Contains(logs, "SECRETISH-VALUE") {
		t.Fatalf("query string logged:\n%s", logs)
	}
	if !strings.Contains(logs, `"route":"/v1/events"`) || !strings.Contains(logs, `"route":"/v1/blocks/{source}/{height}"`) ||
		!strings.Contains(logs, `"status":400`) || !strings.Contains(logs, `"request_id"`) {
		t.Fatalf("request log lacks route, status or request id:\n%s", logs)
	}
}
