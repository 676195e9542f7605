package presearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// statusPath is the node status endpoint; the API key follows it.
// docs.presearch.io/nodes/api: GET /api/nodes/status/:api_key
const statusPath = "/api/nodes/status/"

// apiDate is the API's query date format (PHP "Y-m-d H:i", UTC).
const apiDate = "2006-01-02 15:04"

// maxBody bounds a response body; a key with thousands of nodes stays far
// below it.
const maxBody = 64 << 20

// defaultBlock is assumed when a 429 carries no usable Retry-After.
const defaultBlock = 15 * time.Minute

// Errors of the node status API.
var (
	// ErrKeyRejected is a 401 (or 403): the API key is wrong or revoked.
	ErrKeyRejected = errors.New("API key rejected")
	// ErrRateLimited is a 429: the key is blocked for a while.
	ErrRateLimited = errors.New("rate limited by the API")
)

// rateLimitedError is a 429 with the wait the API asked for.
type rateLimitedError struct{ after time.Duration }

func (e *rateLimitedError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", ErrRateLimited, e.after)
}
func (e *rateLimitedError) Unwrap() error { return ErrRateLimited }

// redactedError carries a transport error whose text was scrubbed of the
// API key. It unwraps only to context errors, so nothing that still
// contains the key can be reached through errors.Unwrap.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }

// statusQuery is one request's parameters.
type statusQuery struct {
	stats      bool
	start, end time.Time // only with stats
}

// apiResponse is the documented 200 body. Nodes stays raw because PHP
// encodes an empty map as [] and a missing one as null.
type apiResponse struct {
	Success *bool           `json:"success"`
	Nodes   json.RawMessage `json:"nodes"`
}

// apiNode keeps meta, status and period raw so unknown fields and nulls
// reach the stored details unchanged.
type apiNode struct {
	Meta   json.RawMessage `json:"meta"`
	Status json.RawMessage `json:"status"`
	Period json.RawMessage `json:"period"`
}

type apiStatus struct {
	Connected           *bool   `json:"connected"`
	InCurrentStateSince *string `json:"in_current_state_since"`
}

type apiPeriod struct {
	TotalPreEarned json.RawMessage `json:"total_pre_earned"`
}

// node is one entry of a response, in public-key order.
type node struct {
	key string
	apiNode
}

// requestURL is the full URL of a request. It contains the API key and
// must never be logged or put in an error.
func (s *Source) requestURL(q statusQuery) string {
	v := url.Values{}
	v.Set("stats", strconv.FormatBool(q.stats))
	// Both states and inactive nodes, so every node of the key is seen.
	v.Set("connected", "true")
	v.Set("disconnected", "true")
	v.Set("include_inactive", "true")
	if q.stats {
		v.Set("start_date", q.start.UTC().Format(apiDate))
		v.Set("end_date", q.end.UTC().Format(apiDate))
	}
	query := v.Encode()
	if len(s.cfg.PublicKeys) > 0 {
		// Each key escaped on its own, joined by literal commas: servers
		// that split before or after decoding read the same list.
		keys := make([]string, len(s.cfg.PublicKeys))
		for i, k := range s.cfg.PublicKeys {
			keys[i] = url.QueryEscape(k)
		}
		query += "&public_keys=" + strings.Join(keys, ",")
	}
	return strings.TrimRight(s.cfg.BaseURL, "/") + statusPath + url.PathEscape(s.apiKey) + "?" + query
}

// fetch sends one request and decodes the nodes of its answer. Errors never
// contain the API key; a 401 wraps ErrKeyRejected, a 429 is a
// *rateLimitedError.
func (s *Source) fetch(ctx context.Context, q statusQuery) ([]node, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.requestURL(q), nil)
	if err != nil {
		return nil, s.redact(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "evindex")
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, s.redact(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, s.redact(fmt.Errorf("read body: %w", err))
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%w (HTTP %d): check api_key", ErrKeyRejected, resp.StatusCode)
	case resp.StatusCode == http.StatusTooManyRequests:
		return nil, &rateLimitedError{after: retryAfter(resp.Header.Get("Retry-After"), s.cfg.Now())}
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, s.scrub(snippet(body)))
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("response larger than %d bytes", maxBody)
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	if r.Success != nil && !*r.Success {
		return nil, fmt.Errorf("API answered success=false: %s", s.scrub(snippet(body)))
	}
	nodes, err := decodeNodes(r.Nodes)
	if err != nil {
		return nil, fmt.Errorf("decode nodes: %w", err)
	}
	return nodes, nil
}

func decodeNodes(raw json.RawMessage) ([]node, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return nil, errors.New("response has no nodes object")
	}
	if bytes.Equal(t, []byte("null")) || bytes.Equal(t, []byte("[]")) {
		return nil, nil
	}
	var m map[string]apiNode
	if err := json.Unmarshal(t, &m); err != nil {
		return nil, err
	}
	out := make([]node, 0, len(m))
	for k, n := range m {
		if k == "" {
			return nil, errors.New("node with an empty public key")
		}
		out = append(out, node{key: k, apiNode: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, nil
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if secs, err := strconv.Atoi(h); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return defaultBlock
}

// redact turns a transport error into one without the key. net/http's
// *url.Error prints the full request URL, key included.
func (s *Source) redact(err error) error {
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = fmt.Sprintf("%s %s: %v", ue.Op, s.endpoint, ue.Err)
	}
	var cause error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		cause = context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		cause = context.Canceled
	}
	return &redactedError{msg: s.scrub(msg), cause: cause}
}

// scrub removes every spelling of the API key from text.
func (s *Source) scrub(text string) string {
	for _, k := range []string{s.apiKey, url.PathEscape(s.apiKey), url.QueryEscape(s.apiKey)} {
		if k != "" {
			text = strings.ReplaceAll(text, k, "<redacted>")
		}
	}
	return text
}

func snippet(body []byte) string {
	const max = 200
	s := strings.TrimSpace(string(body))
	if len(s) > max {
		s = s[:max] + "..."
	}
	if s == "" {
		s = "(empty body)"
	}
	return s
}
