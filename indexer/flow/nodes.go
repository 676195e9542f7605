package flow

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/access"
	"github.com/onflow/flow/protobuf/go/flow/executiondata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/store"
)

// Flow's history is split by sporks: each spork's access nodes serve only
// the heights from their root to the spork's last sealed height, and a
// height below a node's root answers an error (flow-go: NotFound, "try to
// use a historic node"). A source therefore reads from several nodes: the
// configured endpoint and the history endpoints. Each says which heights
// it serves (GetNodeVersionInfo's spork and node root heights, and its
// sealed head), and every range is read from a node that serves it.

// health is what a source remembers of one access node across runs: its
// backoff after failures and its request budget. The Runner starts a new
// run after a failure, and the node that failed must stay avoided.
type health struct {
	addr string
	lim  *limiter

	mu       sync.Mutex
	failures int
	until    time.Time // not used before this, unless no other node serves
	lastErr  string
}

// failed puts the node in a jittered exponential backoff.
func (h *health) failed(err error, now time.Time, minWait, maxWait time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failures++
	d := minWait
	for i := 1; i < h.failures && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	h.until = now.Add(d/2 + rand.N(d/2+1))
	h.lastErr = err.Error()
}

// succeeded ends the node's backoff.
func (h *health) succeeded() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failures, h.until = 0, time.Time{}
}

func (h *health) inBackoff(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return now.Before(h.until)
}

func (h *health) lastError() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastErr
}

// node is one access node during a run: its clients and what it said it
// serves.
type node struct {
	*health
	configured bool // the source's endpoint, not a history endpoint
	conn       *grpc.ClientConn
	access     access.AccessAPIClient
	stream     executiondata.ExecutionDataAPIClient
	// ranges are the backfill workers' connections, one each (the first
	// is conn): on one HTTP/2 connection every worker's answer passes
	// through one reader and one flow-control window. They share the
	// node's health and request budget.
	ranges []access.AccessAPIClient
	conns  []*grpc.ClientConn

	mu        sync.Mutex
	known     bool // it said which heights it serves
	sporkID   []byte
	sporkRoot uint64
	root      uint64 // the first height it serves
	sealed    uint64 // its sealed head at the last look
	probeErr  error
}

// serves reports whether the node said it serves height h.
func (n *node) serves(h uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.known && n.root <= h && h <= n.sealed
}

func (n *node) span() (known bool, root, sealed, sporkRoot uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.known, n.root, n.sealed, n.sporkRoot
}

// setSealed records a newer sealed head of the node.
func (n *node) setSealed(h uint64) {
	n.mu.Lock()
	n.sealed = max(n.sealed, h)
	n.mu.Unlock()
}

// dial opens a client for every configured node; nothing connects until
// the first call.
func (s *Source) dial() ([]*node, func(), error) {
	creds := insecure.NewCredentials()
	if s.cfg.TLS {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// A range of busy blocks easily exceeds gRPC's 4 MiB default, and
		// such a response is decoded where it arrived (messageCodec).
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes), grpc.ForceCodecV2(messageCodec{})),
	}, s.dialOpts...)
	var nodes []*node
	closeAll := func() {
		for _, n := range nodes {
			for _, c := range n.conns {
				c.Close()
			}
		}
	}
	for i, addr := range s.addrs() {
		n := &node{health: s.healthOf(addr), configured: i == 0}
		nodes = append(nodes, n)
		// A connection only connects at its first call: a source that
		// never backfills opens one.
		for range max(s.cfg.Backfill.Workers, 1) {
			conn, err := grpc.NewClient(addr, opts...)
			if err != nil {
				closeAll()
				field := "endpoint"
				if i > 0 {
					field = fmt.Sprintf("history_endpoints[%d]", i-1)
				}
				return nil, nil, indexer.Permanent(fmt.Errorf("%s %q: %w", field, addr, err))
			}
			n.conns = append(n.conns, conn)
			n.ranges = append(n.ranges, access.NewAccessAPIClient(conn))
		}
		n.conn, n.access = n.conns[0], n.ranges[0]
		n.stream = executiondata.NewExecutionDataAPIClient(n.conn)
	}
	return nodes, closeAll, nil
}

// rangeClient is backfill worker w's connection to the node.
func (n *node) rangeClient(w int) access.AccessAPIClient {
	return n.ranges[w%len(n.ranges)]
}

// addrs is the endpoint followed by the history endpoints.
func (s *Source) addrs() []string {
	return append([]string{s.cfg.Endpoint}, s.cfg.HistoryEndpoints...)
}

func (s *Source) healthOf(addr string) *health {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.health[addr]
	if h == nil {
		h = &health{addr: addr, lim: newLimiter(s.cfg.Backfill.RequestsPerSecond, s.cfg.Backfill.Workers, s.now)}
		s.health[addr] = h
	}
	return h
}

