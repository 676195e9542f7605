// Package alerts evaluates alert rules on the stored data and delivers
// each firing and resolution to webhooks in the Alertmanager format.
package alerts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/evindex/evindex/indexer"
)

// Webhook is one receiver of alert notifications (alerts.webhooks[] of the
// config). Its URL, token and header may be secrets: they are sent to the
// receiver and nowhere else; logs and errors show Redacted.
type Webhook struct {
	// Name identifies the webhook in the outbox, in the payload's
	// receiver and in metric labels; DefaultName when the config has none.
	Name string
	// URL is where notifications are POSTed: http or https.
	URL string
	// TokenFile, when set, holds a bearer token sent as Authorization:
	// Bearer TOKEN. It is read before every request, so a rotated token
	// is used without a restart.
	TokenFile string
	// Header, when set, is one "Name: value" header sent with every
	// request (an API key header, or Authorization with another scheme).
	Header string
	// Timeout bounds one request, from dialling to the answer's status.
	Timeout time.Duration
}

// DefaultTimeout bounds a request when the config sets no timeout.
const DefaultTimeout = 10 * time.Second

// Errors of a webhook's configuration. None of them quotes the value,
// which may be a secret.
var (
	ErrBadURL    = errors.New("not an absolute http or https URL")
	ErrBadHeader = errors.New(`want one "Name: value" header`)
	ErrNoToken   = errors.New("holds no token")
)

// CheckURL reports whether raw can be a webhook's URL: absolute, http or
// https, with a host and without a fragment. The error never repeats raw.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Opaque != "":
		return ErrBadURL
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%w (the scheme is %s)", ErrBadURL, u.Scheme)
	case u.Hostname() == "":
		return fmt.Errorf("%w (no host)", ErrBadURL)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("%w (a #fragment is never sent)", ErrBadURL)
	}
	return nil
}

// reservedHeaders are set by the request itself: a configured header may
// not replace them.
var reservedHeaders = map[string]bool{
	"Host": true, "Content-Type": true, "Content-Length": true, "Transfer-Encoding": true,
	"Connection": true, "Te": true, "Upgrade": true, "Trailer": true, "Expect": true,
}

// ParseHeader splits a configured "Name: value" header. The error names
// the header (never its value) when it is one evindex sets itself.
func ParseHeader(h string) (name, value string, err error) {
	name, value, ok := strings.Cut(h, ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !ok || name == "" || value == "" || strings.ContainsAny(h, "\r\n") || !validHeaderName(name) {
		return "", "", ErrBadHeader
	}
	name = textproto.CanonicalMIMEHeaderKey(name)
	if reservedHeaders[name] {
		return "", "", fmt.Errorf("%w: %s is set by evindex itself", ErrBadHeader, name)
	}
	return name, value, nil
}

// validHeaderName reports whether s is an HTTP token (RFC 9110 5.1).
func validHeaderName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return s != ""
}

// ReadToken reads a bearer token file: its content without surrounding
// white space. The error names the file, never its content.
func ReadToken(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return "", fmt.Errorf("%s: %w", path, pe.Err)
		}
		return "", fmt.Errorf("%s: cannot be read", path)
	}
	tok := strings.TrimSpace(string(raw))
	if tok == "" || strings.ContainsAny(tok, "\r\n") {
		return "", fmt.Errorf("%s: %w (want the token alone on one line)", path, ErrNoToken)
	}
	return tok, nil
}

// DefaultName is a webhook's name when the config gives none: its URL's
// host and port, which carry no secret.
func DefaultName(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// WebhookNames are the names of hooks, in order: the receivers an alert
// transition writes an outbox row for.
func WebhookNames(hooks []Webhook) []string {
	names := make([]string, len(hooks))
	for i, h := range hooks {
		names[i] = h.Name
	}
	return names
}

// RedactedURL is the webhook's URL as logs and errors show it.
func (w Webhook) RedactedURL() string { return RedactURL(w.URL) }

// RedactURL is rawURL without what may be a secret: the user and password,
// every query value, and the path, which is where chat services put theirs
// (hooks.slack.com/services/T../B../SECRET, discord.com/api/webhooks/ID/SECRET,
// api.telegram.org/botTOKEN/...). Scheme, host and port stay, and the
// query's parameter names.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "(a URL that does not parse)"
	}
	var b strings.Builder
	b.WriteString(u.Scheme + "://")
	if u.User != nil {
		b.WriteString("REDACTED@")
	}
	b.WriteString(u.Host)
	if u.Path != "" && u.Path != "/" || u.RawPath != "" {
		b.WriteString("/REDACTED")
	} else {
		b.WriteString(u.Path)
	}
	if u.RawQuery != "" {
		q := u.Query()
		parts := make([]string, 0, len(q))
		for _, k := range slices.Sorted(maps.Keys(q)) {
			parts = append(parts, url.QueryEscape(k)+"=REDACTED")
		}
		b.WriteString("?" + strings.Join(parts, "&"))
	}
	return b.String()
}

