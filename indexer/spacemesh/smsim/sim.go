// Package smsim is a simulated Spacemesh node. It serves the real generated
// gRPC services (v1 Node, Mesh, GlobalState and Admin; v2alpha1 Reward,
// RewardStream, Network, Layer and LayerStream) on a public and a private
// loopback listener, over a deterministic mesh with rewards for several
// smeshers, node status changes and admin events, and it can inject the
// faults an indexer must survive: streams closed with Canceled "buffer is
// full", reverts of the last layers, Unavailable periods and a node without
// the v2alpha1 API.
package smsim

import (
	"context"
	"encoding/hex"
	"fmt"
	"google.golang.org/protobuf/types/known/timestamppb"
	"net"
	"sort"
	"sync"
	"time"

	smv1 "github.com/spacemeshos/api/release/go/spacemesh/v1"
	smv2 "github.com/spacemeshos/api/release/go/spacemesh/v2alpha1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Config describes the simulated network and node.
type Config struct {
	// Seed makes the mesh, rewards and events deterministic.
	Seed int64
	// Layers is how many layers (0 .. Layers-1) are applied at start.
	Layers uint32
	// LayerInterval is the wall-clock time between two new layers; zero
	// stops the clock so layers advance only through Advance (tests).
	LayerInterval time.Duration
	// LayerDuration is the network's layer duration, the fact the node
	// reports. Zero means LayerInterval rounded up to whole seconds (the v1
	// API reports seconds), at least one second.
	LayerDuration time.Duration
	// AlignClock runs the clock on the network's time instead: each new
	// layer is applied as soon as its end (Genesis + (n+1) x LayerDuration)
	// has passed, as a synced node applies it, and LayerInterval is not
	// used. With long layers the newest applied layer is then always the
	// one before the current layer, never one more behind.
	AlignClock bool
	// LayersPerEpoch groups layers into epochs (mainnet: 4032).
	LayersPerEpoch uint32
	// EffectiveGenesis is the last layer without rewards. Zero means
	// 2*LayersPerEpoch-1, as on a fresh network.
	EffectiveGenesis uint32
	// Genesis is the network's genesis time, whole seconds. Zero means
	// Layers layer durations before Start, so the history ends about now.
	Genesis time.Time
	// HRP is the bech32 prefix of addresses (mainnet "sm").
	HRP string
	// V1Only makes the node answer Unimplemented on every v2alpha1 service.
	V1Only bool
	// StreamBuffer is how many undelivered messages a live stream may hold
	// before the node closes it with Canceled "buffer is full".
	StreamBuffer int
	// EventReplay is how many recent admin events EventsStream replays to
	// every new subscriber (the node keeps about 100).
	EventReplay int
}

// DefaultConfig is a small, quick network for tests and `evindex sim
// spacemesh`: 1 s layers, 10 layers per epoch and two minutes of history,
// so rewards show up at once and keep coming. (The demo sets its own
// layers and genesis: indexer/spacemesh/kind.go.)
func DefaultConfig() Config {
	return Config{
		Seed:           1,
		Layers:         120,
		LayerInterval:  time.Second,
		LayersPerEpoch: 10,
		HRP:            "sm",
		StreamBuffer:   100,
		EventReplay:    100,
	}
}

func (c *Config) setDefaults(now time.Time) error {
	if c.LayersPerEpoch == 0 {
		c.LayersPerEpoch = 10
	}
	if c.Layers == 0 {
		c.Layers = 1
	}
	if c.HRP == "" {
		c.HRP = "sm"
	}
	if c.StreamBuffer <= 0 {
		c.StreamBuffer = 100
	}
	if c.EventReplay <= 0 {
		c.EventReplay = 100
	}
	if c.LayerInterval < 0 {
		return fmt.Errorf("layer interval: must not be negative")
	}
	if c.LayerDuration == 0 {
		c.LayerDuration = c.LayerInterval.Round(time.Second)
		if c.LayerDuration < c.LayerInterval {
			c.LayerDuration += time.Second
		}
		if c.LayerDuration < time.Second {
			c.LayerDuration = time.Second
		}
	}
	if c.LayerDuration%time.Second != 0 {
		return fmt.Errorf("layer duration: must be whole seconds, got %s", c.LayerDuration)
	}
	if c.EffectiveGenesis == 0 {
		c.EffectiveGenesis = 2*c.LayersPerEpoch - 1
	}
	if c.Genesis.IsZero() {
		c.Genesis = now.Add(-time.Duration(c.Layers) * c.LayerDuration)
	}
	c.Genesis = c.Genesis.Truncate(time.Second).UTC()
	return nil
}

// Sim is a running simulated node.
type Sim struct {
	cfg           Config
	genesis       time.Time
	layerDuration time.Duration
	ids           []identity
	genesisID     [20]byte

	pubLis, privLis net.Listener
	pubSrv, privSrv *grpc.Server
	cancel          context.CancelFunc
	wg              sync.WaitGroup
	closeOnce       sync.Once

	mu          sync.Mutex
	layers      []layer       // index = layer number; the last one is applied
	events      []*smv1.Event // every admin event emitted, in order
	subs        map[*subscriber]struct{}
	unavailable bool
	downUntil   time.Time
	hostile     Hostile
}

// Hostile makes the node lie the way a buggy or malicious node would.
// The zero value is an honest node.
type Hostile struct {
	// VerifiedLayer, when set, is the verified layer Status claims
	// (e.g. 2^32-1); the node still serves only the layers it has.
	VerifiedLayer uint32
	// BadCoinbaseEvery, when set, replaces the coinbase of about one
	// reward in n (the same ones in every answer) with text that is not a
	// bech32 address.
	BadCoinbaseEvery int
	// EndlessPages makes RewardService.List answer every page full: past
	// the real rewards it repeats the first page.
	EndlessPages bool
	// EventFlood is how many extra admin events each new layer emits.
	EventFlood int
}

// SetHostile switches the node's lies on (or off, with the zero value).
func (s *Sim) SetHostile(h Hostile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hostile = h
}

// badCoinbaseLocked is what a hostile node puts in place of a reward's
// coinbase: not bech32 (a wrong checksum, and an injection attempt for
// spreadsheets).
func (s *Sim) badCoinbaseLocked(r *reward) string {
	if n := s.hostile.BadCoinbaseEvery; n > 0 && (uint64(r.Layer)*31+r.Total)%uint64(n) == 0 {
		return "=HYPERLINK(\"http://x\")" + r.Coinbase[:len(r.Coinbase)-1] + "q"
	}
	return r.Coinbase
}

// Start opens the public and private listeners (an empty address means
// 127.0.0.1:0), builds the history and serves until ctx ends or Close is
// called.
func Start(ctx context.Context, publicAddr, privateAddr string, cfg Config) (*Sim, error) {
	if err := cfg.setDefaults(time.Now()); err != nil {
		return nil, err
	}
	ids, err := identities(cfg.Seed, cfg.HRP)
	if err != nil {
		return nil, fmt.Errorf("hrp: %w", err)
	}
	s := &Sim{
		cfg:           cfg,
		genesis:       cfg.Genesis,
		layerDuration: cfg.LayerDuration,
		ids:           ids,
		subs:          map[*subscriber]struct{}{},
	}
	gid := digest(cfg.Seed, "genesis")
	copy(s.genesisID[:], gid[:20])
	for n := uint32(0); n < cfg.Layers; n++ {
		s.applyLocked(n)
	}

	if publicAddr == "" {
		publicAddr = "127.0.0.1:0"
	}
	if privateAddr == "" {
		privateAddr = "127.0.0.1:0"
	}
	s.pubLis, err = net.Listen("tcp", publicAddr)
	if err != nil {
		return nil, fmt.Errorf("listen public: %w", err)
	}
	s.privLis, err = net.Listen("tcp", privateAddr)
	if err != nil {
		s.pubLis.Close()
		return nil, fmt.Errorf("listen private: %w", err)
	}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.unaryGate),
		grpc.ChainStreamInterceptor(s.streamGate),
	}
	s.pubSrv = grpc.NewServer(opts...)
	s.privSrv = grpc.NewServer(opts...)
	smv1.RegisterNodeServiceServer(s.pubSrv, &nodeService{s: s})
	smv1.RegisterMeshServiceServer(s.pubSrv, &meshService{s: s})
	smv1.RegisterGlobalStateServiceServer(s.pubSrv, &globalStateService{s: s})
	smv1.RegisterAdminServiceServer(s.privSrv, &adminService{s: s})
	if !cfg.V1Only {
		smv2.RegisterNetworkServiceServer(s.pubSrv, &networkService{s: s})
		smv2.RegisterRewardServiceServer(s.pubSrv, &rewardService{s: s})
		smv2.RegisterLayerServiceServer(s.pubSrv, &layerService{s: s})
		smv2.RegisterRewardStreamServiceServer(s.privSrv, &rewardStreamService{s: s})
		smv2.RegisterLayerStreamServiceServer(s.privSrv, &layerStreamService{s: s})
	}

	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(3)
	go func() { defer s.wg.Done(); _ = s.pubSrv.Serve(s.pubLis) }()
	go func() { defer s.wg.Done(); _ = s.privSrv.Serve(s.privLis) }()
	go func() { defer s.wg.Done(); s.clock(ctx) }()
	return s, nil
}

