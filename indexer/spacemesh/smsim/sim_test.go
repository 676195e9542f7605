package smsim

import (
	"context"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	smv1 "github.com/spacemeshos/api/release/go/spacemesh/v1"
	smv2 "github.com/spacemeshos/api/release/go/spacemesh/v2alpha1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func startSim(t *testing.T, cfg Config) (*Sim, *grpc.ClientConn, *grpc.ClientConn) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := Start(ctx, "127.0.0.1:0", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	dial := func(addr string) *grpc.ClientConn {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return s, dial(s.PublicAddr()), dial(s.PrivateAddr())
}

func testConfig() Config {
	return Config{Seed: 7, Layers: 60, LayersPerEpoch: 10, HRP: "sm"}
}

func TestDeterministic(t *testing.T) {
	a, _, _ := startSim(t, testConfig())
	b, _, _ := startSim(t, testConfig())
	if a.Coinbases()[0] != b.Coinbases()[0] {
		t.Fatal("coinbases differ for the same seed")
	}
	for _, cb := range a.Coinbases() {
		if ta, tb := a.CoinbaseTotals(cb), b.CoinbaseTotals(cb); ta != tb || ta.Count == 0 {
			t.Fatalf("totals of %s: %+v vs %+v", cb, ta, tb)
		}
	}
	if len(a.AdminEvents()) == 0 || len(a.AdminEvents()) != len(b.AdminEvents()) {
		t.Fatalf("events: %d vs %d", len(a.AdminEvents()), len(b.AdminEvents()))
	}
}

func TestSharedCoinbaseAndSeveralRewardsPerLayer(t *testing.T) {
	s, _, _ := startSim(t, testConfig())
	shared := s.Coinbases()[0]
	perLayer := map[uint32]int{}
	for _, r := range s.Rewards(0, s.AppliedLayer()) {
		if r.Coinbase == shared {
			perLayer[r.Layer]++
		}
	}
	several := 0
	for _, n := range perLayer {
		if n > 1 {
			several++
		}
	}
	if several == 0 {
		t.Fatal("no layer pays the shared coinbase twice")
	}
	s0, s1 := s.AllSmeshers()[0], s.AllSmeshers()[1]
	if s.CoinbaseOf(s0) != shared || s.CoinbaseOf(s1) != shared {
		t.Fatal("s0 and s1 do not share coinbase A")
	}
}

