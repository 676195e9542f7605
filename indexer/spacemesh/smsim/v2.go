package smsim

import (
	"bytes"
	"context"
	"encoding/hex"

	smv2 "github.com/spacemeshos/api/release/go/spacemesh/v2alpha1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type networkService struct {
	smv2.UnimplementedNetworkServiceServer
	s *Sim
}

func (n *networkService) Info(context.Context, *smv2.NetworkInfoRequest) (*smv2.NetworkInfoResponse, error) {
	return &smv2.NetworkInfoResponse{
		GenesisTime:           timestamppb.New(n.s.genesis),
		LayerDuration:         durationpb.New(n.s.layerDuration),
		GenesisId:             n.s.genesisID[:],
		Hrp:                   n.s.cfg.HRP,
		EffectiveGenesisLayer: n.s.cfg.EffectiveGenesis,
		LayersPerEpoch:        n.s.cfg.LayersPerEpoch,
		LabelsPerUnit:         1024,
	}, nil
}

// rewardFilter selects rewards as go-spacemesh's v2alpha1 queries do: a
// zero start or end layer means unbounded.
type rewardFilter struct {
	start, end uint32
	coinbase   string
	smesher    []byte
}

func (f *rewardFilter) match(r *reward) bool {
	switch {
	case f.start != 0 && r.Layer < f.start:
		return false
	case f.end != 0 && r.Layer > f.end:
		return false
	case f.coinbase != "" && r.Coinbase != f.coinbase:
		return false
	case len(f.smesher) > 0 && !bytes.Equal(f.smesher, r.smesher[:]):
		return false
	}
	return true
}

func (s *Sim) newRewardFilter(start, end uint32, coinbase string, smesher []byte) (*rewardFilter, error) {
	f := &rewardFilter{start: start, end: end, smesher: smesher}
	if coinbase != "" {
		addr, err := s.parseAddress(coinbase)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		f.coinbase = addr
	}
	return f, nil
}

// matchingLocked lists the matching rewards ordered by layer, then smesher.
func (s *Sim) matchingLocked(f *rewardFilter) []*reward {
	var out []*reward
	for i := range s.layers {
		for j := range s.layers[i].rewards {
			if r := &s.layers[i].rewards[j]; f.match(r) {
				out = append(out, r)
			}
		}
	}
	return out
}

func v2Reward(r *reward) *smv2.Reward {
	return &smv2.Reward{Layer: r.Layer, Total: r.Total, LayerReward: r.LayerReward, Coinbase: r.Coinbase, Smesher: clone(r.smesher[:])}
}

type rewardService struct {
	smv2.UnimplementedRewardServiceServer
	s *Sim
}

// List pages rewards by offset and limit (1..100, as go-spacemesh
// requires), sorted by layer.
func (rs *rewardService) List(_ context.Context, in *smv2.RewardRequest) (*smv2.RewardList, error) {
	f, err := rs.s.newRewardFilter(in.StartLayer, in.EndLayer, in.GetCoinbase(), in.GetSmesher())
	if err != nil {
		return nil, err
	}
	switch {
	case in.Limit > 100:
		return nil, status.Error(codes.InvalidArgument, "limit is capped at 100")
	case in.Limit == 0:
		return nil, status.Error(codes.InvalidArgument, "limit must be set to <= 100")
	}
	rs.s.mu.Lock()
	defer rs.s.mu.Unlock()
	all := rs.s.matchingLocked(f)
	if in.SortOrder == smv2.SortOrder_DESC {
		for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
			all[i], all[j] = all[j], all[i]
		}
	}
	out := &smv2.RewardList{}
	for i := in.Offset; i < uint64(len(all)) && i < in.Offset+in.Limit; i++ {
		r := v2Reward(all[i])
		r.Coinbase = rs.s.badCoinbaseLocked(all[i])
		out.Rewards = append(out.Rewards, r)
	}
	for i := 0; rs.s.hostile.EndlessPages && len(all) > 0 && uint64(len(out.Rewards)) < in.Limit; i++ {
		out.Rewards = append(out.Rewards, v2Reward(all[i%len(all)]))
	}
	return out, nil
}

type rewardStreamService struct {
	smv2.UnimplementedRewardStreamServiceServer
	s *Sim
}