// probe asks the node which heights it serves: its root from
// GetNodeVersionInfo and its sealed head. A node too old to answer
// GetNodeVersionInfo (Unimplemented) has its root found by bisecting
// GetBlockHeaderByHeight, which fails below the root.
func (r *run) probe(ctx context.Context, n *node) error {
	cctx, cancel := context.WithTimeout(ctx, r.s.callTimeout)
	defer cancel()
	head, err := n.access.GetLatestBlockHeader(cctx, &access.GetLatestBlockHeaderRequest{IsSealed: true})
	if err != nil {
		return r.nodeError(ctx, n, "latest sealed block header", err)
	}
	sealed := head.GetBlock().GetHeight()
	if limit := r.headLimit(); sealed > limit {
		return r.nodeError(ctx, n, "latest sealed block header", fmt.Errorf("the node claims height %d, beyond any plausible head (at most %d); not believed", sealed, limit))
	}
	var sporkID []byte
	var sporkRoot, root uint64
	info, err := n.access.GetNodeVersionInfo(cctx, &access.GetNodeVersionInfoRequest{})
	switch {
	case err == nil && info.GetInfo() != nil:
		in := info.GetInfo()
		sporkID, sporkRoot, root = in.GetSporkId(), in.GetSporkRootBlockHeight(), in.GetNodeRootBlockHeight()
		root = max(root, sporkRoot)
	case status.Code(err) == codes.Unimplemented:
		if root, err = r.bisectRoot(cctx, n, sealed); err != nil {
			return r.nodeError(ctx, n, "find the node's root height", err)
		}
		sporkRoot = root
	case err != nil:
		return r.nodeError(ctx, n, "node version info", err)
	default:
		return r.nodeError(ctx, n, "node version info", errors.New("empty answer"))
	}
	if root > sealed {
		return r.nodeError(ctx, n, "node version info", fmt.Errorf("root height %d is above its sealed head %d", root, sealed))
	}
	n.mu.Lock()
	n.known, n.sporkID, n.sporkRoot, n.root, n.sealed, n.probeErr = true, sporkID, sporkRoot, root, max(n.sealed, sealed), nil
	n.mu.Unlock()
	n.succeeded()
	return nil
}

// bisectRoot finds the lowest height in [0, sealed] whose header the node
// has. A node that does not even serve the header of its sealed head
// cannot be bisected: it is taken to serve everything up to its head, as
// a single configured node always was, and a range below its root then
// fails the run like before.
func (r *run) bisectRoot(ctx context.Context, n *node, sealed uint64) (uint64, error) {
	if _, err := n.access.GetBlockHeaderByHeight(ctx, &access.GetBlockHeaderByHeightRequest{Height: sealed}); err != nil {
		return 0, nil
	}
	lo, hi := uint64(0), sealed // the root is in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo)/2
		_, err := n.access.GetBlockHeaderByHeight(ctx, &access.GetBlockHeaderByHeightRequest{Height: mid})
		switch status.Code(err) {
		case codes.OK:
			hi = mid
		case codes.NotFound:
			lo = mid + 1
		default:
			return 0, err
		}
	}
	return lo, nil
}

// nodeError records a failed call on the node (its backoff starts) and
// wraps err with the node's address.
func (r *run) nodeError(ctx context.Context, n *node, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	err = fmt.Errorf("access node %s: %s: %w", n.addr, what, err)
	n.failed(err, r.s.now(), r.s.nodeBackoffMin, r.s.nodeBackoffMax)
	n.mu.Lock()
	if !n.known {
		n.probeErr = err
	}
	n.mu.Unlock()
	return err
}

