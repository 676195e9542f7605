package alerts

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRedactURL keeps scheme, host, port and the query's names, and drops
// everything that may be a secret: user and password, query values, and
// the path where chat services put theirs.
func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://hooks.example.org", "https://hooks.example.org"},
		{"https://hooks.example.org/", "https://hooks.example.org/"},
		{"http://127.0.0.1:9000/hook", "http://127.0.0.1:9000/REDACTED"},
		{"https://bot:s3cret@hooks.example.org:8443/am?token=abc&room=ops", "https://REDACTED@hooks.example.org:8443/REDACTED?room=REDACTED&token=REDACTED"},
		{"https://hooks.slack.com/services/T000/B000/XXXXSECRET", "https://hooks.slack.com/REDACTED"},
		{"https://api.telegram.org/bot123:SECRET/sendMessage", "https://api.telegram.org/REDACTED"},
		{"https://h.example.org/%2Fsecret", "https://h.example.org/REDACTED"},
		{"not a url at all s3cret", "(a URL that does not parse)"},
		{"https://[::1:bad/s3cret", "(a URL that does not parse)"},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(RedactURL(tc.in), "ecret") {
			t.Errorf("RedactURL(%q) shows the secret", tc.in)
		}
	}
}

// TestCheckURLNeverQuotesIt refuses what cannot be a webhook URL with an
// error that does not repeat the URL.
func TestCheckURLNeverQuotesIt(t *testing.T) {
	for _, bad := range []string{"hooks.example.org/s3cret", "ftp://u:s3cret@h/x", "https:///s3cret", "https://h/x#s3cret", "mailto:s3cret@example.org", "http://h\x7f/s3cret", ""} {
		err := CheckURL(bad)
		if !errors.Is(err, ErrBadURL) {
			t.Errorf("CheckURL(%q) = %v, want ErrBadURL", bad, err)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("CheckURL(%q) quotes it: %v", bad, err)
		}
	}
	for _, good := range []string{"https://hooks.example.org/am", "http://127.0.0.1:9/x?token=1", "https://u:p@h.example.org"} {
		if err := CheckURL(good); err != nil {
			t.Errorf("CheckURL(%q) = %v", good, err)
		}
	}
}

// TestParseHeader takes "Name: value", canonicalises the name and
// refuses headers evindex sets itself, without quoting the value.
func TestParseHeader(t *testing.T) {
	name, value, err := ParseHeader("x-api-key:  s3cret ")
	if err != nil || name != "X-Api-Key" || value != "s3cret" {
		t.Fatalf("ParseHeader = %q, %q, %v", name, value, err)
	}
	for _, bad := range []string{"s3cret", "X-Key:", ": s3cret", "X Key: s3cret", "X-Key: s3\r\ncret", "Host: s3cret", "content-type: s3cret"} {
		_, _, err := ParseHeader(bad)
		if !errors.Is(err, ErrBadHeader) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ParseHeader(%q) = %v", bad, err)
		}
	}
}

// receiver is a test webhook receiver that records every request and
// answers with the function set last.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []*http.Request
	bodies []string
	// codes are the statuses answered, one per request.
	codes  []int
	answer func(w http.ResponseWriter)
}

func newReceiver(t *testing.T, answer func(w http.ResponseWriter)) *receiver {
	r := &receiver{answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, req)
		r.bodies = append(r.bodies, string(body))
		answer := r.answer
		r.mu.Unlock()
		cw := &codeWriter{ResponseWriter: w, code: http.StatusOK}
		answer(cw)
		r.mu.Lock()
		r.codes = append(r.codes, cw.code)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// setAnswer changes how the next requests are answered.
func (r *receiver) setAnswer(answer func(w http.ResponseWriter)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer = answer
}

// requests is how many requests came so far.
func (r *receiver) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// taken are the bodies answered with 2xx, in arrival order.
func (r *receiver) taken() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for i, c := range r.codes {
		if c >= 200 && c < 300 {
			out = append(out, r.bodies[i])
		}
	}
	return out
}

type codeWriter struct {
	http.ResponseWriter
	code int
}

