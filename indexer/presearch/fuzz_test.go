package presearch

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// bodyTransport answers every request with one status and body, without a
// network.
type bodyTransport struct {
	code int
	body []byte
}

func (b *bodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: b.code, Header: http.Header{"Retry-After": {"7"}},
		Body: io.NopCloser(bytes.NewReader(b.body)), Request: req}, nil
}

// FuzzStatusResponse feeds arbitrary answers of the node status API
// through the source's whole reading of a response: decoding, node status
// snapshots and connection events, and period rewards. Whatever the API
// sends, the outcome is an error or records the store accepts (valid JSON
// details, integer amounts), and no error or record holds the API key.
func FuzzStatusResponse(f *testing.F) {
	const key = "fuzz+API/key=42"
	seeds := []struct {
		code int
		body string
	}{
		{200, `{"success":true,"start_at":"2026-11-01T00:00:00Z","end_at":"2026-11-01T01:00:00Z","nodes":{"MFkw+a/b==":{"meta":{"description":"n1","url":null,"gateway_pool":"production","remote_addr":"192.0.2.1","version":"1.2.31","is_provisioned":true},"status":{"connected":true,"blocked":false,"in_current_state_since":"2026-10-31T22:13:00Z","minutes_in_current_state":107},"period":{"period_start_date":"2026-11-01 00:00","total_pre_earned":28.69725493086953,"uptime_percentage":100}}}}`},
		{200, `{"success":true,"nodes":{"k":{"meta":null,"status":{"connected":false,"in_current_state_since":null},"period":{"total_pre_earned":null}}}}`},
		{200, `{"success":true,"nodes":{"k":{"status":{"connected":true},"period":{"total_pre_earned":"1e-7"}}}}`},
		{200, `{"success":true,"nodes":{"k":{"period":{"total_pre_earned":-0.5}}}}`},
		{200, `{"success":true,"nodes":[]}`},
		{200, `{"success":false,"message":"key fuzz+API/key=42 is wrong"}`},
		{200, `{"success":true,"nodes":{"":{}}}`},
		{200, `{"success":true,"nodes":{"k":{"period":{"total_pre_earned":1e99999}}}}`},
		{200, `<html>fuzz+API/key=42</html>`},
		{500, `upstream error for /api/nodes/status/fuzz+API/key=42`},
		{401, `{"message":"invalid"}`},
		{429, ``},
		{200, ``},
	}
	for _, s := range seeds {
		f.Add(s.code, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, code int, body []byte) {
		if code < 100 || code > 599 {
			return
		}
		now := time.Date(2026, 11, 1, 10, 17, 0, 0, time.UTC)
		cfg := DefaultConfig()
		cfg.Name, cfg.BaseURL, cfg.APIKey = "pre", "http://127.0.0.1:1", key
		cfg.HTTPClient = &http.Client{Transport: &bodyTransport{code, body}}
		cfg.Now = func() time.Time { return now }
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		noKey := func(what, text string) {
			for _, k := range []string{key, url.PathEscape(key), url.QueryEscape(key)} {
				if strings.Contains(text, k) {
					t.Fatalf("%s shows the API key: %s", what, text)
				}
			}
		}
		w := window{now.Truncate(time.Hour).Add(-time.Hour), now.Truncate(time.Hour)}
		a, err := s.fetch(context.Background(), statusQuery{stats: true, start: w.start, end: w.end})
		nodes := a.nodes
		if err != nil {
			noKey("error", err.Error())
			return
		}
		snaps, events, bad := s.observe(now, nodes, map[string]nodeMark{"k": {Digest: "x"}})
		for _, b := range append(a.bad, bad...) {
			noKey("rejected node", b.reason+string(b.raw))
		}
		for _, n := range snaps {
			if n.Node == "" || (len(n.Details) > 0 && !json.Valid(n.Details)) {
				t.Fatalf("snapshot %+v", n)
			}
		}
		for _, e := range events {
			if e.Type == "" || (len(e.Payload) > 0 && !json.Valid(e.Payload)) {
				t.Fatalf("event %+v", e)
			}
		}
		for _, n := range nodes {
			r, ok, err := periodReward(n, w)
			if err != nil {
				noKey("error", err.Error())
				continue
			}
			if !ok {
				continue
			}
			if _, isInt := new(big.Int).SetString(r.RawAmount, 10); !isInt || !json.Valid(r.Details) || r.Account == "" {
				t.Fatalf("reward %+v", r)
			}
		}
	})
}

// FuzzParseAmount checks the exact decimal reader against big.Rat: what
// it accepts is exactly the number the text says, in 10^-18 units, never
// negative and never rounded.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"28.69725493086953", "0", "-0.5", "1e-7", "1E18", "0.0000000000000000005", "+.5", "5.", ".", "1e65", "1e-64", "00012.3400", "--1", "1e", "0x10", " 7 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseAmount(s, preDecimals)
		if err != nil {
			return
		}
		r, ok := new(big.Rat).SetString(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "+")))
		if !ok {
			t.Fatalf("%q accepted as %s, but it is not a number", s, n)
		}
		r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(preDecimals), nil)))
		if r.Sign() < 0 || !r.IsInt() {
			t.Fatalf("%q accepted as %s, but it is %s units", s, n, r.RatString())
		}
		if r.Num().Cmp(n) != 0 {
			t.Fatalf("%q parsed as %s, want %s", s, n, r.Num())
		}
	})
}