func TestRewardListPaging(t *testing.T) {
	s, pub, _ := startSim(t, testConfig())
	c := smv2.NewRewardServiceClient(pub)
	ctx := context.Background()
	cb := s.Coinbases()[0]
	var got Totals
	for off := uint64(0); ; off += 7 {
		res, err := c.List(ctx, &smv2.RewardRequest{
			FilterBy: &smv2.RewardRequest_Coinbase{Coinbase: cb}, Offset: off, Limit: 7, EndLayer: s.AppliedLayer(),
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Rewards {
			got.Count++
			got.Sum += r.Total
		}
		if len(res.Rewards) < 7 {
			break
		}
	}
	if want := s.CoinbaseTotals(cb); got != want {
		t.Fatalf("paged totals %+v, want %+v", got, want)
	}

	for _, tc := range []struct {
		name string
		req  *smv2.RewardRequest
		code codes.Code
	}{
		{"LimitZero", &smv2.RewardRequest{}, codes.InvalidArgument},
		{"LimitTooLarge", &smv2.RewardRequest{Limit: 101}, codes.InvalidArgument},
		{"WrongHRP", &smv2.RewardRequest{Limit: 1, FilterBy: &smv2.RewardRequest_Coinbase{Coinbase: "stest1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqsllkck"}}, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.List(ctx, tc.req)
			if status.Code(err) != tc.code {
				t.Fatalf("List = %v, want %v", err, tc.code)
			}
		})
	}
}

func TestAccountDataQuery(t *testing.T) {
	s, pub, _ := startSim(t, testConfig())
	c := smv1.NewGlobalStateServiceClient(pub)
	cb := s.Coinbases()[1]
	var got Totals
	for off := uint32(0); ; off += 5 {
		res, err := c.AccountDataQuery(context.Background(), &smv1.AccountDataQueryRequest{
			Filter: &smv1.AccountDataFilter{
				AccountId:        &smv1.AccountId{Address: cb},
				AccountDataFlags: uint32(smv1.AccountDataFlag_ACCOUNT_DATA_FLAG_REWARD),
			},
			MaxResults: 5, Offset: off,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range res.AccountItem {
			got.Count++
			got.Sum += it.GetReward().GetTotal().GetValue()
		}
		if off+5 >= res.TotalResults {
			break
		}
	}
	if want := s.CoinbaseTotals(cb); got != want {
		t.Fatalf("paged totals %+v, want %+v", got, want)
	}
}

func TestRevertChangesRewards(t *testing.T) {
	s, _, _ := startSim(t, testConfig())
	top := s.AppliedLayer()
	before := s.Rewards(top-4, top)
	old := s.Rewards(0, top-5)
	s.Revert(5)
	after := s.Rewards(top-4, top)
	if len(before) == len(after) && equalRewards(before, after) {
		t.Fatal("revert left the last layers unchanged")
	}
	if !equalRewards(old, s.Rewards(0, top-5)) {
		t.Fatal("revert changed older layers")
	}
}

func equalRewards(a, b []Reward) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestV1Only(t *testing.T) {
	cfg := testConfig()
	cfg.V1Only = true
	_, pub, _ := startSim(t, cfg)
	_, err := smv2.NewNetworkServiceClient(pub).Info(context.Background(), &smv2.NetworkInfoRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("Info = %v, want Unimplemented", err)
	}
	info, err := smv1.NewNodeServiceClient(pub).NodeInfo(context.Background(), nil)
	if err != nil || info.Hrp != "sm" || info.EpochSize != 10 {
		t.Fatalf("NodeInfo = %v, %v", info, err)
	}
}

func TestLayerStreamBufferFullAndUnavailable(t *testing.T) {
	s, pub, _ := startSim(t, testConfig())
	c := smv1.NewMeshServiceClient(pub)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	open := func() grpc.ServerStreamingClient[smv1.LayerStreamResponse] {
		st, err := c.LayerStream(ctx, &smv1.LayerStreamRequest{})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { return s.Streams() > 0 })
		return st
	}

	st := open()
	s.Advance(1)
	m, err := st.Recv()
	if err != nil || m.Layer.Number.Number != s.AppliedLayer() {
		t.Fatalf("Recv = %v, %v", m, err)
	}
	s.BufferFull()
	if _, err := recvUntilErr(st); status.Code(err) != codes.Canceled {
		t.Fatalf("after BufferFull: %v, want Canceled", err)
	}

	st = open()
	s.SetUnavailable(true)
	if _, err := recvUntilErr(st); status.Code(err) != codes.Unavailable {
		t.Fatalf("stream during outage: %v, want Unavailable", err)
	}
	if _, err := smv1.NewNodeServiceClient(pub).Status(ctx, &smv1.StatusRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("Status while down = %v", err)
	}
	s.SetUnavailable(false)
	if _, err := smv1.NewNodeServiceClient(pub).Status(ctx, &smv1.StatusRequest{}); err != nil {
		t.Fatalf("Status after outage = %v", err)
	}
}

func recvUntilErr[T any](st grpc.ServerStreamingClient[T]) (int, error) {
	for n := 0; n < 10000; n++ {
		if _, err := st.Recv(); err != nil {
			return n, err
		}
	}
	return 0, errors.New("stream did not end")
}

func TestEventsReplay(t *testing.T) {
	cfg := testConfig()
	cfg.EventReplay = 10
	s, _, priv := startSim(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := smv1.NewAdminServiceClient(priv).EventsStream(ctx, &smv1.EventStreamRequest{})
	if err != nil {
		t.Fatal(err)
	}
	all := s.AdminEvents()
	for i := len(all) - 10; i < len(all); i++ {
		e, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if !e.Timestamp.AsTime().Equal(all[i].Timestamp.AsTime()) {
			t.Fatalf("replayed event %d at %v, want %v", i, e.Timestamp.AsTime(), all[i].Timestamp.AsTime())
		}
	}
	s.Advance(10) // an epoch start: several new events
	e, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if e.Timestamp.AsTime().Before(all[len(all)-1].Timestamp.AsTime()) {
		t.Fatal("live event older than the replay")
	}
}

func TestAddresses(t *testing.T) {
	s, _, _ := startSim(t, testConfig())
	for _, cb := range append(s.Coinbases(), s.CoinbaseOf(s.AllSmeshers()[5])) {
		if _, err := s.parseAddress(cb); err != nil || len(cb) != 48 {
			t.Fatalf("coinbase %q: %v", cb, err)
		}
	}
	for _, sm := range s.Smeshers() {
		if b, err := hex.DecodeString(sm); err != nil || len(b) != 32 {
			t.Fatalf("smesher %q", sm)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in time")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAlignClock: a node on the network's clock applies each layer once its
// end has passed, never before, as a synced node does. Without any
// LayerInterval its layers advance (catching up at once with a layer that
// ended before the start), and every verified layer it reports ended by
// then, counted from the genesis and layer duration it reports.
func TestAlignClock(t *testing.T) {
	genesis := time.Now().Truncate(time.Second).Add(-4 * time.Second)
	_, pub, _ := startSim(t, Config{Seed: 7, Layers: 3, LayerDuration: time.Second, AlignClock: true,
		Genesis: genesis, LayersPerEpoch: 10, HRP: "sm"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node, mesh := smv1.NewNodeServiceClient(pub), smv1.NewMeshServiceClient(pub)
	gt, err := mesh.GenesisTime(ctx, &smv1.GenesisTimeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ld, err := mesh.LayerDuration(ctx, &smv1.LayerDurationRequest{})
	if err != nil {
		t.Fatal(err)
	}
	reported := time.Unix(int64(gt.GetUnixtime().GetValue()), 0)
	dur := time.Duration(ld.GetDuration().GetValue()) * time.Second
	if !reported.Equal(genesis) || dur != time.Second {
		t.Fatalf("the node reports genesis %v and layers of %v, want %v and 1s", reported, dur, genesis)
	}
	for n := uint32(0); n < 6; {
		st, err := node.Status(ctx, &smv1.StatusRequest{})
		if err != nil {
			t.Fatalf("status: %v (verified layer %d so far)", err, n)
		}
		answered := time.Now()
		n = st.GetStatus().GetVerifiedLayer().GetNumber()
		if end := reported.Add(time.Duration(n+1) * dur); answered.Before(end) {
			t.Fatalf("layer %d verified at %v, before its end %v", n, answered, end)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
