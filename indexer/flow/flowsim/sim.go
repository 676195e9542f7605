// Package flowsim is a simulated Flow access node. It serves the real
// generated gRPC services (flow.access.AccessAPI and
// flow.executiondata.ExecutionDataAPI) on a listener of its own, over a
// deterministic chain derived from a seed, with faults that can be injected
// at runtime. Tests, the demo and the benchmarks index it like a real node.
package flowsim

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/executiondata"
	"google.golang.org/grpc"
)

// MaxHeightRange is the most heights one GetEventsForHeightRange call may
// span (flow-go's default: end - start must be below 250).
const MaxHeightRange = 250

// finalizedLag is how many finalized blocks exist above the sealed head; the
// event streams serve sealed blocks only.
const finalizedLag = 2

// Config describes the simulated chain and node.
type Config struct {
	// Seed determines every block id, timestamp, event and amount.
	Seed int64
	// History is the number of sealed blocks above the root at start.
	History uint64
	// BlockInterval is the wall time between new sealed blocks; 0 produces
	// none (tests call Produce instead).
	BlockInterval time.Duration
	// RootHeight is the node's root height, the first it serves: nothing
	// below it exists on this node, and its root block holds no events.
	RootHeight uint64
	// SporkRootHeight is the root of the node's spork, as
	// GetNodeVersionInfo reports it; 0 means RootHeight (a node that
	// joined its spork at the start).
	SporkRootHeight uint64
	// LastHeight, when set, makes the node one of a past spork: every
	// height up to LastHeight is sealed from the start (History is
	// ignored) and no block is ever produced after it.
	LastHeight uint64
	// NoVersionInfo makes GetNodeVersionInfo answer Unimplemented, as
	// access nodes of software older than the call do.
	NoVersionInfo bool
	// LegacyRewardsBelow makes reward payments below this height use the
	// signatures without epochCounter (RewardsPaid(nodeID, amount),
	// DelegatorRewardsPaid(nodeID, delegatorID, amount)), as mainnet's
	// staking contract emitted them before; 0 means none.
	LegacyRewardsBelow uint64
	// StakingContract is the address (hex, no 0x) of FlowIDTableStaking;
	// empty means DefaultStakingContract.
	StakingContract string
	// CallLatency is added to every GetEventsForHeightRange call, to model a
	// remote node in benchmarks.
	CallLatency time.Duration
	// ChainID is what GetNetworkParameters reports; empty means "flow-sim".
	ChainID string
	// GenesisTime is the timestamp of height 0 (block times count from
	// there, whatever the node's root); zero means 2026-01-01 UTC.
	GenesisTime time.Time
	// BlockTimeStep is the nominal time between block timestamps (each block
	// adds up to a quarter of it as jitter); zero means one second.
	BlockTimeStep time.Duration
	// BackHistory, when set, makes the blocks up to this height
	// BackHistoryStep apart instead of BlockTimeStep: a few thousand blocks
	// span weeks of block time, and the blocks after them follow at the
	// live pace. Timestamps increase strictly across the change, as a
	// chain's must.
	BackHistory uint64
	// BackHistoryStep is the nominal time between the timestamps of the
	// back-history's blocks; zero means BlockTimeStep.
	BackHistoryStep time.Duration
	// RewardEvery makes every RewardEvery-th block pay all staking nodes and
	// their delegators; zero means 60.
	RewardEvery uint64
	// Now is the clock used for timed faults; nil means time.Now.
	Now func() time.Time
}

// DefaultConfig is a chain suited to a demo: a few thousand blocks of
// history spread over three weeks of block time, one new block per second.
func DefaultConfig() Config {
	return Config{
		Seed:          1,
		History:       3000,
		BlockInterval: time.Second,
		BlockTimeStep: 10 * time.Minute,
		RewardEvery:   60,
	}
}