// discover probes every node that has not said what it serves, all at
// once, and checks that the answers fit together.
func (r *run) discover(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, n := range r.nodes {
		if known, _, _, _ := n.span(); known {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.probe(ctx, n); err != nil && ctx.Err() == nil {
				r.log.Warn().Err(err).Msg("access node unreachable; the heights only it serves are a gap until it answers")
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.checkSporks(); err != nil {
		return indexer.Permanent(err)
	}
	r.report()
	return nil
}

// checkSporks refuses nodes that contradict each other: two sporks whose
// ranges overlap, or one root height with two spork ids. Sporks do not
// overlap on a real network, so one of the endpoints is misconfigured (a
// node of another network, say).
func (r *run) checkSporks() error {
	type spork struct {
		root, last uint64
		id         []byte
		nodes      []string
	}
	byRoot := map[uint64]*spork{}
	for _, n := range r.nodes {
		n.mu.Lock()
		known, root, sealed, id := n.known, n.sporkRoot, n.sealed, n.sporkID
		n.mu.Unlock()
		if !known {
			continue
		}
		sp := byRoot[root]
		if sp == nil {
			sp = &spork{root: root, id: id}
			byRoot[root] = sp
		} else if len(id) > 0 && len(sp.id) > 0 && !bytes.Equal(id, sp.id) {
			return fmt.Errorf("access nodes %s and %s contradict each other: both say their spork starts at height %d, with different spork ids", sp.nodes[0], n.addr, root)
		}
		sp.last = max(sp.last, sealed)
		sp.nodes = append(sp.nodes, n.addr)
	}
	var sporks []*spork
	for _, sp := range byRoot {
		sporks = append(sporks, sp)
	}
	sort.Slice(sporks, func(i, j int) bool { return sporks[i].root < sporks[j].root })
	for i := 1; i < len(sporks); i++ {
		prev, sp := sporks[i-1], sporks[i]
		if prev.last >= sp.root {
			return fmt.Errorf("access nodes contradict each other: %s serve a spork from height %d sealed up to %d, but %s serve a spork that starts at height %d; sporks do not overlap, so one of them belongs to another network",
				strings.Join(prev.nodes, ", "), prev.root, prev.last, strings.Join(sp.nodes, ", "), sp.root)
		}
	}
	return nil
}

// newestSpork returns the root of the newest spork any node serves and its
// nodes, the configured endpoint first; ok is false when no node answered.
func (r *run) newestSpork() (root uint64, nodes []*node, ok bool) {
	for _, n := range r.nodes {
		known, _, _, sr := n.span()
		if !known {
			continue
		}
		switch {
		case !ok || sr > root:
			root, nodes, ok = sr, []*node{n}, true
		case sr == root:
			nodes = append(nodes, n)
		}
	}
	return root, r.preferred(nodes), ok
}

// servingNodes returns the nodes that serve height h, healthy ones first
// and the configured endpoint first among equals.
func (r *run) servingNodes(h uint64) []*node {
	var out []*node
	for _, n := range r.nodes {
		if n.serves(h) {
			out = append(out, n)
		}
	}
	return r.preferred(out)
}

func (r *run) preferred(nodes []*node) []*node {
	now := r.s.now()
	slices.SortStableFunc(nodes, func(a, b *node) int {
		ab, bb := a.inBackoff(now), b.inBackoff(now)
		switch {
		case ab != bb && !ab:
			return -1
		case ab != bb:
			return 1
		case a.configured != b.configured && a.configured:
			return -1
		case a.configured != b.configured:
			return 1
		}
		return 0
	})
	return nodes
}

// segment is a run of heights read from the same nodes, or, when nodes is
// empty, a gap: heights no reachable node serves.
type segment struct {
	from, to uint64
	nodes    []*node
}

// segmentAt plans the heights from h on, up to limit: the nodes that serve
// h and how far all of them reach, or the gap up to the next height some
// node serves.
func (r *run) segmentAt(h, limit uint64) segment {
	if nodes := r.servingNodes(h); len(nodes) > 0 {
		to := limit
		for _, n := range nodes {
			_, _, sealed, _ := n.span()
			to = min(to, sealed)
		}
		// A node of the same spork may reach further alone; it takes over
		// at the end of this segment.
		return segment{from: h, to: to, nodes: nodes}
	}
	to := limit
	for _, n := range r.nodes {
		if known, root, _, _ := n.span(); known && root > h {
			to = min(to, root-1)
		}
	}
	return segment{from: h, to: to}
}

// gapReason says why no node serves a gap, naming the nodes that did not
// answer.
func (r *run) gapReason() string {
	var down []string
	for _, n := range r.nodes {
		n.mu.Lock()
		if !n.known {
			msg := n.addr
			if n.probeErr != nil {
				msg = n.probeErr.Error()
			}
			down = append(down, msg)
		}
		n.mu.Unlock()
	}
	if len(down) == 0 {
		return "no configured access node serves these heights: add one of their spork to history_endpoints"
	}
	return "no reachable access node serves these heights; not answering: " + strings.Join(down, "; ")
}

// report shows the nodes and the gaps on /v1/sources.
func (r *run) report() {
	now := r.s.now()
	eps := make([]store.Endpoint, 0, len(r.nodes))
	for _, n := range r.nodes {
		n.mu.Lock()
		ep := store.Endpoint{Endpoint: n.addr, Known: n.known, From: n.root, To: n.sealed, State: store.EndpointServing}
		switch {
		case !n.known:
			ep.State, ep.From, ep.To = store.EndpointUnreachable, 0, 0
		case n == r.liveNode:
			ep.State = store.EndpointLive
		}
		n.mu.Unlock()
		if ep.Known && n.inBackoff(now) {
			ep.State = store.EndpointBackoff
		}
		ep.LastError = n.lastError()
		eps = append(eps, ep)
	}
	r.sink.SetEndpoints(eps, slices.Clone(r.gaps))
}

// retryable reports whether another node (or the same one later) may
// answer what this one did not: it was unavailable, overloaded, slow, or
// did not have the heights after all.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Aborted, codes.Internal, codes.Unknown, codes.NotFound, codes.Canceled:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}