// clock applies a new layer every LayerInterval (or, with AlignClock, at
// each layer's end) and stops the servers when ctx ends.
func (s *Sim) clock(ctx context.Context) {
	var tick <-chan time.Time
	var due *time.Timer
	switch {
	case s.cfg.AlignClock:
		due = time.NewTimer(s.untilLayerEnd())
		defer due.Stop()
		tick = due.C
	case s.cfg.LayerInterval > 0:
		t := time.NewTicker(s.cfg.LayerInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			s.pubSrv.Stop()
			s.privSrv.Stop()
			return
		case <-tick:
			if due == nil {
				s.Advance(1)
				continue
			}
			s.applyEnded()
			due.Reset(s.untilLayerEnd())
		}
	}
}

// untilLayerEnd is how long until the next layer to apply ends.
func (s *Sim) untilLayerEnd() time.Duration {
	s.mu.Lock()
	next := uint32(len(s.layers))
	s.mu.Unlock()
	return time.Until(s.layerTime(next + 1))
}

// applyEnded applies every layer whose end has passed: one, unless the
// process was stopped for a while.
func (s *Sim) applyEnded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for n := uint32(len(s.layers)); !time.Now().Before(s.layerTime(n + 1)); n++ {
		s.applyLocked(n)
	}
}

