// Package spacemesh indexes a Spacemesh node: the rewards of tracked
// coinbases and smeshers (read by layer range through v2alpha1
// RewardService.List, or v1 GlobalStateService on older nodes), its layers
// as blocks, its status as node snapshots and, from the private listener,
// its admin events. Layer progress is the heartbeat: each applied layer
// completes the rewards up to it, and each heartbeat re-reads the last
// Hdist layers so reverts are reconciled.
package spacemesh

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/rs/zerolog"
	smv1 "github.com/spacemeshos/api/release/go/spacemesh/v1"
	smv2 "github.com/spacemeshos/api/release/go/spacemesh/v2alpha1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/store"
)

// Kind is the source kind stored with the records and shown by the API.
const Kind = "spacemesh"

// KindSmesherReward is the kind of the source's rewards, as the API
// serves it.
const KindSmesherReward = "smesher_reward"

// maxMessageBytes bounds one response: a range of layers with their blocks
// easily exceeds gRPC's 4 MiB default.
const maxMessageBytes = 64 << 20

// Source indexes one Spacemesh node.
type Source struct {
	cfg      Config
	smeshers [][]byte // decoded Config.Smeshers
	dialOpts []grpc.DialOption
}

var _ indexer.Source = (*Source)(nil)

// Option adjusts a Source, mostly for tests.
type Option func(*Source)

// WithDialOptions adds gRPC dial options (interceptors, message sizes).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(s *Source) { s.dialOpts = append(s.dialOpts, opts...) }
}

// New validates cfg (filling in defaults) and returns the source; nothing
// connects until Run.
func New(cfg Config, opts ...Option) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newSource(cfg, opts...), nil
}

// NewSource builds the source of a configuration Validate accepted; it is
// how `evindex run` builds a spacemesh source after checking the whole
// file.
func (c *Config) NewSource() (indexer.Source, error) { return newSource(*c), nil }

func newSource(cfg Config, opts ...Option) *Source {
	cfg.setDefaults()
	if cfg.NodeName == "" {
		cfg.NodeName = cfg.Name
	}
	s := &Source{}
	coinbases := make([]string, len(cfg.Coinbases))
	for i, a := range cfg.Coinbases {
		coinbases[i] = normalizeAddress(a)
	}
	smeshers := make([]string, len(cfg.Smeshers))
	for i, id := range cfg.Smeshers {
		b, _ := parseSmesher(id)
		s.smeshers = append(s.smeshers, b)
		smeshers[i] = hex.EncodeToString(b)
	}
	cfg.Coinbases, cfg.Smeshers = coinbases, smeshers
	s.cfg = cfg
	for _, o := range opts {
		o(s)
	}
	return s
}

// Name is the configured source name.
func (s *Source) Name() string { return s.cfg.Name }

// Kind is "spacemesh".
func (s *Source) Kind() string { return Kind }

// Endpoint is the node's public address; it holds no secret.
func (s *Source) Endpoint() string { return s.cfg.PublicEndpoint }

// Config returns the effective configuration, defaults filled in.
func (s *Source) Config() Config { return s.cfg }

func (s *Source) dial(endpoint string) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if s.cfg.TLS {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes)),
	}, s.dialOpts...)
	return grpc.NewClient(endpoint, opts...)
}

// run is the state of one Run call. Only the goroutine running loop
// touches the sink; the stream followers talk to it through channels.
type run struct {
	s    *Source
	cfg  *Config
	sink indexer.Sink
	log  *zerolog.Logger

	node    smv1.NodeServiceClient
	mesh    smv1.MeshServiceClient
	global  smv1.GlobalStateServiceClient
	reward  smv2.RewardServiceClient
	network smv2.NetworkServiceClient
	admin   smv1.AdminServiceClient // nil without a private endpoint

	net        network
	v1         bool // rewards through v1 GlobalStateService
	next       uint64
	indexed    bool // some layer below next is in the store
	hints      map[string]v1Hint
	unsortedV1 bool
	status     statusTracker

	poke   chan struct{}    // capacity 1: something changed upstream
	events chan store.Batch // admin events (or their rejected records), in arrival order

	head     uint64                  // the last verified layer believed
	rejected []store.Rejected        // quarantined while reading a range; go with its batch
	flood    map[uint64]*layerEvents // admin events seen per recent layer, for the bound
	// lastEvent is the time of the newest admin event stored; only the
	// admin stream's follower touches it once it runs.
	lastEvent time.Time
}

