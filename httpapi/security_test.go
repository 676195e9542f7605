package httpapi

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/store/storetest"
)

// TestServerTimeoutsAndLimits checks what bounds a client's hold on the
// server: a slow client cannot keep a connection open by trickling
// headers, an idle keep-alive is closed, ordinary responses have a write
// deadline, and the request line and headers have a size limit.
func TestServerTimeoutsAndLimits(t *testing.T) {
	srv := New(Config{Store: storetest.MustOpen(t), Logger: zerolog.Nop()}).httpServer()
	for name, c := range map[string]struct{ got, want any }{
		"ReadHeaderTimeout": {srv.ReadHeaderTimeout, readHeaderTimeout},
		"IdleTimeout":       {srv.IdleTimeout, idleTimeout},
		"WriteTimeout":      {srv.WriteTimeout, writeTimeout},
		"MaxHeaderBytes":    {srv.MaxHeaderBytes, maxHeaderBytes},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", name, c.got, c.want)
		}
	}
	if readHeaderTimeout <= 0 || idleTimeout <= 0 || writeTimeout <= 0 || maxHeaderBytes <= 0 || maxHeaderBytes > 1<<20 {
		t.Fatal("a limit is off")
	}
}

// TestOversizedRequests sends requests larger than the API accepts to a
// real listener: each is refused with a 4xx, and the server keeps
// answering ordinary requests.
func TestOversizedRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Store: storetest.MustOpen(t), Logger: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() {
		cancel()
		<-done
	}()
	base := "http://" + ln.Addr().String()
	big := strings.Repeat("a", 100<<10)
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
	}{
		{"HugeHeader", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"/v1/events", nil)
			r.Header.Set("X-Padding", big)
			return r
		}, http.StatusRequestHeaderFieldsTooLarge},
		{"HugeQuery", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"/v1/events?address="+big, nil)
			return r
		}, http.StatusRequestHeaderFieldsTooLarge},
		{"HugeBody", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"/v1/events", bytes.NewReader(make([]byte, 1<<20)))
			return r
		}, http.StatusRequestEntityTooLarge},
		{"HugeBodyOnAnUnknownRoute", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, base+"/v1/nothing", bytes.NewReader(make([]byte, 1<<20)))
			return r
		}, http.StatusRequestEntityTooLarge},
		{"Ordinary", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, base+"/v1/events?limit=5", nil)
			return r
		}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(tt.req())
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status == http.StatusRequestEntityTooLarge && !strings.Contains(string(body), "request body too large") {
				t.Fatalf("413 body %s", body)
			}
		})
	}
}

// TestTokenCheck covers the spellings of the Authorization header.
func TestTokenCheck(t *testing.T) {
	s := New(Config{Store: storetest.MustOpen(t), Token: "s3cret-token", Logger: zerolog.Nop()})
	for header, want := range map[string]bool{
		"Bearer s3cret-token":     true,
		"bearer s3cret-token":     true,
		"BEARER s3cret-token  ":   true,
		"Bearer  s3cret-token":    true,
		"":                        false,
		"Bearer":                  false,
		"Bearer ":                 false,
		"s3cret-token":            false,
		"Basic s3cret-token":      false,
		"Bearer s3cret-toke":      false,
		"Bearer s3cret-tokenn":    false,
		"Bearer S3CRET-TOKEN":     false,
		"Bearer s3cret-token\x00": false,
		"Bearer s3cret-token x":   false,
		"Token s3cret-token":      false,
	} {
		if got := s.tokenOK(header); got != want {
			t.Errorf("Authorization %q: accepted %v, want %v", header, got, want)
		}
	}
}
