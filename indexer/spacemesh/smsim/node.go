package smsim

import (
	"context"
	"fmt"

	smv1 "github.com/spacemeshos/api/release/go/spacemesh/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/evindex/evindex/indexer/spacemesh/internal/bech32"
)

type nodeService struct {
	smv1.UnimplementedNodeServiceServer
	s *Sim
}

func (n *nodeService) Echo(_ context.Context, in *smv1.EchoRequest) (*smv1.EchoResponse, error) {
	if in.Msg == nil {
		return nil, status.Error(codes.InvalidArgument, "Must include `Msg`")
	}
	return &smv1.EchoResponse{Msg: &smv1.SimpleString{Value: in.Msg.Value}}, nil
}

func (n *nodeService) Version(context.Context, *emptypb.Empty) (*smv1.VersionResponse, error) {
	return &smv1.VersionResponse{VersionString: &smv1.SimpleString{Value: "v1.7.0-smsim"}}, nil
}

func (n *nodeService) Build(context.Context, *emptypb.Empty) (*smv1.BuildResponse, error) {
	return &smv1.BuildResponse{BuildString: &smv1.SimpleString{Value: "smsim"}}, nil
}

func (n *nodeService) Status(context.Context, *smv1.StatusRequest) (*smv1.StatusResponse, error) {
	n.s.mu.Lock()
	defer n.s.mu.Unlock()
	st := n.s.nodeStatus(n.s.appliedLocked())
	if v := n.s.hostile.VerifiedLayer; v != 0 {
		st.VerifiedLayer = &smv1.LayerNumber{Number: v}
		st.TopLayer = &smv1.LayerNumber{Number: v}
	}
	return &smv1.StatusResponse{Status: st}, nil
}

func (n *nodeService) NodeInfo(context.Context, *emptypb.Empty) (*smv1.NodeInfoResponse, error) {
	c := n.s.cfg
	return &smv1.NodeInfoResponse{
		Hrp:              c.HRP,
		FirstGenesis:     c.EffectiveGenesis,
		EffectiveGenesis: c.EffectiveGenesis,
		EpochSize:        c.LayersPerEpoch,
	}, nil
}

// StatusStream sends the node's status after every applied layer.
// go-spacemesh: live only, closed with Canceled when the buffer fills.
func (n *nodeService) StatusStream(_ *smv1.StatusStreamRequest, stream grpc.ServerStreamingServer[smv1.StatusStreamResponse]) error {
	sub := n.s.subscribe(kindStatus)
	defer n.s.unsubscribe(sub)
	return serve(stream.Context(), sub, func(m notice) error {
		return stream.Send(&smv1.StatusStreamResponse{Status: m.status})
	})
}

type meshService struct {
	smv1.UnimplementedMeshServiceServer
	s *Sim
}

func (m *meshService) GenesisTime(context.Context, *smv1.GenesisTimeRequest) (*smv1.GenesisTimeResponse, error) {
	return &smv1.GenesisTimeResponse{Unixtime: &smv1.SimpleInt{Value: uint64(m.s.genesis.Unix())}}, nil
}

func (m *meshService) CurrentLayer(context.Context, *smv1.CurrentLayerRequest) (*smv1.CurrentLayerResponse, error) {
	return &smv1.CurrentLayerResponse{Layernum: &smv1.LayerNumber{Number: m.s.AppliedLayer() + 1}}, nil
}

func (m *meshService) CurrentEpoch(context.Context, *smv1.CurrentEpochRequest) (*smv1.CurrentEpochResponse, error) {
	return &smv1.CurrentEpochResponse{Epochnum: &smv1.EpochNumber{Number: (m.s.AppliedLayer() + 1) / m.s.cfg.LayersPerEpoch}}, nil
}

func (m *meshService) GenesisID(context.Context, *smv1.GenesisIDRequest) (*smv1.GenesisIDResponse, error) {
	return &smv1.GenesisIDResponse{GenesisId: m.s.genesisID[:]}, nil
}

func (m *meshService) EpochNumLayers(context.Context, *smv1.EpochNumLayersRequest) (*smv1.EpochNumLayersResponse, error) {
	return &smv1.EpochNumLayersResponse{Numlayers: &smv1.LayerNumber{Number: m.s.cfg.LayersPerEpoch}}, nil
}

// LayerDuration reports whole seconds, as go-spacemesh does.
func (m *meshService) LayerDuration(context.Context, *smv1.LayerDurationRequest) (*smv1.LayerDurationResponse, error) {
	return &smv1.LayerDurationResponse{Duration: &smv1.SimpleInt{Value: uint64(m.s.layerDuration.Seconds())}}, nil
}

// LayersQuery returns the layers of [start, end] that are applied; layers
// that passed the tortoise are CONFIRMED.
func (m *meshService) LayersQuery(_ context.Context, in *smv1.LayersQueryRequest) (*smv1.LayersQueryResponse, error) {
	var start, end uint32
	if in.StartLayer != nil {
		start = in.StartLayer.Number
	}
	if in.EndLayer != nil {
		end = in.EndLayer.Number
	}
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	applied := m.s.appliedLocked()
	if end > applied+1 {
		return nil, status.Errorf(codes.Internal, "error retrieving layer data")
	}
	out := &smv1.LayersQueryResponse{}
	for n := start; n <= end && n <= applied; n++ {
		out.Layer = append(out.Layer, m.s.v1Layer(&m.s.layers[n], smv1.Layer_LAYER_STATUS_CONFIRMED))
	}
	return out, nil
}

// LayerStream sends every applied (or re-applied) layer, live only.
func (m *meshService) LayerStream(_ *smv1.LayerStreamRequest, stream grpc.ServerStreamingServer[smv1.LayerStreamResponse]) error {
	sub := m.s.subscribe(kindLayer)
	defer m.s.unsubscribe(sub)
	return serve(stream.Context(), sub, func(n notice) error {
		m.s.mu.Lock()
		l := m.s.v1Layer(&m.s.layers[n.layer], smv1.Layer_LAYER_STATUS_APPLIED)
		m.s.mu.Unlock()
		return stream.Send(&smv1.LayerStreamResponse{Layer: l})
	})
}

func (s *Sim) v1Layer(l *layer, st smv1.Layer_LayerStatus) *smv1.Layer {
	var smesher *smv1.SmesherId
	if len(l.rewards) > 0 {
		smesher = &smv1.SmesherId{Id: clone(l.rewards[0].smesher[:])}
	}
	return &smv1.Layer{
		Number:        &smv1.LayerNumber{Number: l.number},
		Status:        st,
		Hash:          clone(l.hash[:]),
		Blocks:        []*smv1.Block{{Id: clone(l.block[:]), SmesherId: smesher}},
		RootStateHash: clone(l.state[:]),
	}
}

// parseAddress checks an address as go-spacemesh does: bech32, the
// network's HRP, 24 bytes with 4 reserved zero bytes.
func (s *Sim) parseAddress(a string) (string, error) {
	hrp, data, err := bech32.Decode(a)
	if err != nil {
		return "", fmt.Errorf("error decoding bech32: %w", err)
	}
	if len(data) != 24 {
		return "", fmt.Errorf("expected 24 bytes, got %d: wrong address length", len(data))
	}
	if hrp != s.cfg.HRP {
		return "", fmt.Errorf("wrong network id: expected `%s`, got `%s`: unsupported network", s.cfg.HRP, hrp)
	}
	for _, b := range data[:4] {
		if b != 0 {
			return "", fmt.Errorf("expected first 4 bytes to be 0: missing reserved space")
		}
	}
	return bech32.Encode(hrp, data)
}