// Bounds on what a node may claim or send.
const (
	// headSlack is how far beyond the current layer (by genesis and layer
	// duration) a claimed verified layer may lie and still be believed;
	// a node that said 2^32-1 would have made the checkpoint leap there.
	headSlack = 1000
	// maxRewardsPerLayer bounds the rewards one filter can have in a
	// layer: a layer's block pays about 50 proposals in all.
	maxRewardsPerLayer = 200
	// maxEventsPerLayer bounds the admin events stored per layer; a node
	// emits a handful.
	maxEventsPerLayer = 1000
)

// Run indexes from the resume point until ctx ends (it returns nil) or the
// node fails (it returns the error; the Runner retries from the stored
// checkpoint). A coinbase of another network is a permanent error.
func (s *Source) Run(ctx context.Context, resume indexer.Resume, sink indexer.Sink) error {
	pub, err := s.dial(s.cfg.PublicEndpoint)
	if err != nil {
		return indexer.Permanent(fmt.Errorf("public_endpoint %q: %w", s.cfg.PublicEndpoint, err))
	}
	defer pub.Close()
	r := &run{
		s: s, cfg: &s.cfg, sink: sink, log: sink.Log(),
		node:    smv1.NewNodeServiceClient(pub),
		mesh:    smv1.NewMeshServiceClient(pub),
		global:  smv1.NewGlobalStateServiceClient(pub),
		reward:  smv2.NewRewardServiceClient(pub),
		network: smv2.NewNetworkServiceClient(pub),
		hints:   map[string]v1Hint{},
		poke:    make(chan struct{}, 1),
		events:  make(chan store.Batch),
		flood:   map[uint64]*layerEvents{},
		status:  statusTracker{every: s.cfg.StatusEvery},
	}
	if s.cfg.PrivateEndpoint != "" {
		priv, err := s.dial(s.cfg.PrivateEndpoint)
		if err != nil {
			return indexer.Permanent(fmt.Errorf("private_endpoint %q: %w", s.cfg.PrivateEndpoint, err))
		}
		defer priv.Close()
		r.admin = smv1.NewAdminServiceClient(priv)
	}
	sink.SetState(store.StateStarting)

	if r.net, err = r.fetchNetwork(ctx); err != nil {
		return ctxNil(ctx, err)
	}
	if err := r.checkHRP(); err != nil {
		return indexer.Permanent(err)
	}
	if r.v1, err = r.probeRewardAPI(ctx); err != nil {
		return ctxNil(ctx, err)
	}
	if r.v1 && len(s.smeshers) > 0 {
		r.log.Warn().Msg("the node has no v2alpha1 RewardService: smesher ids match only rewards paid to the tracked coinbases")
	}
	if err := sink.Emit(ctx, store.Batch{Meta: r.meta(), Epochs: &store.Epochs{
		Genesis: r.net.genesis, BlockDuration: r.net.layerDuration, BlocksPerEpoch: uint64(r.net.layersPerEpoch),
	}}); err != nil {
		return ctxNil(ctx, err)
	}

	if resume.State != nil {
		raw, err := resume.State(statusKey)
		if err != nil {
			return ctxNil(ctx, fmt.Errorf("read source state: %w", err))
		}
		r.status.restore(raw)
		if raw, err = resume.State(lastEventKey); err != nil {
			return ctxNil(ctx, fmt.Errorf("read source state: %w", err))
		}
		if t, err := time.Parse(time.RFC3339Nano, string(raw)); err == nil {
			r.lastEvent = t
		}
	}
	r.next = s.cfg.StartLayer
	if resume.Found {
		// Layers are 32-bit: a checkpoint past the last one was never a
		// node's, and must not wrap into a resume from 0.
		if resume.Checkpoint.Height >= 1<<32-1 {
			return indexer.Permanent(fmt.Errorf("stored checkpoint %d is beyond the last layer a node can have", resume.Checkpoint.Height))
		}
		r.next = resume.Checkpoint.Height + 1
		r.indexed = true
	}
	r.head = r.next - min(r.next, 1)

	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	r.startFollowers(fctx, &wg)

	err = r.loop(ctx)
	return ctxNil(ctx, err)
}

