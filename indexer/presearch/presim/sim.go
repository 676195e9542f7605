// Package presim simulates the Presearch node status API on loopback: a
// deterministic set of nodes that connect, disconnect and earn PRE, served
// through the documented endpoint with its per-node rate limits, so the
// presearch source, the demo and tests run without the real service.
package presim

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultAPIKey is the key the simulator accepts when Config.APIKey is empty.
const DefaultAPIKey = "demo-presearch-api-key"

// Defaults of Config.
const (
	DefaultNodes         = 3
	DefaultHistory       = 30 * 24 * time.Hour
	DefaultStatusLimit   = 4
	DefaultStatsLimit    = 4
	DefaultBlockDuration = 10 * time.Minute
)

// apiDate is the API's query date format (PHP "Y-m-d H:i", UTC).
const apiDate = "2006-01-02 15:04"

// StatusPath is the path prefix of the node status endpoint; the API key
// follows it.
const StatusPath = "/api/nodes/status/"

// Config describes a simulated Presearch account.
type Config struct {
	// APIKey is the only key accepted; others get 401. Default DefaultAPIKey.
	APIKey string
	// Nodes is the number of nodes of the key. Default 3.
	Nodes int
	// Seed selects the node keys, outages and earnings.
	Seed int64
	// Genesis is when the nodes started; no activity exists before it.
	// Default: History before the simulator's clock at New.
	Genesis time.Time
	// History is the default distance of Genesis before now. Default 30 days.
	History time.Duration
	// Now is the simulated clock. When nil, the simulator runs its own clock
	// that starts at Start and runs Speed times faster than real time until
	// it reaches the real time, then keeps to it: it never runs ahead of
	// the real time, so no window it reports ends in the future.
	Now func() time.Time
	// Speed is how much faster than real time the built-in clock runs
	// while it is behind the real time (60: one simulated hour per real
	// minute). Ignored when Now is set. Default 1.
	Speed float64
	// Start is the simulated time at which the built-in clock starts; zero
	// means the real time of New, and a time ahead of it is the real time.
	// A fast clock starts in the past and catches up.
	Start time.Time
	// StatusLimit and StatsLimit are the requests each node allows per
	// minute without stats and per hour with stats. Defaults 4 and 4.
	StatusLimit int
	StatsLimit  int
	// BlockDuration is how long the key stays blocked after a limit is
	// exceeded. Default 10 minutes of simulated time. Retry-After reports
	// the rest of the block in real seconds on the built-in clock and in
	// simulated seconds when Now is injected.
	BlockDuration time.Duration
}

// Sim is a simulated node status API. It implements http.Handler and is
// safe for concurrent use.
type Sim struct {
	cfg       Config
	realStart time.Time
	simStart  time.Time
	nodes     []*node
	byKey     map[string]*node

	mu           sync.Mutex
	statusHits   map[string][]time.Time // per node, within the last minute
	statsHits    map[string][]time.Time // per node, within the last hour
	blockedUntil time.Time
	violations   int
	rejected     int
	served       [2]int // [status, stats]
	faults       faults
}

// faults are injected failures still pending; guarded by Sim.mu.
type faults struct {
	failN, failCode int           // next requests answered failCode
	garbageN        int           // next requests answered 200 with a broken body
	garbageAt       int           // which broken body comes next
	slowN           int           // next requests wait...
	slowDelay       time.Duration // ...this long before they are answered
	retryAfterN     int           // next requests answered 429...
	retryAfter      string        // ...with this Retry-After, as sent
	tamper          Tamper        // rewrites every answer's nodes while set
	injected        int
}

// Tamper rewrites the nodes object of a 200 answer, as a buggy or hostile
// API would: it gets the nodes JSON the simulator built and whether the
// request asked for stats, and returns the nodes JSON to send. The text
// goes out as is, so it can hold what no JSON encoder writes (1e400,
// 300-digit numbers, NUL escapes).
type Tamper func(stats bool, nodes []byte) []byte