// Close stops the servers and the layer clock.
func (s *Sim) Close() {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
	})
}

// PublicAddr is the public listener's address (NodeService, MeshService,
// GlobalStateService and the v2alpha1 queries).
func (s *Sim) PublicAddr() string { return s.pubLis.Addr().String() }

// PrivateAddr is the private listener's address (AdminService and the
// v2alpha1 streams).
func (s *Sim) PrivateAddr() string { return s.privLis.Addr().String() }

// Config returns the effective configuration, defaults filled in.
func (s *Sim) Config() Config { return s.cfg }

// Genesis is the network's genesis time.
func (s *Sim) Genesis() time.Time { return s.genesis }

// LayerDuration is the network's layer duration.
func (s *Sim) LayerDuration() time.Duration { return s.layerDuration }

// HRP is the network's bech32 prefix.
func (s *Sim) HRP() string { return s.cfg.HRP }

// Coinbases are the coinbases an operator of this node would track: A
// (shared by the node's two smeshers), B and C. Smesher s4's coinbase D is
// left out so that it is found only through its smesher id, and s5's E is
// someone else's.
func (s *Sim) Coinbases() []string {
	return []string{s.ids[0].coinbase, s.ids[2].coinbase, s.ids[3].coinbase}
}

// Smeshers are the smesher ids (hex) to track: s0 (its coinbase is tracked
// too), s3 (likewise) and s4 (whose coinbase is not tracked).
func (s *Sim) Smeshers() []string {
	return []string{s.smesherHex(0), s.smesherHex(3), s.smesherHex(4)}
}