func (w *codeWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// TestSenderPostsLikeAlertmanager sends one body with a token file and
// with a header, and checks the request: POST, JSON, the credentials.
// A rotated token file is read on the next request.
func TestSenderPostsLikeAlertmanager(t *testing.T) {
	rcv := newReceiver(t, func(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) })
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("first-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withToken, err := newSender(Webhook{Name: "pager", URL: rcv.srv.URL + "/am?key=1", TokenFile: tokenFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	withHeader, err := newSender(Webhook{Name: "chat", URL: rcv.srv.URL + "/chat", Header: "X-Api-Key: k-123"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"version":"4"}` + "\n")
	ctx := context.Background()
	if o := withToken.post(ctx, body, time.Now()); o.err != nil || o.status != 200 {
		t.Fatalf("post: %+v", o)
	}
	if err := os.WriteFile(tokenFile, []byte("second-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	if o := withToken.post(ctx, body, time.Now()); o.err != nil {
		t.Fatal(o.err)
	}
	if o := withHeader.post(ctx, body, time.Now()); o.err != nil {
		t.Fatal(o.err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.got) != 3 {
		t.Fatalf("%d requests", len(rcv.got))
	}
	for i, want := range []struct{ path, header, value string }{
		{"/am", "Authorization", "Bearer first-token"},
		{"/am", "Authorization", "Bearer second-token"},
		{"/chat", "X-Api-Key", "k-123"},
	} {
		r := rcv.got[i]
		if r.Method != http.MethodPost || r.URL.Path != want.path || r.Header.Get("Content-Type") != "application/json" ||
			r.Header.Get(want.header) != want.value || rcv.bodies[i] != string(body) {
			t.Errorf("request %d: %s %s %v %q", i, r.Method, r.URL, r.Header, rcv.bodies[i])
		}
	}
}

// TestSenderFailuresAreRedacted makes every kind of failure happen on a
// URL, token and header full of secrets and checks each error names the
// webhook and what happened, and shows none of them; a 503's Retry-After
// is read; a redirect is not followed.
func TestSenderFailuresAreRedacted(t *testing.T) {
	const secret = "S3CRET"
	rcv := newReceiver(t, func(w http.ResponseWriter) {})
	set := rcv.setAnswer
	u := strings.Replace(rcv.srv.URL, "http://", "http://bot:"+secret+"@", 1) + "/hook/" + secret + "?token=" + secret
	s, err := newSender(Webhook{Name: "pager", URL: u, Header: "X-Key: " + secret, Timeout: 300 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, o outcome, status int, contains string) {
		t.Helper()
		if o.err == nil || o.status != status {
			t.Fatalf("%s: %+v", what, o)
		}
		if msg := o.err.Error(); strings.Contains(msg, secret) || !strings.Contains(msg, "webhook pager") || !strings.Contains(msg, contains) {
			t.Errorf("%s: %q", what, msg)
		}
	}
	ctx := context.Background()
	now := time.Now()

	set(func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", "42")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	o := s.post(ctx, []byte("{}"), now)
	check("503", o, 503, "503 Service Unavailable")
	if !o.hasRetryAfter || o.retryAfter != 42*time.Second {
		t.Errorf("Retry-After: %+v", o)
	}

	set(func(w http.ResponseWriter) {
		w.Header().Set("Location", "http://elsewhere.example.org/")
		w.WriteHeader(http.StatusFound)
	})
	check("302", s.post(ctx, []byte("{}"), now), 302, "redirects are not followed")

	block := make(chan struct{})
	set(func(w http.ResponseWriter) { <-block })
	check("timeout", s.post(ctx, []byte("{}"), now), 0, "no answer within 300ms")
	close(block)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://bot:" + secret + "@" + ln.Addr().String() + "/x/" + secret + "?token=" + secret
	ln.Close()
	down, err := newSender(Webhook{Name: "pager", URL: refused}, nil)
	if err != nil {
		t.Fatal(err)
	}
	check("refused", down.post(ctx, []byte("{}"), now), 0, "connection refused")

	missing, err := newSender(Webhook{Name: "pager", URL: u, TokenFile: filepath.Join(t.TempDir(), "none")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	check("token file", missing.post(ctx, []byte("{}"), now), 0, "no such file")

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if o := s.post(canceled, []byte("{}"), now); !errors.Is(o.err, context.Canceled) || strings.Contains(o.err.Error(), secret) {
		t.Errorf("canceled: %v", o.err)
	}
}