// ctxNil turns any error after ctx ended into nil: the run was stopped,
// it did not fail.
func ctxNil(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// loop steps whenever something may have changed upstream: a stream
// message, a reopened stream, or the poll interval passing.
func (r *run) loop(ctx context.Context) error {
	tick := time.NewTicker(r.cfg.PollInterval)
	defer tick.Stop()
	for {
		if err := r.step(ctx); err != nil {
			return err
		}
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return nil
			case <-r.poke:
				waiting = false
			case <-tick.C:
				waiting = false
			case b := <-r.events:
				if err := r.sink.Emit(ctx, r.boundEvents(b)); err != nil {
					return err
				}
			}
		}
	}
}

// pokeLoop asks the loop for a step without blocking; pokes coalesce.
func (r *run) pokeLoop() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

func (r *run) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.cfg.CallTimeout)
}

// step reads the node's status and indexes every layer it has applied
// since the checkpoint, in chunks, each with the reconcile window before
// it; with nothing new it still re-reads the window.
func (r *run) step(ctx context.Context) error {
	cctx, cancel := r.call(ctx)
	st, err := r.node.Status(cctx, &smv1.StatusRequest{})
	cancel()
	if err != nil {
		return fmt.Errorf("node status: %w", err)
	}
	if err := r.observeStatus(ctx, st.GetStatus()); err != nil {
		return err
	}
	applied := r.believedHead(uint64(st.GetStatus().GetVerifiedLayer().GetNumber()))
	r.sink.SetHead(applied)

	if r.next > applied {
		r.sink.SetState(store.StateLive)
		if !r.indexed {
			return nil
		}
		from, to := r.window(), min(r.next-1, applied)
		if from > to {
			return nil
		}
		b, err := r.readRange(ctx, from, to)
		if err != nil {
			return err
		}
		return r.sink.Emit(ctx, b)
	}

	begin := r.next
	for r.next <= applied {
		end := min(applied, r.next+r.cfg.ChunkLayers-1)
		if end < applied {
			r.sink.SetState(store.StateBackfilling)
			r.sink.SetProgress(r.next-begin, applied+1-begin)
		}
		from := r.next
		if r.indexed {
			from = r.window()
		}
		b, err := r.readRange(ctx, from, end)
		if err != nil {
			return err
		}
		b.Coverage = &store.Range{From: from, To: end}
		b.Checkpoint = &store.Checkpoint{Height: end, BlockID: r.lastBlockID(&b, end), Time: r.net.layerTime(end)}
		if err := r.sink.Emit(ctx, b); err != nil {
			return err
		}
		r.next, r.indexed = end+1, true
	}
	r.sink.SetState(store.StateLive)
	return nil
}

// believedHead is the node's verified layer when it is plausible: at most
// headSlack layers past the layer the clock is in. An implausible claim is
// not believed; the last believed head stands.
func (r *run) believedHead(claimed uint64) uint64 {
	if limit := r.net.layerAt(r.cfg.Now()) + headSlack; claimed > limit {
		r.sink.Warn().Uint64("claimed", claimed).Uint64("current_layer", limit-headSlack).
			Msg("the node claims a verified layer far beyond the current one; not believed")
		return r.head
	}
	r.head = claimed
	return claimed
}

// layerEvents are the distinct admin events of one layer seen in this run
// (a replay after a reconnect is the same event) and how many past the
// bound were not stored.
type layerEvents struct {
	seen map[uint64]bool
	over uint64
}

