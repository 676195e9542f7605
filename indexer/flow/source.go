// Package flow indexes a Flow access node: events (with the blocks that
// hold them and the staking rewards among them) from
// ExecutionDataAPI.SubscribeEventsFromStartHeight, with history fetched
// through AccessAPI.GetEventsForHeightRange when the source is far behind.
package flow

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/access"
	"github.com/onflow/flow/protobuf/go/flow/entities"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/store"
)

// Kind is the source kind stored with the records and shown by the API.
const Kind = "flow"

// Reward kinds of the Flow source, as the API serves them.
const (
	KindNodeReward      = "flow_node_reward"
	KindDelegatorReward = "flow_delegator_reward"
)

// maxMessageBytes bounds one response from the access node.
const maxMessageBytes = 64 << 20

// Source indexes one Flow access node.
type Source struct {
	cfg         Config
	dialOpts    []grpc.DialOption
	now         func() time.Time
	logEvery    time.Duration
	headEvery   time.Duration
	callTimeout time.Duration
	stallAfter  time.Duration
	// nodeBackoffMin and nodeBackoffMax bound a failed node's backoff.
	nodeBackoffMin, nodeBackoffMax time.Duration
	// reprobeEvery is how often a live source with gaps asks the nodes
	// that did not answer again.
	reprobeEvery time.Duration

	mu     sync.Mutex
	health map[string]*health // by address; kept across runs
}

var _ indexer.Source = (*Source)(nil)

// Option adjusts a Source, mostly for tests.
type Option func(*Source)

// WithDialOptions adds gRPC dial options (interceptors, message sizes).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(s *Source) { s.dialOpts = append(s.dialOpts, opts...) }
}

// WithClock replaces time.Now for progress rates and ETAs.
func WithClock(now func() time.Time) Option {
	return func(s *Source) { s.now = now }
}

// WithProgressLogInterval sets how often a backfill logs its progress
// (default 5 s).
func WithProgressLogInterval(d time.Duration) Option {
	return func(s *Source) { s.logEvery = d }
}

// WithHeadPollInterval sets how often the live phase asks for the sealed
// head, for lag (default 15 s).
func WithHeadPollInterval(d time.Duration) Option {
	return func(s *Source) { s.headEvery = d }
}

// WithCallTimeout bounds each unary call to the access node (default 30 s).
func WithCallTimeout(d time.Duration) Option {
	return func(s *Source) { s.callTimeout = d }
}

// WithStallTimeout sets how long the event stream may stay silent while
// the node's sealed head moves on before it is dropped and resubscribed
// (default DefaultStallTimeout). The head is polled every head poll
// interval, so a stall shows within the sum of the two.
func WithStallTimeout(d time.Duration) Option {
	return func(s *Source) { s.stallAfter = d }
}

// WithNodeBackoff bounds the backoff of an access node after it failed
// (defaults 500 ms and 30 s); another node of the same range serves
// meanwhile.
func WithNodeBackoff(minWait, maxWait time.Duration) Option {
	return func(s *Source) { s.nodeBackoffMin, s.nodeBackoffMax = minWait, max(minWait, maxWait) }
}

// WithReprobeInterval sets how often a source with gaps asks the access
// nodes that did not answer again (default 30 s).
func WithReprobeInterval(d time.Duration) Option {
	return func(s *Source) { s.reprobeEvery = d }
}

// DefaultStallTimeout is how long a silent event stream is trusted while
// the sealed head moves on: with a heartbeat every block, a healthy node
// answers every second or so.
const DefaultStallTimeout = time.Minute

// New validates cfg (filling in defaults) and returns the source; nothing
// connects until Run.
func New(cfg Config, opts ...Option) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newSource(cfg, opts...), nil
}

// NewSource builds the source of a configuration Validate accepted; it is
// how `evindex run` builds a flow source after checking the whole file.
func (c *Config) NewSource() (indexer.Source, error) { return newSource(*c), nil }