func (c *Config) applyDefaults() {
	if c.StakingContract == "" {
		c.StakingContract = DefaultStakingContract
	}
	if c.ChainID == "" {
		c.ChainID = "flow-sim"
	}
	if c.GenesisTime.IsZero() {
		c.GenesisTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if c.BlockTimeStep <= 0 {
		c.BlockTimeStep = time.Second
	}
	if c.BackHistoryStep <= 0 {
		c.BackHistoryStep = c.BlockTimeStep
	}
	if c.RewardEvery == 0 {
		c.RewardEvery = 60
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Sim is a running simulated access node.
type Sim struct {
	cfg   Config
	chain *chain
	lis   net.Listener
	srv   *grpc.Server

	mu      sync.Mutex
	sealed  uint64
	latency time.Duration
	signal  chan struct{} // closed and replaced whenever a block is sealed
	faults  faults
	stats   Stats
	// encoded holds the range answers PrecomputeRanges stored.
	encoded map[rangeKey]encodedMessage
	// blockMsgs holds the stream responses PrecomputeBlocks stored, of
	// the heights from blockMsgsFrom on.
	blockMsgs     []blockMessage
	blockMsgsFrom uint64

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Start builds the chain, listens on listenAddr (use "127.0.0.1:0" for a
// free port) and serves until Close is called or ctx ends.
func Start(ctx context.Context, listenAddr string, cfg Config) (*Sim, error) {
	cfg.applyDefaults()
	if _, ok := normalizeAddress(cfg.StakingContract); !ok {
		return nil, fmt.Errorf("staking contract: invalid address %q", cfg.StakingContract)
	}
	if cfg.RootHeight+cfg.History < cfg.RootHeight {
		return nil, fmt.Errorf("history: %d overflows the height range", cfg.History)
	}
	if cfg.LastHeight > 0 && cfg.LastHeight < cfg.RootHeight {
		return nil, fmt.Errorf("last height: %d is below the root height %d", cfg.LastHeight, cfg.RootHeight)
	}
	if cfg.SporkRootHeight > cfg.RootHeight {
		return nil, fmt.Errorf("spork root height: %d is above the node's root height %d", cfg.SporkRootHeight, cfg.RootHeight)
	}
	sealed := cfg.RootHeight + cfg.History
	if cfg.LastHeight > 0 {
		sealed = cfg.LastHeight
	}
	lis, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &Sim{
		cfg:     cfg,
		chain:   newChain(cfg),
		lis:     lis,
		sealed:  sealed,
		latency: cfg.CallLatency,
		signal:  make(chan struct{}),
		done:    make(chan struct{}),
		stats:   Stats{Calls: map[string]int{}},
	}
	s.srv = grpc.NewServer(
		grpc.ChainUnaryInterceptor(s.unaryInterceptor),
		grpc.ChainStreamInterceptor(s.streamInterceptor),
		grpc.ForceServerCodecV2(newEncodedCodec()),
	)
	as := &accessServer{s: s}
	s.srv.RegisterService(accessServiceDesc(as), as)
	executiondata.RegisterExecutionDataAPIServer(s.srv, &executionDataServer{s: s})

	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(lis) // returns when Close stops the server
	}()
	if cfg.BlockInterval > 0 && cfg.LastHeight == 0 {
		s.wg.Add(1)
		go s.produceLoop(cfg.BlockInterval)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
			s.stop()
		case <-s.done:
		}
	}()
	return s, nil
}

// Addr is the address the node listens on, e.g. "127.0.0.1:41234".
func (s *Sim) Addr() string { return s.lis.Addr().String() }

// Close stops serving, ends every open stream and waits for the
// simulator's goroutines. It is safe to call more than once.
func (s *Sim) Close() {
	s.stop()
	s.wg.Wait()
}

func (s *Sim) stop() {
	s.closeOnce.Do(func() {
		close(s.done)
		// Stop, not GracefulStop: event streams never end on their own.
		s.srv.Stop()
	})
}

func (s *Sim) produceLoop(interval time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.Produce(1)
		}
	}
}

// Produce seals n new blocks at once and wakes the streams waiting for
// them. A past spork's node (LastHeight set) produces nothing.
func (s *Sim) Produce(n uint64) {
	if n == 0 || s.cfg.LastHeight > 0 {
		return
	}
	s.mu.Lock()
	s.sealed += n
	close(s.signal)
	s.signal = make(chan struct{})
	s.mu.Unlock()
}

// SealedHeight is the latest sealed height.
func (s *Sim) SealedHeight() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sealed
}

