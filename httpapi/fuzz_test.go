package httpapi

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/store/storetest"
)

// fuzzRoutes are the routes that read parameters; {a} and {b} take the
// fuzzed path values.
var fuzzRoutes = []string{
	"/v1/events", "/v1/blocks", "/v1/rewards", "/v1/rewards/summary", "/v1/nodes", "/v1/sources",
	"/v1/sources/{a}", "/v1/sources/{a}/coverage", "/v1/blocks/{a}/{b}", "/v1/nodes/{a}/{b}/history",
}

// paramMessage is how every 400 begins: the parameter's name.
var paramMessage = regexp.MustCompile(`^([a-z_]+): `)

// fuzzServer serves the fixture store in memory.
func fuzzServer(f *testing.F) http.Handler {
	st := storetest.MustOpen(f)
	fill(f, st)
	return New(Config{Store: st, Logger: zerolog.Nop(), Now: func() time.Time { return testNow }}).Handler()
}

// serveFuzz sends one GET and checks the answer a client relies on: never
// a 5xx; a 400 says which parameter is wrong; a JSON answer is JSON.
func serveFuzz(t *testing.T, h http.Handler, path, rawQuery string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.URL = &url.URL{Path: path, RawQuery: rawQuery}
	req.RequestURI = req.URL.RequestURI()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	body := w.Body.String()
	if w.Code >= 500 {
		t.Fatalf("GET %s?%s: %d %s", path, rawQuery, w.Code, body)
	}
	ct := w.Header().Get("Content-Type")
	if strings.HasPrefix(ct, "application/json") && !json.Valid(w.Body.Bytes()) {
		t.Fatalf("GET %s?%s: %d with a JSON type and a body that is not JSON: %q", path, rawQuery, w.Code, body)
	}
	if w.Code == http.StatusBadRequest {
		var e struct{ Error errorDetail }
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code != "invalid_argument" {
			t.Fatalf("GET %s?%s: 400 body %q", path, rawQuery, body)
		}
		// Unknown parameters have any name the query gave them: the
		// param field names it and the message starts with it.
		named := e.Error.Param != "" && strings.HasPrefix(e.Error.Message, e.Error.Param+": ")
		if !named && !paramMessage.MatchString(e.Error.Message) {
			t.Fatalf("GET %s?%s: the 400 %q does not name a parameter", path, rawQuery, e.Error.Message)
		}
		return w.Code, e.Error.Message
	}
	if w.Code != http.StatusOK && w.Code != http.StatusNotFound {
		t.Fatalf("GET %s?%s: unexpected status %d %s", path, rawQuery, w.Code, body)
	}
	return w.Code, ""
}

func routePath(route uint8, a, b string) string {
	p := fuzzRoutes[int(route)%len(fuzzRoutes)]
	p = strings.Replace(p, "{a}", url.PathEscape(a), 1)
	return strings.Replace(p, "{b}", url.PathEscape(b), 1)
}

// FuzzQueryParams sends arbitrary query strings and path values to every
// route that reads them.
func FuzzQueryParams(f *testing.F) {
	seeds := []string{
		"", "limit=1", "limit=0", "limit=1001", "limit=-1", "limit=1e3", "from_height=1000&to_height=1005",
		"from_height=18446744073709551615", "from_height=18446744073709551616", "to_height=5&from_height=10",
		"order=desc&limit=3", "order=DESC", "format=csv", "format=ndjson&limit=2", "format=parquet&limit=1", "format=xml",
		"source=flow-main&type=A.1654653399040a61.FlowToken.TokensDeposited,x&type=y", "address=0xF8D6E0586B0A20C7",
		"tx_id=0x7A", "account=" + flowNodeA + "&account=" + smCoinbase, "from_time=2026-11-01&to_time=2026-11-02T00:00:00Z",
		"from_time=2026-11-02&to_time=2026-11-01", "from_time=9999-12-31T23:59:59Z", "from_time=0000-01-01T00:00:00Z",
		"group_by=week&tz=Europe/Berlin", "group_by=epoch&source=sm-node", "group_by=epoch", "tz=Local", "tz=../../etc/passwd",
		"tz=America/St_Johns&group_by=month", "cursor=ZQ", "cursor=%ff", "limit=%", "a=b;c=d", "%zz", "&&&=&=", "format=json&format=csv",
	}
	for i, q := range seeds {
		f.Add(uint8(i), q, "flow-main", "1000")
	}
	f.Add(uint8(8), "", "sm-node", "80700")
	f.Add(uint8(9), "from_time=bad", "presearch", preNodeA)
	f.Add(uint8(6), "", "no-such-source", "")
	f.Add(uint8(8), "", "flow-main", "-1")
	h := fuzzServer(f)
	f.Fuzz(func(t *testing.T, route uint8, query, a, b string) {
		serveFuzz(t, h, routePath(route, a, b), query)
	})
}