// AllSmeshers lists every smesher id (hex) on the network, s0 to s5.
func (s *Sim) AllSmeshers() []string {
	out := make([]string, len(s.ids))
	for i := range s.ids {
		out[i] = s.smesherHex(i)
	}
	return out
}

// CoinbaseOf returns the coinbase smesher (hex) is paid to, or "".
func (s *Sim) CoinbaseOf(smesher string) string {
	for i, id := range s.ids {
		if s.smesherHex(i) == smesher {
			return id.coinbase
		}
	}
	return ""
}

func (s *Sim) smesherHex(i int) string { return hex.EncodeToString(s.ids[i].id[:]) }

// AppliedLayer is the newest applied layer: the rewards of every layer up to
// it are final unless reverted.
func (s *Sim) AppliedLayer() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appliedLocked()
}

func (s *Sim) appliedLocked() uint32 { return uint32(len(s.layers) - 1) }

// Totals is an exact reward total: how many rewards and their sum in smidge.
type Totals struct {
	Count int
	Sum   uint64
}

// Rewards returns every current reward of layers from..to (inclusive),
// ordered by layer and smesher.
func (s *Sim) Rewards(from, to uint32) []Reward {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Reward
	for n := from; n <= to && int(n) < len(s.layers); n++ {
		for _, r := range s.layers[n].rewards {
			out = append(out, r.Reward)
		}
	}
	return out
}

// CoinbaseTotals sums the current rewards paid to coinbase in every applied
// layer.
func (s *Sim) CoinbaseTotals(coinbase string) Totals {
	return s.totals(func(r *reward) bool { return r.Coinbase == coinbase })
}

// SmesherTotals sums the current rewards earned by smesher (hex) in every
// applied layer.
func (s *Sim) SmesherTotals(smesher string) Totals {
	return s.totals(func(r *reward) bool { return r.Smesher == smesher })
}

func (s *Sim) totals(match func(*reward) bool) Totals {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t Totals
	for i := range s.layers {
		for j := range s.layers[i].rewards {
			if r := &s.layers[i].rewards[j]; match(r) {
				t.Count++
				t.Sum += r.Total
			}
		}
	}
	return t
}

// Missed reasons, as evindex reports them.
const (
	MissedNoProposal  = "no_proposal"
	MissedNotIncluded = "not_included"
)

// Missed is one reward an own identity of the node was eligible for and
// did not get, with why: the simulator's truth for missed rewards.
type Missed struct {
	Smesher       string // hex
	Layer         uint32
	Epoch         uint32
	Eligibilities uint32
	Reason        string
}

// Missed lists the current misses of the node's own identities in layers
// from..to (inclusive), ordered by smesher and layer. A revert changes
// which published proposals were included, so it changes the list.
func (s *Sim) Missed(from, to uint32) []Missed {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Missed
	for i, id := range s.ids {
		if !id.own {
			continue
		}
		for n := from; n <= to && int(n) < len(s.layers); n++ {
			c := s.eligibilities(i, n)
			if c == 0 || s.included(i, n, s.layers[n].rev) && s.proposed(i, n) {
				continue
			}
			m := Missed{Smesher: s.smesherHex(i), Layer: n, Epoch: n / s.cfg.LayersPerEpoch, Eligibilities: c, Reason: MissedNotIncluded}
			if !s.proposed(i, n) {
				m.Reason = MissedNoProposal
			}
			out = append(out, m)
		}
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Smesher != out[b].Smesher {
			return out[a].Smesher < out[b].Smesher
		}
		return out[a].Layer < out[b].Layer
	})
	return out
}

