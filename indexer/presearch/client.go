package presearch

import (
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

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/store"
)

// statusPath is the node status endpoint; the API key follows it.
// docs.presearch.io/nodes/api: GET /api/nodes/status/:api_key
const statusPath = "/api/nodes/status/"

// apiDate is the API's query date format (PHP "Y-m-d H:i", UTC).
const apiDate = "2006-01-02 15:04"

// maxBody bounds a response body; a key with thousands of nodes stays far
// below it. The body is decoded as a stream, one node at a time, so what
// is held is one node plus the nodes kept, never the whole body.
const maxBody = 32 << 20

// maxNodeBytes bounds one node's JSON object; a larger one is quarantined
// (its first bytes kept) instead of decoded.
const maxNodeBytes = 64 << 10

// MaxNodes bounds how many nodes one answer may add: an answer of 100,000
// nodes used to take the process past half a gigabyte. Nodes beyond it
// are not read; one rejected record per answer says how many there were.
const MaxNodes = 5000

// defaultBlock is assumed when a 429 carries no usable Retry-After.
const defaultBlock = 15 * time.Minute

// maxBlock caps any wait the API asks for: a Retry-After of 999999999
// seconds once made evindex wait until 2058, persisted across restarts.
const maxBlock = time.Hour

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

// node is one entry of a response, in public-key order. raw is its JSON
// object as sent, kept for the rejected record when it does not decode.
type node struct {
	key string
	raw json.RawMessage
	apiNode
}

// answer is a decoded 200 response: its nodes, the nodes that could not
// be read (each a rejected record's material) and how many nodes past
// MaxNodes were left unread.
type answer struct {
	nodes   []node
	bad     []badNode
	skipped int
}

// badNode is a node entry that does not decode.
type badNode struct {
	key    string
	raw    []byte
	reason string
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
func (s *Source) fetch(ctx context.Context, q statusQuery) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.requestURL(q), nil)
	if err != nil {
		return answer{}, s.redact(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "evindex")
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return answer{}, s.redact(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if err != nil {
			return answer{}, s.redact(fmt.Errorf("read body: %w", err))
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			err = fmt.Errorf("%w (HTTP %d): check api_key", ErrKeyRejected, resp.StatusCode)
		case http.StatusTooManyRequests:
			err = &rateLimitedError{after: retryAfter(resp.Header.Get("Retry-After"), s.cfg.Now())}
		default:
			err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, s.scrub(snippet(body)))
		}
		return answer{}, &indexer.HTTPStatusError{Status: resp.StatusCode, Err: err}
	}
	body := &boundedReader{r: resp.Body, left: maxBody}
	a, err := decodeAnswer(body, s.keep)
	switch {
	case body.over:
		return answer{}, fmt.Errorf("response larger than %d bytes", maxBody)
	case errors.Is(err, errUnsuccessful):
		return answer{}, err
	case err != nil && body.err != nil:
		return answer{}, s.redact(fmt.Errorf("read body: %w", body.err))
	case err != nil:
		return answer{}, fmt.Errorf("decode response: %s", s.scrub(err.Error()))
	}
	return a, nil
}

// boundedReader reads at most left bytes and says whether the body went
// on past them.
type boundedReader struct {
	r    io.Reader
	left int64
	over bool
	err  error // a transport error, as opposed to bad JSON
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, _ := b.r.Read(one[:]); n > 0 {
			b.over = true
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

var errUnsuccessful = errors.New("API answered success=false")

// keep is the bound on nodes per answer.
func (s *Source) keep(_ string, kept int) bool { return kept < s.maxNodes }

// decodeAnswer reads a 200 body as a stream: {"success":..., "nodes":
// {key: node, ...}, ...}. keep says whether a new node may be added (the
// bound on nodes per key); nodes it refuses are counted, not held.
func decodeAnswer(r io.Reader, keep func(key string, kept int) bool) (answer, error) {
	var a answer
	d := json.NewDecoder(r)
	if err := expectDelim(d, '{'); err != nil {
		return a, err
	}
	sawNodes := false
	for d.More() {
		name, err := objectKey(d)
		if err != nil {
			return a, err
		}
		switch name {
		case "success":
			var ok *bool
			if err := d.Decode(&ok); err != nil {
				return a, fmt.Errorf("success: %w", err)
			}
			if ok != nil && !*ok {
				return a, errUnsuccessful
			}
		case "nodes":
			sawNodes = true
			if err := decodeNodeMap(d, &a, keep); err != nil {
				return a, fmt.Errorf("nodes: %w", err)
			}
		default:
			var skip json.RawMessage
			if err := d.Decode(&skip); err != nil {
				return a, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	if err := expectDelim(d, '}'); err != nil {
		return a, err
	}
	if !sawNodes {
		return a, errors.New("response has no nodes object")
	}
	sort.Slice(a.nodes, func(i, j int) bool { return a.nodes[i].key < a.nodes[j].key })
	return a, nil
}

// decodeNodeMap reads the nodes value: an object of nodes, or null or []
// (PHP's empty map) for none.
func decodeNodeMap(d *json.Decoder, a *answer, keep func(string, int) bool) error {
	tok, err := d.Token()
	if err != nil {
		return err
	}
	switch tok {
	case nil:
		return nil
	case json.Delim('['):
		return expectDelim(d, ']')
	case json.Delim('{'):
	default:
		return fmt.Errorf("want an object, got %v", tok)
	}
	for d.More() {
		key, err := objectKey(d)
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			return err
		}
		switch {
		case store.CheckText(key) != nil:
			a.bad = append(a.bad, badNode{key, raw[:min(len(raw), maxNodeBytes)], "public key: " + store.CheckText(key).Error()})
		case !keep(key, len(a.nodes)):
			a.skipped++
		case len(raw) > maxNodeBytes:
			a.bad = append(a.bad, badNode{key, raw[:maxNodeBytes], fmt.Sprintf("node object of %d bytes, more than %d", len(raw), maxNodeBytes)})
		default:
			n := node{key: key, raw: raw}
			if err := json.Unmarshal(raw, &n.apiNode); err != nil {
				a.bad = append(a.bad, badNode{key, raw, "decode node: " + err.Error()})
				continue
			}
			a.nodes = append(a.nodes, n)
		}
	}
	return expectDelim(d, '}')
}

func objectKey(d *json.Decoder) (string, error) {
	tok, err := d.Token()
	if err != nil {
		return "", err
	}
	k, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("want an object key, got %v", tok)
	}
	return k, nil
}

func expectDelim(d *json.Decoder, want json.Delim) error {
	tok, err := d.Token()
	if err != nil {
		return err
	}
	if tok != want {
		return fmt.Errorf("want %v, got %v", want, tok)
	}
	return nil
}

// retryAfter reads a Retry-After header, capped at maxBlock; one that
// says nothing usable is defaultBlock.
func retryAfter(h string, now time.Time) time.Duration {
	if d, ok := indexer.ParseRetryAfter(h, now, maxBlock); ok {
		return d
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