// boundEvents keeps at most maxEventsPerLayer distinct admin events per
// layer; past that, one rejected record per layer says how many more
// there were.
func (r *run) boundEvents(b store.Batch) store.Batch {
	if len(b.Events) == 0 {
		return b
	}
	e := &b.Events[0]
	if len(r.flood) > 64 { // only the last few layers get events
		clear(r.flood)
	}
	le := r.flood[e.Height]
	if le == nil {
		le = &layerEvents{seen: map[uint64]bool{}}
		r.flood[e.Height] = le
	}
	id := uint64(e.TxIndex)<<32 | uint64(e.EventIndex)
	if le.seen[id] || len(le.seen) < maxEventsPerLayer {
		le.seen[id] = true
		return b
	}
	h := e.Height
	le.over++
	b.Events = nil
	if over := le.over; over == 1 || over%1000 == 0 {
		b.Rejected = append(b.Rejected, store.NewRejected(store.RecordEvent, h, "admin events beyond the bound", "",
			fmt.Sprintf("at least %d admin events in layer %d beyond the bound of %d were not stored", over, h, maxEventsPerLayer), nil))
	}
	return b
}

// window is the first layer a reconcile re-reads: Hdist layers below the
// next one, not below the start layer unless the checkpoint already is.
func (r *run) window() uint64 {
	var from uint64
	if r.next > r.cfg.ReconcileLayers {
		from = r.next - r.cfg.ReconcileLayers
	}
	if s := r.cfg.StartLayer; s <= r.next && s > from {
		from = s
	}
	return from
}

func (r *run) lastBlockID(b *store.Batch, height uint64) string {
	for i := len(b.Blocks) - 1; i >= 0; i-- {
		if b.Blocks[i].Height == height {
			return b.Blocks[i].BlockID
		}
	}
	return ""
}

// readRange reads the layers and the tracked rewards of [from, to] into a
// batch that replaces every stored reward of the range.
func (r *run) readRange(ctx context.Context, from, to uint64) (store.Batch, error) {
	blocks, err := r.readLayers(ctx, from, to)
	if err != nil {
		return store.Batch{}, err
	}
	r.rejected = nil
	rewards, err := r.readRewards(ctx, from, to)
	if err != nil {
		return store.Batch{}, err
	}
	return store.Batch{Blocks: blocks, Rewards: rewards, Rejected: r.rejected, ReplaceRewards: &store.Range{From: from, To: to}}, nil
}

// network holds the facts the node reports about its network.
type network struct {
	hrp              string
	genesis          time.Time
	layerDuration    time.Duration
	layersPerEpoch   uint32
	effectiveGenesis uint32
	genesisID        []byte
	api              string // the API the facts came from
}

// layerTime is when a layer starts. Layers are 32-bit, and genesis plus
// 2^32 five-minute layers overflows a Duration; such a layer gets the zero
// time (unknown) rather than one that wrapped.
func (n *network) layerTime(layer uint64) time.Time {
	if n.layerDuration > 0 && layer > uint64(math.MaxInt64/int64(n.layerDuration)) {
		return time.Time{}
	}
	return n.genesis.Add(time.Duration(layer) * n.layerDuration)
}

// layerAt is the layer a moment falls in (0 before genesis).
func (n *network) layerAt(t time.Time) uint64 {
	if t.Before(n.genesis) || n.layerDuration <= 0 {
		return 0
	}
	return uint64(t.Sub(n.genesis) / n.layerDuration)
}

// fetchNetwork asks v2alpha1 NetworkService.Info, or on an older node v1
// NodeService.NodeInfo and MeshService (whose layer duration is whole
// seconds).
func (r *run) fetchNetwork(ctx context.Context) (network, error) {
	cctx, cancel := r.call(ctx)
	defer cancel()
	info, err := r.network.Info(cctx, &smv2.NetworkInfoRequest{})
	if err == nil {
		n := network{
			hrp:              info.GetHrp(),
			genesis:          info.GetGenesisTime().AsTime().UTC(),
			layerDuration:    info.GetLayerDuration().AsDuration(),
			layersPerEpoch:   info.GetLayersPerEpoch(),
			effectiveGenesis: info.GetEffectiveGenesisLayer(),
			genesisID:        info.GetGenesisId(),
			api:              "v2alpha1",
		}
		return n, n.check()
	}
	if status.Code(err) != codes.Unimplemented {
		return network{}, fmt.Errorf("network info: %w", err)
	}
	ni, err := r.node.NodeInfo(cctx, &emptypb.Empty{})
	if err != nil {
		if status.Code(err) == codes.Unimplemented {
			return network{}, indexer.Permanent(fmt.Errorf("public_endpoint %q: not a Spacemesh node (NodeInfo: %w)", r.cfg.PublicEndpoint, err))
		}
		return network{}, fmt.Errorf("node info: %w", err)
	}
	gt, err := r.mesh.GenesisTime(cctx, &smv1.GenesisTimeRequest{})
	if err != nil {
		return network{}, fmt.Errorf("genesis time: %w", err)
	}
	ld, err := r.mesh.LayerDuration(cctx, &smv1.LayerDurationRequest{})
	if err != nil {
		return network{}, fmt.Errorf("layer duration: %w", err)
	}
	gid, err := r.mesh.GenesisID(cctx, &smv1.GenesisIDRequest{})
	if err != nil && status.Code(err) != codes.Unimplemented {
		return network{}, fmt.Errorf("genesis id: %w", err)
	}
	n := network{
		hrp:              ni.GetHrp(),
		genesis:          time.Unix(int64(gt.GetUnixtime().GetValue()), 0).UTC(),
		layerDuration:    time.Duration(ld.GetDuration().GetValue()) * time.Second,
		layersPerEpoch:   ni.GetEpochSize(),
		effectiveGenesis: ni.GetEffectiveGenesis(),
		genesisID:        gid.GetGenesisId(),
		api:              "v1",
	}
	return n, n.check()
}

