package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

// stalledGet sends a GET on a raw connection, reads the status line and
// then stops reading, as a client on a slow link does. The caller closes
// the connection.
func stalledGet(t *testing.T, addr, path string) (net.Conn, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		t.Fatalf("GET %s: %v", path, err)
	}
	return c, strings.TrimSpace(line)
}

// bigStore holds enough rows that an unread export or backup fills the
// socket buffers and its handler waits on the client: 60,000 events, about
// 30 MB of ndjson.
func bigStore(t *testing.T) store.Store {
	st := storetest.MustOpen(t)
	for from := uint64(flowFrom); from < flowFrom+20_000; from += 2_000 {
		if err := st.Apply(context.Background(), flowBatch(from, from+1_999)); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// TestStreamedExportsAreCapped holds as many ndjson exports open as the cap
// allows, with clients that stop reading: the next export is refused with
// 429 and Retry-After, JSON pages are still served, and once a client goes
// away its slot serves the next export.
func TestStreamedExportsAreCapped(t *testing.T) {
	e := newEnvStore(t, bigStore(t), func(c *Config) { c.MaxStreams = 2 })
	addr := e.srv.Listener.Addr().String()
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range 2 {
		c, status := stalledGet(t, addr, "/v1/events?format=ndjson")
		held = append(held, c)
		if !strings.Contains(status, " 200 ") {
			t.Fatalf("export %d: %s", i, status)
		}
	}
	for _, q := range []string{"format=ndjson", "format=csv", "format=parquet"} {
		r := e.get("/v1/events?" + q)
		if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" ||
			!strings.Contains(string(r.body), `"code":"too_many_requests"`) {
			t.Fatalf("%s past the cap: status %d, Retry-After %q: %.200s", q, r.status, r.header.Get("Retry-After"), r.body)
		}
	}
	if r := e.get("/v1/rewards", "Accept", "text/csv"); r.status != http.StatusTooManyRequests {
		t.Fatalf("csv by Accept past the cap: status %d", r.status)
	}
	e.getOK("/v1/events?limit=10")
	e.getOK("/v1/sources")

	held[0].Close()
	held = held[1:]
	// The handler notices the closed connection at its next write; the
	// loop is bounded and ends as soon as the slot is free.
	for i := 0; ; i++ {
		r := e.get("/v1/rewards?format=ndjson")
		if r.status == http.StatusOK {
			break
		}
		if r.status != http.StatusTooManyRequests || i == 10_000 {
			t.Fatalf("after a client left: status %d: %.200s", r.status, r.body)
		}
	}
}

// TestBackupsAreCapped holds one backup open past the cap of one.
func TestBackupsAreCapped(t *testing.T) {
	e := newEnvStore(t, bigStore(t), func(c *Config) { c.MaxBackups = 1 })
	c, status := stalledGet(t, e.srv.Listener.Addr().String(), "/v1/admin/backup")
	defer c.Close()
	if !strings.Contains(status, " 200 ") {
		t.Fatalf("first backup: %s", status)
	}
	if r := e.get("/v1/admin/backup"); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("second backup: status %d: %.200s", r.status, r.body)
	}
}

// TestHeadBackupCopiesNothing asks for the backup's headers only: they are
// the backup's, and no copy is made.
func TestHeadBackupCopiesNothing(t *testing.T) {
	e := newBoltEnv(t)
	req, _ := http.NewRequest(http.MethodHead, e.srv.URL+"/v1/admin/backup", nil)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("HEAD backup: status %d, headers %v", res.StatusCode, res.Header)
	}
	if strings.Contains(e.logs.String(), "backup served") {
		t.Fatalf("HEAD made a backup:\n%s", e.logs.String())
	}
	e.getOK("/v1/admin/backup")
	if !strings.Contains(e.logs.String(), "backup served") {
		t.Fatal("the log says nothing of a GET backup; the HEAD check above proves nothing")
	}
}

// TestRepeatedValuesAreCapped sends more values of a repeatable parameter
// than a query merges: a 400 naming it, before any work.
func TestRepeatedValuesAreCapped(t *testing.T) {
	e := newEnv(t)
	q := url.Values{}
	for i := range 1200 {
		q.Add("type", fmt.Sprintf("A.%016x.C.E", i))
	}
	r := e.get("/v1/events?" + q.Encode())
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"message":"type: at most 100 values"`) {
		t.Fatalf("1200 types: status %d: %s", r.status, r.body)
	}
	accounts := strings.Repeat("a,", 101)
	if r := e.get("/v1/rewards?account=" + accounts); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "account: at most") {
		t.Fatalf("101 accounts in one value: status %d: %s", r.status, r.body)
	}
	q = url.Values{}
	for i := range 100 {
		q.Add("type", fmt.Sprintf("A.%016x.C.E", i))
	}
	e.getOK("/v1/events?" + q.Encode())
}
