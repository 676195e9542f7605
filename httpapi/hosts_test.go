package httpapi

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestLoopbackServesOnlyLoopbackHosts sends requests to a loopback listener
// under Host names a DNS-rebinding page would use and under the names a
// user or a configured proxy would: only the latter are served, and the
// backup is never sent to the former.
func TestLoopbackServesOnlyLoopbackHosts(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AllowedHosts = []string{"Evindex.Proxy.Example"} })
	port := e.srv.Listener.Addr().String()[strings.LastIndex(e.srv.Listener.Addr().String(), ":"):]
	for _, tt := range []struct {
		host string
		ok   bool
	}{
		{"attacker.example" + port, false},
		{"attacker.example", false},
		{"127.0.0.1.attacker.example" + port, false},
		{"localhost.attacker.example", false},
		{"evindex.proxy.example.attacker" + port, false},
		{"10.0.0.1" + port, false},
		{"localhost" + port, true},
		{"LOCALHOST.", true},
		{"127.0.0.1" + port, true},
		{"127.0.0.1", true},
		{"[::1]" + port, true},
		{"[::1]", true},
		{"evindex.proxy.example" + port, true},
		{"EVINDEX.PROXY.EXAMPLE", true},
	} {
		for _, path := range []string{"/v1/admin/backup", "/v1/sources", "/healthz"} {
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
			req.Host = tt.host
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if tt.ok {
				want := http.StatusOK
				if path == "/v1/admin/backup" {
					want = e.backupStatus()
				}
				if res.StatusCode != want {
					t.Errorf("Host %q %s: status %d, want %d: %.200s", tt.host, path, res.StatusCode, want, body)
				}
				continue
			}
			if res.StatusCode != http.StatusMisdirectedRequest || res.Header.Get("Content-Type") != "application/json" ||
				!strings.Contains(string(body), `"code":"misdirected_request"`) || !strings.Contains(string(body), "http.allowed_hosts") {
				t.Errorf("Host %q %s: status %d %s, want a 421 JSON error: %.200s", tt.host, path, res.StatusCode, res.Header.Get("Content-Type"), body)
			}
		}
	}
}

// TestNormalizeHost covers the spellings of http.allowed_hosts entries.
func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"proxy.example":         "proxy.example",
		" Proxy.Example. ":      "proxy.example",
		"192.0.2.7":             "192.0.2.7",
		"[2001:db8::1]":         "2001:db8::1",
		"2001:db8::1":           "2001:db8::1",
		"proxy.example:443":     "",
		"https://proxy.example": "",
		"proxy.example/path":    "",
		"user@proxy.example":    "",
		"":                      "",
		"[2001:db8::1":          "",
	} {
		if got := NormalizeHost(in); got != want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}