// FuzzCursor sends arbitrary cursors, and real cursors of other lists, to
// every paged list: each is a page or a 400 naming the cursor.
func FuzzCursor(f *testing.F) {
	h := fuzzServer(f)
	lists := []string{"/v1/events?limit=3", "/v1/blocks?limit=3", "/v1/rewards?limit=3", "/v1/nodes/presearch/" + url.PathEscape(preNodeA) + "/history?limit=3",
		"/v1/events?limit=3&order=desc", "/v1/rewards?limit=3&account=" + flowNodeA, "/v1/events?limit=3&type=" + rewardsType}
	for i, l := range lists {
		path, q, _ := strings.Cut(l, "?")
		req := httptest.NewRequest(http.MethodGet, path+"?"+q, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		var p struct {
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.NextCursor == "" {
			f.Fatalf("%s: no cursor (%v): %s", l, err, w.Body.String())
		}
		for j := range lists {
			f.Add(uint8(j), p.NextCursor)
		}
		f.Add(uint8(i), p.NextCursor+"A")
		f.Add(uint8(i), p.NextCursor[:len(p.NextCursor)/2])
	}
	for _, c := range []string{"", "ZQ", "cg", "bg", "!", "ZQAAAAAAAAAAAAAAAAAAAAAA", "ZWZsb3ctbWFpbgA"} {
		f.Add(uint8(0), c)
	}
	f.Fuzz(func(t *testing.T, list uint8, cursor string) {
		l := lists[int(list)%len(lists)]
		path, q, _ := strings.Cut(l, "?")
		for _, format := range []string{"json", "ndjson"} {
			code, msg := serveFuzz(t, h, path, q+"&format="+format+"&cursor="+url.QueryEscape(cursor))
			if code == http.StatusBadRequest && !strings.HasPrefix(msg, "cursor: ") {
				t.Fatalf("%s with cursor %q: 400 %q does not blame the cursor", l, cursor, msg)
			}
		}
	})
}

// FuzzHostAndAuthorization sends arbitrary Host and Authorization headers
// to a server with a token, as requests arriving on a loopback address:
// never a 5xx; data only for a loopback or allowed Host with the right
// token (checked against url's own host parsing, not the server's); a
// refused Host is a 421 JSON error that never repeats the token.
func FuzzHostAndAuthorization(f *testing.F) {
	const token = "fuzz-t0ken-0123456789"
	st := storetest.MustOpen(f)
	fill(f, st)
	h := New(Config{Store: st, Token: token, AllowedHosts: []string{"evindex.example.org"}, Logger: zerolog.Nop(),
		Now: func() time.Time { return testNow }}).Handler()
	for _, host := range []string{"127.0.0.1:8080", "localhost", "[::1]:8080", "attacker.example:8080", "evindex.example.org",
		"EVINDEX.EXAMPLE.ORG.:443", "127.0.0.1.nip.io", "localhost:http", "[::ffff:127.0.0.1]:80", "0x7f.1", "127.1", "", " ", "a@127.0.0.1"} {
		for _, auth := range []string{"Bearer " + token, "bearer  " + token + " ", "Bearer " + token + "x", "Basic " + token, "", "Bearer\t" + token} {
			f.Add(host, auth, uint8(len(host)))
		}
	}
	loopback := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	paths := []string{"/v1/sources", "/healthz", "/v1/events?limit=1", "/metrics"}
	f.Fuzz(func(t *testing.T, host, auth string, route uint8) {
		path := paths[int(route)%len(paths)]
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, net.Addr(loopback)))
		req.Host = host
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		body := w.Body.String()
		if w.Code >= 500 {
			t.Fatalf("Host %q, Authorization %q: %d %s", host, auth, w.Code, body)
		}
		if strings.Contains(body, token) {
			t.Fatalf("Host %q, Authorization %q: the answer shows the token", host, auth)
		}
		if w.Code == http.StatusMisdirectedRequest {
			var e struct{ Error errorDetail }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code != "misdirected_request" {
				t.Fatalf("Host %q: 421 body %q", host, body)
			}
			return
		}
		// Served: the Host named loopback or the allowed name, by url's parsing.
		u, err := url.Parse("http://" + host + "/")
		name := ""
		if err == nil && u.User == nil && u.Host == host {
			name = strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
		}
		ip, ipErr := netip.ParseAddr(name)
		if name != "localhost" && name != "evindex.example.org" && (ipErr != nil || !ip.Unmap().IsLoopback() || ip.Zone() != "") {
			t.Fatalf("Host %q (name %q) was answered %d, not refused", host, name, w.Code)
		}
		if path == "/healthz" || w.Code == http.StatusUnauthorized {
			return
		}
		// Data: the right token, by the header's words.
		words := strings.Fields(auth)
		if w.Code == http.StatusOK && (len(words) != 2 || !strings.EqualFold(words[0], "bearer") || words[1] != token) {
			t.Fatalf("Authorization %q was answered 200", auth)
		}
	})
}