// OwnSmeshers are the node's own identities (hex), s0 and s1: the ones its
// admin events are about.
func (s *Sim) OwnSmeshers() []string { return []string{s.smesherHex(0), s.smesherHex(1)} }

// AdminEvents returns copies of every admin event emitted so far, history
// included, in order. A subscriber sees at most the last EventReplay of
// those emitted before it connected.
func (s *Sim) AdminEvents() []*smv1.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*smv1.Event, len(s.events))
	for i, e := range s.events {
		out[i] = proto.Clone(e).(*smv1.Event)
	}
	return out
}

// Advance applies n new layers at once, notifying live streams of each.
func (s *Sim) Advance(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < n; i++ {
		s.applyLocked(uint32(len(s.layers)))
	}
}

// applyLocked builds layer n (the next one), emits its events and tells the
// live streams.
func (s *Sim) applyLocked(n uint32) {
	l := s.buildLayer(n, 0)
	s.layers = append(s.layers, l)
	evs := s.layerEvents(n)
	for i := 0; i < s.hostile.EventFlood; i++ {
		evs = append(evs, &smv1.Event{Timestamp: timestamppb.New(s.layerTime(n)), Help: fmt.Sprintf("flood %d/%d", n, i),
			Details: &smv1.Event_Beacon{Beacon: &smv1.EventBeacon{Epoch: n, Beacon: []byte{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)}}}})
	}
	s.events = append(s.events, evs...)
	s.publishLayerLocked(&s.layers[n])
	for _, e := range evs {
		s.publishLocked(notice{kind: kindEvent, event: e})
	}
}

func (s *Sim) publishLayerLocked(l *layer) {
	s.publishLocked(notice{kind: kindLayer, layer: l.number})
	for i := range l.rewards {
		s.publishLocked(notice{kind: kindReward, reward: l.rewards[i]})
	}
	s.publishLocked(notice{kind: kindStatus, status: s.nodeStatus(s.appliedLocked())})
}

// Revert replaces the last k applied layers with different content, as a
// tortoise revert does: hashes change, rewards appear, vanish or change.
// Spacemesh reverts at most Hdist (10) layers; a larger k is allowed to
// show what an indexer then misses.
func (s *Sim) Revert(k int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k > len(s.layers) {
		k = len(s.layers)
	}
	for n := len(s.layers) - k; n < len(s.layers); n++ {
		s.layers[n] = s.buildLayer(uint32(n), s.layers[n].rev+1)
	}
	for n := len(s.layers) - k; n < len(s.layers); n++ {
		s.publishLayerLocked(&s.layers[n])
	}
}

// BufferFull closes every live stream with Canceled "buffer is full", as
// the node does when a subscriber falls behind.
func (s *Sim) BufferFull() {
	s.failStreams(status.Error(codes.Canceled, "buffer is full"))
}

// SetUnavailable makes every call fail with Unavailable (and closes the
// live streams) until it is called with false.
func (s *Sim) SetUnavailable(down bool) {
	s.mu.Lock()
	s.unavailable = down
	s.downUntil = time.Time{}
	s.mu.Unlock()
	if down {
		s.failStreams(errUnavailable)
	}
}

// UnavailableFor makes every call fail with Unavailable for d of wall-clock
// time (for the demo; tests use SetUnavailable).
func (s *Sim) UnavailableFor(d time.Duration) {
	s.mu.Lock()
	s.downUntil = time.Now().Add(d)
	s.mu.Unlock()
	s.failStreams(errUnavailable)
}

var errUnavailable = status.Error(codes.Unavailable, "node is unavailable (simulated outage)")

func (s *Sim) down() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unavailable || time.Now().Before(s.downUntil)
}

func (s *Sim) unaryGate(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if s.down() {
		return nil, errUnavailable
	}
	return h(ctx, req)
}

func (s *Sim) streamGate(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if s.down() {
		return errUnavailable
	}
	return h(srv, ss)
}

// Streams counts the live streams, so tests can wait until a client has
// subscribed before injecting a fault.
func (s *Sim) Streams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}