// TamperWith rewrites every following answer with fn; nil stops.
func (s *Sim) TamperWith(fn Tamper) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.tamper = fn
}

// RetryAfterNext answers the next n requests 429 with the Retry-After
// header value given (which need not be a valid one).
func (s *Sim) RetryAfterNext(n int, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.retryAfterN, s.faults.retryAfter = n, value
}

// garbageBodies are 200 answers that are not the documented JSON, as a
// misconfigured proxy or a half-deployed API sends them.
var garbageBodies = []string{
	"<html><body><h1>502 Bad Gateway</h1></body></html>",
	`{"success":true,"nodes":{"abc":{"meta":`,
	`{"success":true,"nodes":"not an object"}`,
	`{"success":true,"nodes":{"abc":{"status":{"connected":"yes"},"period":{"total_pre_earned":"12.3.4"}}}}`,
	"",
}

// FailNext answers the next n requests with the HTTP status code (a 500 or
// 503 from the API or a proxy in front of it), before the key or the
// limits are looked at.
func (s *Sim) FailNext(n, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.failN, s.faults.failCode = n, code
}

// GarbageNext answers the next n requests 200 with bodies that are not the
// documented JSON (HTML, cut-off JSON, wrong types), in turn.
func (s *Sim) GarbageNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.garbageN = n
}

// SlowNext makes the next n requests wait d of real time before they are
// answered. A request whose client gives up meanwhile is dropped unseen:
// it counts toward no limit.
func (s *Sim) SlowNext(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.slowN, s.faults.slowDelay = n, d
}

// Injected counts requests answered by an injected fault.
func (s *Sim) Injected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.injected
}

// injectFault carries out a pending fault on a request; it reports whether
// the request was answered (or dropped) by it.
func (s *Sim) injectFault(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	f := &s.faults
	var delay time.Duration
	if f.slowN > 0 {
		f.slowN--
		f.injected++
		delay = f.slowDelay
	}
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case f.failN > 0:
		f.failN--
		f.injected++
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(f.failCode)
		_, _ = fmt.Fprintf(w, "<html><body>%d %s</body></html>\n", f.failCode, http.StatusText(f.failCode))
		return true
	case f.retryAfterN > 0:
		f.retryAfterN--
		f.injected++
		w.Header().Set("Retry-After", f.retryAfter)
		writeJSON(w, http.StatusTooManyRequests, errorBody{Message: "rate limit exceeded; API key temporarily blocked"}, 0)
		return true
	case f.garbageN > 0:
		f.garbageN--
		f.injected++
		body := garbageBodies[f.garbageAt%len(garbageBodies)]
		f.garbageAt++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, body)
		return true
	}
	return false
}

// New builds a simulator from cfg, filling defaults for zero fields.
func New(cfg Config) *Sim {
	if cfg.APIKey == "" {
		cfg.APIKey = DefaultAPIKey
	}
	if cfg.Nodes <= 0 {
		cfg.Nodes = DefaultNodes
	}
	if cfg.Speed <= 0 {
		cfg.Speed = 1
	}
	if cfg.History <= 0 {
		cfg.History = DefaultHistory
	}
	if cfg.StatusLimit <= 0 {
		cfg.StatusLimit = DefaultStatusLimit
	}
	if cfg.StatsLimit <= 0 {
		cfg.StatsLimit = DefaultStatsLimit
	}
	if cfg.BlockDuration <= 0 {
		cfg.BlockDuration = DefaultBlockDuration
	}
	s := &Sim{
		cfg:        cfg,
		realStart:  time.Now(),
		byKey:      map[string]*node{},
		statusHits: map[string][]time.Time{},
		statsHits:  map[string][]time.Time{},
	}
	s.simStart = s.realStart.UTC()
	if !cfg.Start.IsZero() {
		s.simStart = cfg.Start.UTC()
	}
	if s.cfg.Genesis.IsZero() {
		s.cfg.Genesis = s.Now().Add(-cfg.History).Truncate(time.Minute)
	}
	for i := 0; i < cfg.Nodes; i++ {
		n := newNode(cfg.Seed, i, s.cfg.Genesis)
		s.nodes = append(s.nodes, n)
		s.byKey[n.key] = n
	}
	return s
}

