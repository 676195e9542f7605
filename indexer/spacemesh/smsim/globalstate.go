package smsim

import (
	"context"

	smv1 "github.com/spacemeshos/api/release/go/spacemesh/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type globalStateService struct {
	smv1.UnimplementedGlobalStateServiceServer
	s *Sim
}

func v1Reward(r *reward) *smv1.Reward {
	return &smv1.Reward{
		Layer:       &smv1.LayerNumber{Number: r.Layer},
		Total:       &smv1.Amount{Value: r.Total},
		LayerReward: &smv1.Amount{Value: r.LayerReward},
		Coinbase:    &smv1.AccountId{Address: r.Coinbase},
		Smesher:     &smv1.SmesherId{Id: clone(r.smesher[:])},
	}
}

func (g *globalStateService) account(addr string) *smv1.Account {
	t := g.s.CoinbaseTotals(addr)
	st := &smv1.AccountState{Balance: &smv1.Amount{Value: t.Sum}}
	return &smv1.Account{AccountId: &smv1.AccountId{Address: addr}, StateCurrent: st, StateProjected: st}
}

func (g *globalStateService) GlobalStateHash(context.Context, *smv1.GlobalStateHashRequest) (*smv1.GlobalStateHashResponse, error) {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	l := &g.s.layers[g.s.appliedLocked()]
	return &smv1.GlobalStateHashResponse{Response: &smv1.GlobalStateHash{
		RootHash: clone(l.state[:]), Layer: &smv1.LayerNumber{Number: l.number},
	}}, nil
}

func (g *globalStateService) Account(_ context.Context, in *smv1.AccountRequest) (*smv1.AccountResponse, error) {
	if in.AccountId == nil {
		return nil, status.Error(codes.InvalidArgument, "`AccountId` must be provided")
	}
	addr, err := g.s.parseAddress(in.AccountId.Address)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &smv1.AccountResponse{AccountWrapper: g.account(addr)}, nil
}

// AccountDataQuery returns an account's rewards (ordered by layer) and
// state, always from genesis, paged by offset and max_results (0 means all),
// as go-spacemesh does.
func (g *globalStateService) AccountDataQuery(_ context.Context, in *smv1.AccountDataQueryRequest) (*smv1.AccountDataQueryResponse, error) {
	if in.Filter == nil {
		return nil, status.Error(codes.InvalidArgument, "`Filter` must be provided")
	}
	if in.Filter.AccountId == nil {
		return nil, status.Error(codes.InvalidArgument, "`Filter.AccountId` must be provided")
	}
	flags := in.Filter.AccountDataFlags
	if flags == 0 {
		return nil, status.Error(codes.InvalidArgument, "`Filter.AccountMeshDataFlags` must set at least one bitfield")
	}
	addr, err := g.s.parseAddress(in.Filter.AccountId.Address)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	var items []*smv1.AccountData
	if flags&uint32(smv1.AccountDataFlag_ACCOUNT_DATA_FLAG_REWARD) != 0 {
		g.s.mu.Lock()
		for i := range g.s.layers {
			for j := range g.s.layers[i].rewards {
				if r := &g.s.layers[i].rewards[j]; r.Coinbase == addr {
					items = append(items, &smv1.AccountData{Datum: &smv1.AccountData_Reward{Reward: v1Reward(r)}})
				}
			}
		}
		g.s.mu.Unlock()
	}
	if flags&uint32(smv1.AccountDataFlag_ACCOUNT_DATA_FLAG_ACCOUNT) != 0 {
		items = append(items, &smv1.AccountData{Datum: &smv1.AccountData_AccountWrapper{AccountWrapper: g.account(addr)}})
	}
	total := uint32(len(items))
	if in.Offset > total {
		return &smv1.AccountDataQueryResponse{}, nil
	}
	n := in.MaxResults
	if n == 0 || in.Offset+n > total {
		n = total - in.Offset
	}
	return &smv1.AccountDataQueryResponse{TotalResults: total, AccountItem: items[in.Offset : in.Offset+n]}, nil
}

// AccountDataStream sends the account's new rewards, live only.
func (g *globalStateService) AccountDataStream(in *smv1.AccountDataStreamRequest, stream grpc.ServerStreamingServer[smv1.AccountDataStreamResponse]) error {
	if in.Filter == nil || in.Filter.AccountId == nil {
		return status.Error(codes.InvalidArgument, "`Filter.AccountId` must be provided")
	}
	if in.Filter.AccountDataFlags == 0 {
		return status.Error(codes.InvalidArgument, "`Filter.AccountDataFlags` must set at least one bitfield")
	}
	addr, err := g.s.parseAddress(in.Filter.AccountId.Address)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if in.Filter.AccountDataFlags&uint32(smv1.AccountDataFlag_ACCOUNT_DATA_FLAG_REWARD) == 0 {
		<-stream.Context().Done()
		return nil
	}
	sub := g.s.subscribe(kindReward)
	defer g.s.unsubscribe(sub)
	return serve(stream.Context(), sub, func(n notice) error {
		if n.reward.Coinbase != addr {
			return nil
		}
		return stream.Send(&smv1.AccountDataStreamResponse{Datum: &smv1.AccountData{
			Datum: &smv1.AccountData_Reward{Reward: v1Reward(&n.reward)},
		}})
	})
}