// sender POSTs notifications to one webhook.
type sender struct {
	hook   Webhook
	client *http.Client
	// header is the configured header, parsed once.
	headerName, headerValue string

	mu        sync.Mutex
	lastToken string // the token file's last good content
}

// newSender prepares the requests of hook; client nil is a client that
// never follows redirects (a redirect would carry the token elsewhere).
func newSender(hook Webhook, client *http.Client) (*sender, error) {
	if err := CheckURL(hook.URL); err != nil {
		return nil, fmt.Errorf("webhook %s: url: %w", hook.Name, err)
	}
	s := &sender{hook: hook, client: client}
	if hook.Header != "" {
		var err error
		if s.headerName, s.headerValue, err = ParseHeader(hook.Header); err != nil {
			return nil, fmt.Errorf("webhook %s: header: %w", hook.Name, err)
		}
	}
	if s.client == nil {
		s.client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if s.hook.Timeout <= 0 {
		s.hook.Timeout = DefaultTimeout
	}
	return s, nil
}

// outcome is what one POST came to.
type outcome struct {
	// status is the answer's HTTP status, 0 when none came.
	status int
	// retryAfter is the receiver's Retry-After, when it sent a usable one.
	retryAfter    time.Duration
	hasRetryAfter bool
	// err is nil exactly when the receiver answered 2xx. Its text holds
	// the redacted URL only.
	err error
}

// maxRetryAfter caps the wait a receiver may ask for.
const maxRetryAfter = time.Hour

// post sends body once. The request is the one Alertmanager sends:
// POST, Content-Type: application/json.
func (s *sender) post(ctx context.Context, body []byte, now time.Time) outcome {
	ctx, cancel := context.WithTimeout(ctx, s.hook.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.hook.URL, bytes.NewReader(body))
	if err != nil {
		return outcome{err: fmt.Errorf("webhook %s: %w", s.hook.Name, ErrBadURL)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "evindex")
	if s.headerName != "" {
		req.Header.Set(s.headerName, s.headerValue)
	}
	if s.hook.TokenFile != "" {
		tok, err := s.token()
		if err != nil {
			return outcome{err: fmt.Errorf("webhook %s: token_file %w", s.hook.Name, err)}
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return outcome{err: s.transportError(err)}
	}
	// Read a little of the answer so the connection can be reused; its
	// content is not shown: a receiver may echo the request back.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	o := outcome{status: resp.StatusCode}
	o.retryAfter, o.hasRetryAfter = indexer.ParseRetryAfter(resp.Header.Get("Retry-After"), now, maxRetryAfter)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		o.err = fmt.Errorf("webhook %s: POST %s: %s: redirects are not followed (they would take the token along); set url to the final address",
			s.hook.Name, s.hook.RedactedURL(), resp.Status)
	default:
		o.err = fmt.Errorf("webhook %s: POST %s: %s", s.hook.Name, s.hook.RedactedURL(), resp.Status)
	}
	return o
}

// token is the token file's content, or its last good content when the
// file cannot be read now (a rotation in progress).
func (s *sender) token() (string, error) {
	tok, err := ReadToken(s.hook.TokenFile)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.lastToken != "" {
			return s.lastToken, nil
		}
		return "", err
	}
	s.lastToken = tok
	return tok, nil
}

// transportError is err without the request URL: net/http's *url.Error
// prints it whole, query and path included.
func (s *sender) transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		msg = fmt.Sprintf("no answer within %s", s.hook.Timeout)
	case errors.Is(err, context.Canceled):
		msg = "canceled"
	}
	return &redactedError{msg: fmt.Sprintf("webhook %s: POST %s: %s", s.hook.Name, s.hook.RedactedURL(), s.scrub(msg)), cause: err}
}

// scrub removes the URL's secret parts from text, in case a lower layer
// quoted them.
func (s *sender) scrub(text string) string {
	u, err := url.Parse(s.hook.URL)
	if err != nil {
		return text
	}
	secrets := []string{s.hook.URL, u.RawQuery, u.EscapedPath(), s.headerValue}
	if u.User != nil {
		secrets = append(secrets, u.User.String())
	}
	for _, v := range u.Query() {
		secrets = append(secrets, v...)
	}
	for _, sec := range secrets {
		if len(sec) > 1 {
			text = strings.ReplaceAll(text, sec, "REDACTED")
		}
	}
	return text
}

// redactedError keeps the cause for errors.Is while its text is redacted.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }

// Is matches the cancellation causes only: Unwrap would let a caller
// print the unredacted chain.
func (e *redactedError) Is(target error) bool {
	return (target == context.Canceled || target == context.DeadlineExceeded) && errors.Is(e.cause, target)
}