// Now is the simulator's current time: never ahead of the real time.
func (s *Sim) Now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now().UTC()
	}
	real := time.Now()
	fast := s.simStart.Add(time.Duration(float64(real.Sub(s.realStart)) * s.cfg.Speed))
	if fast.After(real) {
		return real.UTC()
	}
	return fast
}

// realFor is the real time that d of simulated time takes from now on the
// built-in clock: d/Speed while it catches up with the real time, d once
// it has.
func (s *Sim) realFor(d time.Duration) time.Duration {
	lag := time.Since(s.Now())
	if s.cfg.Speed < 1 {
		return time.Duration(float64(d) / s.cfg.Speed) // a slow clock never catches up
	}
	if lag <= 0 || s.cfg.Speed == 1 {
		return d
	}
	catchUp := time.Duration(float64(lag) / (s.cfg.Speed - 1)) // real time until it meets the real time
	if fast := time.Duration(float64(catchUp) * s.cfg.Speed); d > fast {
		return catchUp + d - fast
	}
	return time.Duration(float64(d) / s.cfg.Speed)
}

// Sleep waits until d of simulated time has passed on the built-in clock
// (see realFor), or ctx ends. With an injected Now it waits d of real
// time. A client that shares the simulator's clock uses it to wait.
func (s *Sim) Sleep(ctx context.Context, d time.Duration) error {
	if s.cfg.Now == nil {
		d = s.realFor(d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// APIKey is the key the simulator accepts.
func (s *Sim) APIKey() string { return s.cfg.APIKey }

// Genesis is when the simulated nodes started.
func (s *Sim) Genesis() time.Time { return s.cfg.Genesis }

// NodeKeys lists the public keys of the simulated nodes in creation order.
func (s *Sim) NodeKeys() []string {
	keys := make([]string, len(s.nodes))
	for i, n := range s.nodes {
		keys[i] = n.key
	}
	return keys
}

// Earned is the truth for a stats window: the PRE the node earned in the
// minutes of [start, end), in 10^-18 units. Unknown nodes earned nothing.
func (s *Sim) Earned(node string, start, end time.Time) *big.Int {
	n := s.byKey[node]
	if n == nil {
		return new(big.Int)
	}
	return n.earned(ceilMinute(start), ceilMinute(end))
}

// Connected reports whether the node is connected at t.
func (s *Sim) Connected(node string, t time.Time) bool {
	n := s.byKey[node]
	return n != nil && n.connected(floorDiv(t.Unix(), 60))
}

// Violations counts requests that exceeded a per-node limit (each one
// blocked the key).
func (s *Sim) Violations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.violations
}

// Rejected counts requests answered 429 because the key was blocked.
func (s *Sim) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected
}

// Served returns how many status (stats=false) and stats requests were
// answered 200.
func (s *Sim) Served() (status, stats int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served[0], s.served[1]
}

// Block blocks the key for d of simulated time, as if another client had
// exceeded a limit.
func (s *Sim) Block(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blockedUntil = s.Now().Add(d)
}

// response is the documented body of a 200 answer.
type response struct {
	Success bool                    `json:"success"`
	StartAt string                  `json:"start_at"`
	EndAt   string                  `json:"end_at"`
	Nodes   map[string]nodeResponse `json:"nodes"`
}

type nodeResponse struct {
	Meta   nodeMeta   `json:"meta"`
	Status nodeStatus `json:"status"`
	Period *period    `json:"period,omitempty"`
}

type nodeStatus struct {
	Connected             bool   `json:"connected"`
	Blocked               bool   `json:"blocked"`
	InCurrentStateSince   string `json:"in_current_state_since"`
	MinutesInCurrentState int64  `json:"minutes_in_current_state"`
}

type errorBody struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
}