// Stream sends the stored matching rewards and, with watch, new ones.
func (rs *rewardStreamService) Stream(in *smv2.RewardStreamRequest, stream grpc.ServerStreamingServer[smv2.Reward]) error {
	f, err := rs.s.newRewardFilter(in.StartLayer, in.EndLayer, in.GetCoinbase(), in.GetSmesher())
	if err != nil {
		return err
	}
	rs.s.mu.Lock()
	var sub *subscriber
	if in.Watch {
		sub = rs.s.subscribeLocked(kindReward)
		defer rs.s.unsubscribe(sub)
	}
	var stored []*smv2.Reward
	for _, r := range rs.s.matchingLocked(f) {
		stored = append(stored, v2Reward(r))
	}
	rs.s.mu.Unlock()
	for _, r := range stored {
		if err := stream.Send(r); err != nil {
			return err
		}
	}
	if sub == nil {
		return nil
	}
	return serve(stream.Context(), sub, func(n notice) error {
		if !f.match(&n.reward) {
			return nil
		}
		return stream.Send(v2Reward(&n.reward))
	})
}

func (s *Sim) v2Layer(l *layer) *smv2.Layer {
	st := smv2.Layer_LAYER_STATUS_VERIFIED
	if l.number == s.appliedLocked() {
		st = smv2.Layer_LAYER_STATUS_APPLIED
	}
	return &smv2.Layer{
		Number:              l.number,
		Status:              st,
		ConsensusHash:       hex.EncodeToString(l.hash[:3]),
		StateHash:           clone(l.state[:]),
		CumulativeStateHash: clone(l.hash[:]),
		Block:               &smv2.Block{Id: clone(l.block[:])},
	}
}

type layerService struct {
	smv2.UnimplementedLayerServiceServer
	s *Sim
}

// List pages layers by offset and limit (1..100).
func (ls *layerService) List(_ context.Context, in *smv2.LayerRequest) (*smv2.LayerList, error) {
	switch {
	case in.Limit > 100:
		return nil, status.Error(codes.InvalidArgument, "limit is capped at 100")
	case in.Limit == 0:
		return nil, status.Error(codes.InvalidArgument, "limit must be set to <= 100")
	}
	ls.s.mu.Lock()
	defer ls.s.mu.Unlock()
	applied := ls.s.appliedLocked()
	end := in.EndLayer
	if end == 0 || end > applied {
		end = applied
	}
	var sel []uint32
	for n := in.StartLayer; n <= end; n++ {
		sel = append(sel, n)
	}
	if in.SortOrder == smv2.SortOrder_DESC {
		for i, j := 0, len(sel)-1; i < j; i, j = i+1, j-1 {
			sel[i], sel[j] = sel[j], sel[i]
		}
	}
	out := &smv2.LayerList{}
	for i := in.Offset; i < uint64(len(sel)) && i < in.Offset+in.Limit; i++ {
		out.Layers = append(out.Layers, ls.s.v2Layer(&ls.s.layers[sel[i]]))
	}
	return out, nil
}

type layerStreamService struct {
	smv2.UnimplementedLayerStreamServiceServer
	s *Sim
}

// Stream sends the stored layers of the range and, with watch, new ones.
func (ls *layerStreamService) Stream(in *smv2.LayerStreamRequest, stream grpc.ServerStreamingServer[smv2.Layer]) error {
	ls.s.mu.Lock()
	var sub *subscriber
	if in.Watch {
		sub = ls.s.subscribeLocked(kindLayer)
		defer ls.s.unsubscribe(sub)
	}
	var stored []*smv2.Layer
	for n := in.StartLayer; int(n) < len(ls.s.layers) && (in.EndLayer == 0 || n <= in.EndLayer); n++ {
		stored = append(stored, ls.s.v2Layer(&ls.s.layers[n]))
	}
	ls.s.mu.Unlock()
	for _, l := range stored {
		if err := stream.Send(l); err != nil {
			return err
		}
	}
	if sub == nil {
		return nil
	}
	return serve(stream.Context(), sub, func(n notice) error {
		if in.EndLayer != 0 && n.layer > in.EndLayer {
			return nil
		}
		ls.s.mu.Lock()
		l := ls.s.v2Layer(&ls.s.layers[n.layer])
		ls.s.mu.Unlock()
		return stream.Send(l)
	})
}
