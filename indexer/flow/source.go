// Package flow indexes a Flow access node: events (with the blocks that
// hold them and the staking rewards among them) from
// ExecutionDataAPI.SubscribeEventsFromStartHeight, with history fetched
// through AccessAPI.GetEventsForHeightRange when the source is far behind.
package flow

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/access"
	"github.com/onflow/flow/protobuf/go/flow/entities"
	"github.com/onflow/flow/protobuf/go/flow/executiondata"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
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

// Endpoint is the access node address; it holds no secret.
func (s *Source) Endpoint() string { return s.cfg.Endpoint }

// Config returns the effective configuration, defaults filled in.
func (s *Source) Config() Config { return s.cfg }

// run is the state of one Run call.
type run struct {
	s       *Source
	sink    indexer.Sink
	log     *zerolog.Logger
	access  access.AccessAPIClient
	stream  executiondata.ExecutionDataAPIClient
	dec     *decoder
	head    atomic.Uint64
	known   uint64 // the stored checkpoint's height, for head plausibility
	badOnce atomic.Bool
	// dictSent is set once the run's first batch carried the payload
	// dictionary; the store keeps it for the source from then on.
	dictSent atomic.Bool
}

// Run indexes from the resume point until ctx ends (it returns nil) or the
// node fails (it returns the error; the Runner retries from the stored
// checkpoint). A start height the node cannot serve is a permanent error.
func (s *Source) Run(ctx context.Context, resume indexer.Resume, sink indexer.Sink) error {
	creds := insecure.NewCredentials()
	if s.cfg.TLS {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// A range of busy blocks easily exceeds gRPC's 4 MiB default.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes)),
	}, s.dialOpts...)
	conn, err := grpc.NewClient(s.cfg.Endpoint, opts...)
	if err != nil {
		return indexer.Permanent(fmt.Errorf("endpoint %q: %w", s.cfg.Endpoint, err))
	}
	defer conn.Close()

	r := &run{
		s:      s,
		sink:   sink,
		log:    sink.Log(),
		access: access.NewAccessAPIClient(conn),
		stream: executiondata.NewExecutionDataAPIClient(conn),
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
	err = r.run(ctx, resume)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (r *run) run(ctx context.Context, resume indexer.Resume) error {
	cfg := &r.s.cfg
	head, err := r.sealedHead(ctx)
	if err != nil {
		return err
	}
	if resume.Found && resume.Checkpoint.Height == math.MaxUint64 {
		return indexer.Permanent(fmt.Errorf("stored checkpoint %d cannot be followed: no height comes after it", resume.Checkpoint.Height))
	}
	r.known = resume.Checkpoint.Height
	if resume.Found {
		if err := r.sameBlock(ctx, resume.Checkpoint); err != nil {
			return err
		}
	}
	next := resume.Checkpoint.Height + 1
	if !resume.Found {
		next = cfg.StartHeight
		if next == 0 {
			next = head
			r.log.Info().Uint64("start_height", next).Msg("first start at the node's latest sealed height")
		}
	}

	// Catch up with range calls while far behind; the head moves during a
	// long backfill, so look again after each one.
	for cfg.canBackfill() && head >= next && head-next+1 > cfg.Backfill.Distance {
		if next, err = r.backfill(ctx, next, head); err != nil {
			return err
		}
		if head, err = r.sealedHead(ctx); err != nil {
			return err
		}
	}
	return r.live(ctx, next)
}

// sealedHead asks for the latest sealed height and reports it as the head.
func (r *run) sealedHead(ctx context.Context) (uint64, error) {
	cctx, cancel := context.WithTimeout(ctx, r.s.callTimeout)
	defer cancel()
	resp, err := r.access.GetLatestBlockHeader(cctx, &access.GetLatestBlockHeaderRequest{IsSealed: true})
	if err != nil {
		return 0, r.callError(ctx, "latest sealed block header", 0, err)
	}
	h := resp.GetBlock().GetHeight()
	if limit := r.headLimit(); h > limit {
		return 0, fmt.Errorf("latest sealed block header: the access node claims height %d, beyond any plausible head (at most %d); not believed", h, limit)
	}
	r.setHead(h)
	return h, nil
}

// sameBlock checks that the node agrees about the checkpoint's block: a
// sealed block never changes, so a node that names another one at that
// height serves another chain (or lies) and is not followed. A node that
// does not have the height (an earlier spork's) cannot be asked.
func (r *run) sameBlock(ctx context.Context, cp store.Checkpoint) error {
	if cp.BlockID == "" {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, r.s.callTimeout)
	defer cancel()
	resp, err := r.access.GetBlockHeaderByHeight(cctx, &access.GetBlockHeaderByHeightRequest{Height: cp.Height})
	if err != nil {
		return nil
	}
	if got := hex.EncodeToString(resp.GetBlock().GetId()); got != cp.BlockID {
		return fmt.Errorf("the access node's sealed block %d is %s, the stored checkpoint's is %s: a sealed block never changes; not following this node", cp.Height, got, cp.BlockID)
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

// callError turns a failed call into the error Run returns. InvalidArgument
// and Unimplemented cannot be fixed by retrying: they are permanent, and a
// start below the node's root says which heights the node serves.
func (r *run) callError(ctx context.Context, what string, start uint64, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.InvalidArgument, codes.NotFound:
		// flow-go: a stream below the root is InvalidArgument, a range
		// call below it NotFound ("try to use a historic node").
		if start > 0 {
			if root, ok := r.rootHeight(ctx); ok && start < root {
				return indexer.Permanent(fmt.Errorf("%s: start height %d is below the access node's root height %d (the first height it serves); set start_height to %d or above, or use a node with older history", what, start, root, root))
			}
		}
		if st.Code() == codes.NotFound {
			return fmt.Errorf("%s: %w", what, err) // not finalized yet
		}
		return indexer.Permanent(fmt.Errorf("%s: rejected by the access node: %s", what, st.Message()))
	case codes.Unimplemented:
		return indexer.Permanent(fmt.Errorf("%s: the access node does not serve it: %s", what, st.Message()))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// rootHeight asks the node for the first height it serves.
func (r *run) rootHeight(ctx context.Context) (uint64, bool) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := r.access.GetNodeVersionInfo(cctx, &access.GetNodeVersionInfoRequest{})
	if err != nil || resp.GetInfo() == nil {
		return 0, false
	}
	return resp.GetInfo().GetNodeRootBlockHeight(), true
}

// emit queues one complete unit of work.
func (r *run) emit(ctx context.Context, b store.Batch) error {
	b.Source, b.Kind = r.s.cfg.Name, Kind
	if r.dictSent.CompareAndSwap(false, true) {
		b.PayloadDictionary = &PayloadDictionary
	}
	if err := r.sink.Emit(ctx, b); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("emit: %w", err)
	}
	return nil
}

// isCanceled reports whether err only says the run is ending.
func isCanceled(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.Canceled)
}