func newSource(cfg Config, opts ...Option) *Source {
	cfg.setDefaults()
	cfg.StakingContract, _ = normalizeAddress(cfg.StakingContract)
	s := &Source{
		cfg:         cfg,
		now:         time.Now,
		logEvery:    5 * time.Second,
		headEvery:   15 * time.Second,
		callTimeout: 30 * time.Second,
		stallAfter:  DefaultStallTimeout,

		nodeBackoffMin: 500 * time.Millisecond,
		nodeBackoffMax: 30 * time.Second,
		reprobeEvery:   30 * time.Second,
		health:         map[string]*health{},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Name is the configured source name.
func (s *Source) Name() string { return s.cfg.Name }

// Kind is "flow".
func (s *Source) Kind() string { return Kind }

// Endpoint is the live access node's address; it holds no secret.
func (s *Source) Endpoint() string { return s.cfg.Endpoint }

// Config returns the effective configuration, defaults filled in.
func (s *Source) Config() Config { return s.cfg }

// run is the state of one Run call.
type run struct {
	s      *Source
	sink   indexer.Sink
	log    *zerolog.Logger
	resume indexer.Resume
	nodes  []*node
	dec    *decoder
	head   atomic.Uint64
	known  uint64 // the stored checkpoint's height, for head plausibility
	// next is the first height the forward scan has not passed: the
	// last emitted checkpoint + 1.
	next     uint64
	liveNode *node // the node the live stream follows, for the report
	gaps     []store.Gap
	badOnce  atomic.Bool
	// dictSent is set once the run's first batch carried the payload
	// dictionary; the store keeps it for the source from then on.
	dictSent atomic.Bool
}

// Run indexes from the resume point until ctx ends (it returns nil) or
// every node that could serve the next heights fails (it returns the
// error; the Runner retries from the stored checkpoint). Nodes that
// contradict each other are a permanent error.
func (s *Source) Run(ctx context.Context, resume indexer.Resume, sink indexer.Sink) error {
	nodes, closeAll, err := s.dial()
	if err != nil {
		return err
	}
	defer closeAll()

	r := &run{
		s:      s,
		sink:   sink,
		log:    sink.Log(),
		resume: resume,
		nodes:  nodes,
		dec:    newDecoder(s.cfg.Name, s.cfg.StakingContract),
	}
	r.dec.onBadPayload = func(ev *entities.Event, height uint64) {
		if r.badOnce.CompareAndSwap(false, true) {
			r.log.Warn().Uint64("height", height).Str("type", ev.Type).
				Msg("event payload is not JSON-CDC; stored verbatim as a string (further ones are not logged)")
		}
	}
	r.dec.now = s.now
	// An unreadable reward is quarantined, and the Runner logs a sample of
	// those: a block of 100,000 bad rewards once wrote 100,000 lines.
	err = r.run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// errReplan ends a phase so the run plans again: a node that serves a
// gap has appeared, or the live node failed and another one takes over.
var errReplan = errors.New("replan")

func (r *run) run(ctx context.Context) error {
	cfg := &r.s.cfg
	if r.resume.Found && r.resume.Checkpoint.Height == math.MaxUint64 {
		return indexer.Permanent(fmt.Errorf("stored checkpoint %d cannot be followed: no height comes after it", r.resume.Checkpoint.Height))
	}
	r.known = r.resume.Checkpoint.Height
	if err := r.discover(ctx); err != nil {
		return err
	}
	if r.resume.Found {
		if err := r.sameBlock(ctx, r.resume.Checkpoint); err != nil {
			return err
		}
	}
	_, liveNodes, ok := r.newestSpork()
	if !ok {
		return fmt.Errorf("no access node answered: %s", r.gapReason())
	}
	head := uint64(0)
	for _, n := range liveNodes {
		_, _, sealed, _ := n.span()
		head = max(head, sealed)
	}
	r.setHead(head)
	r.next = r.resume.Checkpoint.Height + 1
	if !r.resume.Found {
		r.next = cfg.StartHeight
		if r.next == 0 {
			r.next = head
			r.log.Info().Uint64("start_height", r.next).Msg("first start at the node's latest sealed height")
		}
	}
	for {
		err := r.pass(ctx)
		if !errors.Is(err, errReplan) || ctx.Err() != nil {
			return err
		}
		// What was emitted must be stored before the holes are read again.
		if err := r.sink.Flush(ctx); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
		if err := r.discover(ctx); err != nil {
			return err
		}
	}
}

// Checkpoint and coverage when some heights are gaps (README: "Flow
// history across sporks"). Coverage is the only statement of what is
// indexed: a range enters it only in the transaction that stores its
// records, so "coverage = what is proven, exactly once" holds as with one
// node. The checkpoint is where the forward scan resumes: every height at
// or below it is in coverage or was a gap when the scan passed it; nothing
// is written for a gap, the next batch's checkpoint passes it and its
// coverage starts after it. The holes are found again from coverage at
// every pass (fillHoles), and filled with batches that carry coverage and
// no checkpoint, so the checkpoint never goes back and a replay rewrites
// the same keys. With no gap this is the checkpoint as it always was.
//
// pass fills the holes below the checkpoint that some node now serves,
// reads the earlier sporks' heights from their nodes (passing over the
// heights no node serves: gaps), catches up on the live spork with range
// calls and then follows its event stream.
func (r *run) pass(ctx context.Context) error {
	if err := r.fillHoles(ctx); err != nil {
		return err
	}
	if err := r.forward(ctx); err != nil {
		return err
	}
	return r.followLive(ctx)
}

// liveNodesAt returns the newest spork's nodes that serve from h on.
func (r *run) liveNodesAt(h uint64) []*node {
	_, nodes, _ := r.newestSpork()
	var out []*node
	for _, n := range nodes {
		if _, root, _, _ := n.span(); root <= h {
			out = append(out, n)
		}
	}
	return out
}

// forward moves the checkpoint through the heights below the newest
// spork's nodes: each segment from the nodes that serve it, each gap
// passed over and reported.
func (r *run) forward(ctx context.Context) error {
	for len(r.liveNodesAt(r.next)) == 0 {
		limit := ^uint64(0)
		for _, n := range r.liveNodesAt(^uint64(0)) {
			_, root, _, _ := n.span()
			limit = min(limit, root-1)
		}
		seg := r.segmentAt(r.next, limit)
		if len(seg.nodes) == 0 {
			r.addGap(seg)
			// Nothing is emitted for a gap: the next batch's checkpoint
			// passes it, and its coverage starts after it.
			r.next = seg.to + 1
			continue
		}
		before := r.next
		if err := r.fill(ctx, seg, true); err != nil {
			return err
		}
		if r.next == before {
			return fmt.Errorf("access node %s: serves no height from %d although it said it serves up to %d", seg.nodes[0].addr, before, seg.to)
		}
	}
	return nil
}

// followLive catches up on the newest spork with range calls while far
// behind, then follows the event stream; when its node fails, another node
// of the spork takes over.
func (r *run) followLive(ctx context.Context) error {
	cfg := &r.s.cfg
	for {
		nodes := r.liveNodesAt(r.next)
		if len(nodes) == 0 {
			return errReplan
		}
		n := nodes[0]
		head, err := r.sealedHead(ctx, n)
		if err != nil {
			if r.anotherLiveNode() {
				continue
			}
			return err
		}
		// Catch up with range calls while far behind; the head moves
		// during a long backfill, so look again after each one.
		if cfg.canBackfill() && head >= r.next && head-r.next+1 > cfg.Backfill.Distance {
			if err := r.backfill(ctx, segment{from: r.next, to: head, nodes: nodes}, true); err != nil {
				return err
			}
			continue
		}
		r.liveNode = n
		r.report()
		err = r.live(ctx, n, r.next)
		r.liveNode = nil
		if errors.Is(err, errReplan) || ctx.Err() != nil {
			return err
		}
		if retryable(err) && r.anotherLiveNode() {
			r.log.Warn().Err(err).Str("endpoint", n.addr).Msg("live access node failed; another node of the spork takes over")
			continue
		}
		return err
	}
}

// anotherLiveNode reports whether a node of the newest spork that serves
// the next height is out of backoff (the one that just failed is in it).
func (r *run) anotherLiveNode() bool {
	r.report()
	nodes := r.liveNodesAt(r.next)
	return len(nodes) > 1 && !nodes[0].inBackoff(r.s.now())
}

// fill reads a segment (history: range calls, or a bounded event stream
// when range calls cannot select the events). With advance the batches
// carry the checkpoint; a hole below the checkpoint is filled with
// coverage alone.
func (r *run) fill(ctx context.Context, seg segment, advance bool) error {
	r.log.Info().Uint64("from", seg.from).Uint64("to", seg.to).Str("endpoint", seg.nodes[0].addr).Bool("hole", !advance).Msg("reading history")
	if r.s.cfg.canBackfill() {
		return r.backfill(ctx, seg, advance)
	}
	return r.streamRange(ctx, seg, advance)
}

// addGap records a gap for the report.
func (r *run) addGap(seg segment) {
	g := store.Gap{From: seg.from, To: seg.to, Reason: r.gapReason()}
	r.log.Warn().Uint64("from", g.From).Uint64("to", g.To).Str("reason", g.Reason).Msg("gap: no access node serves these heights; ingestion continues after them")
	r.gaps = append(r.gaps, g)
	r.report()
}

// fillHoles finds the heights below the checkpoint that coverage does not
// prove (gaps of earlier runs) and reads those some node serves now; the
// rest stay gaps.
func (r *run) fillHoles(ctx context.Context) error {
	r.gaps = nil
	if r.resume.Coverage == nil {
		return nil
	}
	cov, err := r.resume.Coverage()
	if err != nil {
		return fmt.Errorf("read coverage: %w", err)
	}
	// The wanted history starts at start_height; a source that began at
	// the sealed head (start_height 0) wants what it has covered since.
	start := r.s.cfg.StartHeight
	if start == 0 {
		if len(cov) == 0 {
			return nil
		}
		start = cov[0].From
	}
	for _, hole := range holes(cov, start, r.next) {
		for h := hole.From; h <= hole.To; {
			seg := r.segmentAt(h, hole.To)
			if len(seg.nodes) == 0 {
				r.addGap(seg)
			} else if err := r.fillHole(ctx, seg); err != nil {
				return err
			}
			if seg.to == ^uint64(0) {
				break
			}
			h = seg.to + 1
		}
	}
	r.report()
	return nil
}

// fillHole reads a hole's segment without moving the checkpoint.
func (r *run) fillHole(ctx context.Context, seg segment) error {
	saved := r.next
	defer func() { r.next = saved }()
	r.next = seg.from
	if err := r.fill(ctx, seg, false); err != nil {
		return err
	}
	if r.next <= seg.to {
		return fmt.Errorf("fill heights %d-%d: the access node answered only up to %d", seg.from, seg.to, r.next-1)
	}
	return nil
}

// holes returns the heights in [start, next) that no range of cov holds.
func holes(cov []store.Range, start, next uint64) []store.Range {
	var out []store.Range
	h := start
	for _, c := range cov {
		if h >= next {
			break
		}
		if c.To < h {
			continue
		}
		if c.From > h {
			out = append(out, store.Range{From: h, To: min(c.From, next) - 1})
		}
		if c.To == ^uint64(0) {
			return out
		}
		h = max(h, c.To+1)
	}
	if h < next {
		out = append(out, store.Range{From: h, To: next - 1})
	}
	return out
}

// sealedHead asks the node for its latest sealed height and reports it
// as the head.
func (r *run) sealedHead(ctx context.Context, n *node) (uint64, error) {
	cctx, cancel := context.WithTimeout(ctx, r.s.callTimeout)
	defer cancel()
	resp, err := n.access.GetLatestBlockHeader(cctx, &access.GetLatestBlockHeaderRequest{IsSealed: true})
	if err != nil {
		return 0, r.callError(ctx, n, "latest sealed block header", err)
	}
	h := resp.GetBlock().GetHeight()
	if limit := r.headLimit(); h > limit {
		return 0, fmt.Errorf("access node %s: latest sealed block header: the node claims height %d, beyond any plausible head (at most %d); not believed", n.addr, h, limit)
	}
	n.setSealed(h)
	r.setHead(h)
	return h, nil
}

// sameBlock checks that the nodes that serve the checkpoint's height agree
// about its block: a sealed block never changes, so a node that names
// another one at that height serves another chain (or lies) and is not
// followed. A node that does not answer is not asked again here.
func (r *run) sameBlock(ctx context.Context, cp store.Checkpoint) error {
	if cp.BlockID == "" {
		return nil
	}
	for _, n := range r.servingNodes(cp.Height) {
		cctx, cancel := context.WithTimeout(ctx, r.s.callTimeout)
		resp, err := n.access.GetBlockHeaderByHeight(cctx, &access.GetBlockHeaderByHeightRequest{Height: cp.Height})
		cancel()
		if err != nil {
			continue
		}
		if got := hex.EncodeToString(resp.GetBlock().GetId()); got != cp.BlockID {
			return fmt.Errorf("access node %s: its sealed block %d is %s, the stored checkpoint's is %s: a sealed block never changes; not following this node", n.addr, cp.Height, got, cp.BlockID)
		}
	}
	return nil
}

// Bounds on a believable sealed head: on a first start, plausibleHeight
// (Flow mainnet is near 10^8; this is a millennium of one block a
// second); else headJump past the highest height known (half a year of
// Flow blocks). A node once claimed 2^64-1, and the checkpoint then
// wrapped to 0.
const (
	plausibleHeight = 1 << 40
	headJump        = 1 << 24
)

func (r *run) headLimit() uint64 {
	known := max(r.known, r.head.Load())
	if known == 0 {
		return plausibleHeight
	}
	return known + headJump
}

// setHead reports h as the head unless a higher one was seen.
func (r *run) setHead(h uint64) {
	for {
		old := r.head.Load()
		if h <= old {
			return
		}
		if r.head.CompareAndSwap(old, h) {
			r.sink.SetHead(h)
			return
		}
	}
}

// callError turns a failed call on node n into the error a phase returns,
// and starts the node's backoff when another try may succeed.
// InvalidArgument and Unimplemented cannot be fixed by retrying: they are
// permanent. A height below the node's root (NotFound from a range call,
// InvalidArgument from a stream) means the node no longer serves what it
// said: it is probed again before it is used.
func (r *run) callError(ctx context.Context, n *node, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	st, _ := status.FromError(err)
	msg := st.Message()
	if strings.Contains(msg, "root") && (st.Code() == codes.NotFound || st.Code() == codes.InvalidArgument) {
		n.mu.Lock()
		n.known = false
		n.mu.Unlock()
		return r.nodeError(ctx, n, what, fmt.Errorf("the node no longer serves these heights: %w", err))
	}
	switch st.Code() {
	case codes.InvalidArgument:
		return indexer.Permanent(fmt.Errorf("access node %s: %s: rejected: %s", n.addr, what, msg))
	case codes.Unimplemented:
		return indexer.Permanent(fmt.Errorf("access node %s: %s: the node does not serve it: %s", n.addr, what, msg))
	}
	return r.nodeError(ctx, n, what, err)
}

// emit queues one complete unit of work; a batch with a checkpoint moves
// the forward scan past it.
func (r *run) emit(ctx context.Context, b store.Batch) error {
	b.Source, b.Kind = r.s.cfg.Name, Kind
	if r.dictSent.CompareAndSwap(false, true) {
		b.PayloadDictionary = &PayloadDictionary
		// Flow rewards name their epoch: group_by=epoch needs no schedule.
		b.Epochs = &store.Epochs{Named: true}
	}
	if err := r.sink.Emit(ctx, b); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("emit: %w", err)
	}
	if b.Coverage != nil {
		r.next = b.Coverage.To + 1
	}
	return nil
}

// isCanceled reports whether err only says the run is ending.
func isCanceled(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.Canceled)
}