// query is a parsed request.
type query struct {
	publicKeys      []string
	start, end      int64 // unix minutes, [start, end)
	stats           bool
	connected       bool
	disconnected    bool
	includeInactive bool
}

// ServeHTTP answers GET /api/nodes/status/{api_key}.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, StatusPath) {
		writeJSON(w, http.StatusNotFound, errorBody{Message: "not found"}, 0)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Message: "method not allowed"}, 0)
		return
	}
	if s.injectFault(w, r) {
		return
	}
	key := strings.TrimPrefix(r.URL.Path, StatusPath)
	if subtle.ConstantTimeCompare([]byte(key), []byte(s.cfg.APIKey)) != 1 {
		writeJSON(w, http.StatusUnauthorized, errorBody{Message: "invalid API key"}, 0)
		return
	}
	now := s.Now()
	q, err := parseQuery(r, now)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Message: err.Error()}, 0)
		return
	}
	nowMinute := floorDiv(now.Unix(), 60)
	selected := s.selectNodes(q, nowMinute)

	if retry, ok := s.admit(q.stats, selected, now); !ok {
		writeJSON(w, http.StatusTooManyRequests, errorBody{Message: "rate limit exceeded; API key temporarily blocked"}, retry)
		return
	}

	resp := response{
		Success: true,
		StartAt: zulu(q.start),
		EndAt:   zulu(q.end),
		Nodes:   make(map[string]nodeResponse, len(selected)),
	}
	for _, n := range selected {
		since := n.since(nowMinute)
		nr := nodeResponse{
			Meta: n.meta,
			Status: nodeStatus{
				Connected:             n.connected(nowMinute),
				InCurrentStateSince:   zulu(since),
				MinutesInCurrentState: nowMinute - since,
			},
		}
		if q.stats {
			p := n.period(q.start, q.end, nowMinute)
			nr.Period = &p
		}
		resp.Nodes[n.key] = nr
	}
	s.mu.Lock()
	tamper := s.faults.tamper
	s.mu.Unlock()
	if tamper == nil {
		writeJSON(w, http.StatusOK, resp, 0)
		return
	}
	nodes, _ := json.Marshal(resp.Nodes)
	resp.Nodes = nil
	head, _ := json.Marshal(resp)
	// {"success":...,"nodes":null} -> the same with the rewritten nodes.
	body := bytes.Replace(head, []byte(`"nodes":null`), append([]byte(`"nodes":`), tamper(q.stats, nodes)...), 1)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// selectNodes applies public_keys, connected, disconnected and
// include_inactive as documented: public_keys overrides the other three.
func (s *Sim) selectNodes(q query, nowMinute int64) []*node {
	var out []*node
	if len(q.publicKeys) > 0 {
		seen := map[string]bool{}
		for _, k := range q.publicKeys {
			if n := s.byKey[k]; n != nil && !seen[k] {
				seen[k] = true
				out = append(out, n)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].index < out[j].index })
		return out
	}
	for _, n := range s.nodes {
		c := n.connected(nowMinute)
		if (c && !q.connected) || (!c && !q.disconnected) {
			continue
		}
		end := q.end
		if end > nowMinute {
			end = nowMinute
		}
		if !q.includeInactive && !n.active(q.start, end) {
			continue
		}
		out = append(out, n)
	}
	return out
}