func (n *network) check() error {
	switch {
	case n.hrp == "":
		return fmt.Errorf("network info: the node reports no address prefix")
	case n.layerDuration <= 0:
		return fmt.Errorf("network info: the node reports a layer duration of %s", n.layerDuration)
	case n.layersPerEpoch == 0:
		return fmt.Errorf("network info: the node reports 0 layers per epoch")
	}
	return nil
}

// checkHRP compares the coinbases' prefix with the node's network.
func (r *run) checkHRP() error {
	for i, a := range r.cfg.Coinbases {
		hrp, err := parseAddress(a)
		if err != nil {
			return fmt.Errorf("coinbases[%d]: %w", i, err)
		}
		if hrp != r.net.hrp {
			return fmt.Errorf("coinbases[%d]: %q is an address of network %q, but the node at %s is on %q", i, a, hrp, r.cfg.PublicEndpoint, r.net.hrp)
		}
	}
	return nil
}

// probeRewardAPI tells whether the node serves v2alpha1 RewardService.
func (r *run) probeRewardAPI(ctx context.Context) (v1 bool, err error) {
	req := &smv2.RewardRequest{StartLayer: 1, EndLayer: 1, Limit: 1}
	switch {
	case len(r.cfg.Coinbases) > 0:
		req.FilterBy = &smv2.RewardRequest_Coinbase{Coinbase: r.cfg.Coinbases[0]}
	case len(r.s.smeshers) > 0:
		req.FilterBy = &smv2.RewardRequest_Smesher{Smesher: r.s.smeshers[0]}
	default:
		return false, nil // nothing to read
	}
	cctx, cancel := r.call(ctx)
	defer cancel()
	_, err = r.reward.List(cctx, req)
	switch status.Code(err) {
	case codes.OK:
		return false, nil
	case codes.Unimplemented:
		r.log.Info().Msg("the node has no v2alpha1 RewardService; reading rewards through v1 GlobalStateService")
		return true, nil
	}
	return false, fmt.Errorf("reward service: %w", err)
}

// meta is what /v1/sources/{name} shows about the network.
func (r *run) meta() json.RawMessage {
	api := "v2alpha1"
	if r.v1 {
		api = "v1"
	}
	m := map[string]any{
		"hrp":               r.net.hrp,
		"genesis_time":      r.net.genesis.Format(time.RFC3339),
		"layer_duration":    r.net.layerDuration.String(),
		"layer_seconds":     r.net.layerDuration.Seconds(),
		"layers_per_epoch":  r.net.layersPerEpoch,
		"effective_genesis": r.net.effectiveGenesis,
		"genesis_id":        hex.EncodeToString(r.net.genesisID),
		"network_api":       r.net.api,
		"reward_api":        api,
		"node":              r.cfg.NodeName,
		"coinbases":         nonNil(r.cfg.Coinbases),
		"smeshers":          nonNil(r.cfg.Smeshers),
		"events":            r.admin != nil,
	}
	b, _ := json.Marshal(m)
	return b
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