// RootHeight is the node's root height; streams start above it.
func (s *Sim) RootHeight() uint64 { return s.cfg.RootHeight }

// SporkRootHeight is the root height of the node's spork.
func (s *Sim) SporkRootHeight() uint64 {
	if s.cfg.SporkRootHeight > 0 {
		return s.cfg.SporkRootHeight
	}
	return s.cfg.RootHeight
}

// LastHeight is a past spork's last sealed height; 0 for a node that keeps
// producing.
func (s *Sim) LastHeight() uint64 { return s.cfg.LastHeight }

// ChainID is the chain id GetNetworkParameters reports.
func (s *Sim) ChainID() string { return s.cfg.ChainID }

// StakingContract is the address (hex, no 0x) whose FlowIDTableStaking
// events pay the rewards.
func (s *Sim) StakingContract() string { return s.cfg.StakingContract }

// SetCallLatency changes the latency added to GetEventsForHeightRange calls.
func (s *Sim) SetCallLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// waitSealed blocks until height is sealed, ctx ends or the simulator closes.
func (s *Sim) waitSealed(ctx context.Context, height uint64) error {
	for {
		s.mu.Lock()
		sealed, signal := s.sealed, s.signal
		s.mu.Unlock()
		if height <= sealed {
			return nil
		}
		select {
		case <-signal:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return errClosed
		}
	}
}

// Block returns the sealed block at height with all its events; false when
// the height is below the root or not sealed yet.
func (s *Sim) Block(height uint64) (Block, bool) {
	if height < s.cfg.RootHeight || height > s.SealedHeight() {
		return Block{}, false
	}
	return s.chain.block(height), true
}

// Events returns, for every sealed height in [from, to] (clipped to the root
// and the sealed head), the block with only the events f selects. Heights
// without a matching event are included with no events.
func (s *Sim) Events(from, to uint64, f Filter) ([]Block, error) {
	cf, err := f.compile()
	if err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	from = max(from, s.cfg.RootHeight)
	to = min(to, s.SealedHeight())
	var out []Block
	for h := from; h <= to && h >= from; h++ {
		b := s.chain.block(h)
		b.Events = cf.apply(b.Events)
		out = append(out, b)
	}
	return out, nil
}

// Rewards returns every staking payment at sealed heights in [from, to].
func (s *Sim) Rewards(from, to uint64) []Reward {
	var out []Reward
	s.payouts(from, to, func(rs []Reward, _ *EpochTotal) { out = append(out, rs...) })
	return out
}

// EpochTotals returns every epoch payout (EpochTotalRewardsPaid) at sealed
// heights in [from, to].
func (s *Sim) EpochTotals(from, to uint64) []EpochTotal {
	var out []EpochTotal
	s.payouts(from, to, func(_ []Reward, et *EpochTotal) { out = append(out, *et) })
	return out
}

// payouts hands fn each reward block's payments and epoch total among the
// heights this node serves in [from, to].
func (s *Sim) payouts(from, to uint64, fn func([]Reward, *EpochTotal)) {
	from = max(from, s.cfg.RootHeight+1)
	to = min(to, s.SealedHeight())
	for h := from; h <= to && h >= from; h++ {
		if !s.chain.isRewardBlock(h) {
			continue
		}
		if _, rs, et := s.chain.eventsOf(h, func(string) bool { return false }); et != nil {
			fn(rs, et)
		}
	}
}

// RewardTotals sums Rewards(from, to) per node id: node and delegator
// payments together, as an index keyed by node id would.
func (s *Sim) RewardTotals(from, to uint64) map[string]RewardTotal {
	return rewardTotals(s.Rewards(from, to))
}

func rewardTotals(rs []Reward) map[string]RewardTotal {
	out := map[string]RewardTotal{}
	for _, r := range rs {
		t := out[r.NodeID]
		t.Count++
		t.Raw += r.Raw
		out[r.NodeID] = t
	}
	return out
}