// admit applies the per-node limits. It returns the Retry-After seconds and
// false when the request is refused.
func (s *Sim) admit(stats bool, nodes []*node, now time.Time) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Before(s.blockedUntil) {
		s.rejected++
		return s.retryAfter(now), false
	}
	hits, limit, per := s.statusHits, s.cfg.StatusLimit, time.Minute
	if stats {
		hits, limit, per = s.statsHits, s.cfg.StatsLimit, time.Hour
	}
	exceeded := false
	for _, n := range nodes {
		kept := hits[n.key][:0]
		for _, t := range hits[n.key] {
			if t.After(now.Add(-per)) {
				kept = append(kept, t)
			}
		}
		hits[n.key] = kept
		if len(kept) >= limit {
			exceeded = true
		}
	}
	if exceeded {
		s.violations++
		s.blockedUntil = now.Add(s.cfg.BlockDuration)
		return s.retryAfter(now), false
	}
	for _, n := range nodes {
		hits[n.key] = append(hits[n.key], now)
	}
	if stats {
		s.served[1]++
	} else {
		s.served[0]++
	}
	return 0, true
}

// retryAfter is the real-time seconds until the block lifts.
func (s *Sim) retryAfter(now time.Time) int {
	d := s.blockedUntil.Sub(now)
	if s.cfg.Now == nil {
		d = s.realFor(d)
	}
	secs := int(math.Ceil(d.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return secs
}

func parseQuery(r *http.Request, now time.Time) (query, error) {
	v := r.URL.Query()
	q := query{connected: true, disconnected: true}
	var err error
	if pk := v.Get("public_keys"); pk != "" {
		for _, k := range strings.Split(pk, ",") {
			if k = strings.TrimSpace(k); k != "" {
				q.publicKeys = append(q.publicKeys, k)
			}
		}
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{
		{"stats", &q.stats},
		{"connected", &q.connected},
		{"disconnected", &q.disconnected},
		{"include_inactive", &q.includeInactive},
	} {
		if s := v.Get(b.name); s != "" {
			if *b.dst, err = strconv.ParseBool(s); err != nil {
				return q, fmt.Errorf("%s: must be true or false", b.name)
			}
		}
	}
	if !q.connected && !q.disconnected {
		// Documented: both false falls back to the default, connected only.
		q.connected = true
	}
	nowMinute := floorDiv(now.Unix(), 60)
	q.start, q.end = nowMinute-24*60, nowMinute
	if s := v.Get("start_date"); s != "" {
		t, err := time.Parse(apiDate, s)
		if err != nil {
			return q, errors.New("start_date: must be a UTC date and time as Y-m-d H:i")
		}
		q.start = t.Unix() / 60
	}
	if s := v.Get("end_date"); s != "" {
		t, err := time.Parse(apiDate, s)
		if err != nil {
			return q, errors.New("end_date: must be a UTC date and time as Y-m-d H:i")
		}
		q.end = t.Unix() / 60
	}
	if q.end < q.start {
		return q, errors.New("end_date: must not be before start_date")
	}
	return q, nil
}

func writeJSON(w http.ResponseWriter, code int, body any, retryAfter int) {
	w.Header().Set("Content-Type", "application/json")
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// ceilMinute is the first unix minute that starts at or after t.
func ceilMinute(t time.Time) int64 {
	m := floorDiv(t.Unix(), 60)
	if !t.Truncate(time.Minute).Equal(t) {
		m++
	}
	return m
}

// Server is a simulator listening on its own socket.
type Server struct {
	*Sim
	// URL is the base URL of the API, e.g. http://127.0.0.1:41234.
	URL string
	// Addr is the address the server listens on.
	Addr net.Addr

	srv  *http.Server
	done chan struct{}
}

// Start opens a listener on addr (e.g. "127.0.0.1:0") and serves a new
// simulator on it until ctx ends or Close is called.
func Start(ctx context.Context, addr string, cfg Config) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &Server{
		Sim:  New(cfg),
		URL:  "http://" + ln.Addr().String(),
		Addr: ln.Addr(),
		done: make(chan struct{}),
	}
	s.srv = &http.Server{Handler: s.Sim, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-s.done:
		}
	}()
	return s, nil
}

// Close stops the server and waits for it to exit.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}
