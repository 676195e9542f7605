package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/postgres"
	"github.com/evindex/evindex/store/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var ctx = context.Background()

// clock is the checkpoint clock both backends get, so their UpdatedAt
// agree.
func clock() time.Time { return time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC) }

// openPG opens a store on a fresh database of the shared test server.
func openPG(t *testing.T) (*postgres.Store, string) {
	t.Helper()
	return openPGWith(t, postgres.Options{})
}

// openPGWith is openPG with options (the checkpoint clock is clock).
func openPGWith(t *testing.T, opts postgres.Options) (*postgres.Store, string) {
	t.Helper()
	dsn := pgtest.DSN(t)
	opts.Now = clock
	s, err := postgres.Open(ctx, dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(ctx); err != nil {
			t.Errorf("postgres check: %v", err)
		}
		s.Close()
	})
	return s, dsn
}

func openBolt(t *testing.T) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(t.TempDir(), bolt.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Check(ctx); err != nil {
			t.Errorf("bolt check: %v", err)
		}
		s.Close()
	})
	return s
}

func u64(v uint64) *uint64 { return &v }
func flag(v bool) *bool    { return &v }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// flowHeight is what a Flow source writes for one height: a block, events
// of two types in two transactions with shared and own addresses, a
// staking reward now and then, checkpoint and coverage.
func flowHeight(h uint64) store.Batch {
	t := t0.Add(time.Duration(h)*time.Second + 777) // nanoseconds survive
	b := store.Batch{Source: "flow", Kind: "flow",
		Blocks:     []store.Block{{Height: h, BlockID: fmt.Sprintf("%064x", h), BlockTime: t, EventCount: 4}},
		Checkpoint: &store.Checkpoint{Height: h, BlockID: fmt.Sprintf("%064x", h), Time: t},
		Coverage:   &store.Range{From: h, To: h}}
	for i := 0; i < 4; i++ {
		typ := "A.1654653399040a61.FlowToken.TokensDeposited"
		if i%2 == 1 {
			typ = "A.1654653399040a61.FlowToken.TokensWithdrawn"
		}
		addrs := []string{fmt.Sprintf("%016x", h%5), "f919ee77447b7497"}
		if i == 3 {
			addrs = append(addrs, "", addrs[0]) // empty and repeated entries are kept as written
		}
		b.Events = append(b.Events, store.Event{Height: h, BlockID: fmt.Sprintf("%064x", h), BlockTime: t,
			TxID: fmt.Sprintf("%064x", h*10+uint64(i/2)), TxIndex: uint32(i / 2), EventIndex: uint32(i), Type: typ,
			Contract: "A.1654653399040a61.FlowToken", Addresses: addrs,
			Payload: json.RawMessage(fmt.Sprintf(`{"type":"Event","value":{"id":%q,"fields":[{"name":"amount","value":{"type":"UFix64","value":"%d.00000000"}}]}}`, typ, h))})
	}
	if h%3 == 0 {
		b.Events = append(b.Events, store.Event{Height: h, BlockID: fmt.Sprintf("%064x", h), BlockTime: t,
			TxID: fmt.Sprintf("%064x", h*10+9), TxIndex: 9, EventIndex: 0, Type: "A.8624b52f9ddcd04a.FlowIDTableStaking.RewardsPaid",
			Contract: "A.8624b52f9ddcd04a.FlowIDTableStaking", Addresses: nil, Payload: nil})
		b.Rewards = append(b.Rewards, store.Reward{Account: fmt.Sprintf("node%d", h%2), Kind: "flow_node_reward",
			ID: fmt.Sprintf("%d/9/0", h), Height: h, HasHeight: true, Time: t, RawAmount: fmt.Sprint(100000000 * h), Unit: "FLOW", Decimals: 8,
			Details: json.RawMessage(`{"node_id": "x"}`)})
	}
	return b
}

func smReward(layer uint64, smesher, coinbase string, amount string) store.Reward {
	return store.Reward{Account: coinbase, Kind: "smesher_reward", ID: fmt.Sprintf("%s/%d", smesher, layer),
		Height: layer, HasHeight: true, Time: t0.Add(time.Duration(layer) * 5 * time.Minute),
		RawAmount: amount, Unit: "SMH", Decimals: 9, Aliases: []string{smesher}}
}

// history is a mixed write history: ingestion, a replay, rewrites, a
// Spacemesh revert, big and non-canonical amounts, node snapshots arriving
// out of order, state set and deleted.
func history() [][]store.Batch {
	var steps [][]store.Batch
	var tx []store.Batch
	for h := uint64(1); h <= 40; h++ {
		tx = append(tx, flowHeight(h))
		if h%10 == 0 {
			steps = append(steps, tx)
			tx = nil
		}
	}
	// A replay of a range: nothing may change.
	var replay []store.Batch
	for h := uint64(11); h <= 20; h++ {
		replay = append(replay, flowHeight(h))
	}
	steps = append(steps, replay)
	// Rewrites: an event moves to other addresses and type; a block changes.
	re := flowHeight(12)
	re.Events[0].Addresses = []string{"00000000000000aa"}
	re.Events[1].Type = "A.1654653399040a61.FlowToken.Other"
	re.Blocks[0].Status = "sealed"
	re.Checkpoint = nil
	re.Coverage = &store.Range{From: 60, To: 70} // a second, separate range
	steps = append(steps, []store.Batch{re})

	ep := &store.Epochs{Genesis: t0, BlockDuration: 5 * time.Minute, BlocksPerEpoch: 12}
	var rs []store.Reward
	for l := uint64(1); l <= 30; l++ {
		rs = append(rs, smReward(l, "s1", "sm1a", fmt.Sprint(1000+l)), smReward(l, "s2", "sm1a", "7"), smReward(l, "s3", "sm1b", "18446744073709551616"))
	}
	rs = append(rs, smReward(31, "s1", "sm1a", "340282366920938463463374607431768211456")) // 2^128
	steps = append(steps, []store.Batch{{Source: "sm", Kind: "spacemesh", Rewards: rs, Epochs: ep,
		Meta: json.RawMessage(`{"hrp":"sm"}`), Checkpoint: &store.Checkpoint{Height: 31}, Coverage: &store.Range{From: 0, To: 31},
		State: map[string][]byte{"a": []byte("1"), "b": []byte("2"), "empty": {}}}})
	// What the node announced: eligibilities (one rewritten, one listing
	// no heights, one with an empty list), proposals, and a gap.
	elig := func(acct string, epoch uint64, hs ...uint64) store.Eligibility {
		e := store.Eligibility{Account: acct, Epoch: epoch, FinalAfter: 10, Time: t0.Add(time.Duration(epoch) * time.Hour)}
		for _, h := range hs {
			e.Heights = append(e.Heights, store.EligibleHeight{Height: h, Count: 1 + uint32(h%2)})
		}
		return e
	}
	steps = append(steps, []store.Batch{
		{Source: "sm", Eligibilities: []store.Eligibility{elig("s1", 0, 3, 5, 9), elig("s2", 0, 4, 11), elig("s1", 1), elig("s9", 2, 13, 14, 15)},
			Proposals:    []store.Proposal{{Account: "s1", Height: 3, ID: "aa", Time: t0}, {Account: "s1", Height: 9, ID: "bb"}, {Account: "s2", Height: 11, ID: "cc"}},
			ProposalGaps: []store.Range{{From: 20, To: 22}}},
		{Source: "sm", Eligibilities: []store.Eligibility{elig("s2", 0, 4, 6, 11), func() store.Eligibility { e := elig("s3", 1); e.Heights = []store.EligibleHeight{}; return e }()},
			Proposals:    []store.Proposal{{Account: "s1", Height: 9, ID: "bd"}, {Account: "s9", Height: 14}},
			ProposalGaps: []store.Range{{From: 23, To: 24}, {From: 2, To: 2}}},
	})
	// A revert of layers 25..30: s2 lost them, s1's changed; in the same
	// transaction a later batch writes layer 29 of s2 back.
	var again []store.Reward
	for l := uint64(25); l <= 30; l++ {
		again = append(again, smReward(l, "s1", "sm1a", "999"), smReward(l, "s3", "sm1b", "5"))
	}
	steps = append(steps, []store.Batch{
		{Source: "sm", Rewards: []store.Reward{smReward(26, "s9", "sm1c", "1")}}, // written, then reverted below
		{Source: "sm", Rewards: again, ReplaceRewards: &store.Range{From: 25, To: 30}, State: map[string][]byte{"a": nil, "b": []byte("3")}},
		{Source: "sm", Rewards: []store.Reward{smReward(29, "s2", "sm1a", "8")}, Checkpoint: &store.Checkpoint{Height: 33}, Coverage: &store.Range{From: 32, To: 33}},
	})
	// Presearch: period rewards without heights, huge amounts, nodes.
	var pre []store.Reward
	var nodes []store.NodeStatus
	for d := 0; d < 20; d++ {
		start := t0.Add(time.Duration(d) * 7 * time.Hour)
		pre = append(pre, store.Reward{Account: fmt.Sprintf("key%d", d%3), Kind: "presearch_period", ID: start.Format(time.RFC3339),
			Time: start.Add(time.Hour), PeriodStart: start, PeriodEnd: start.Add(time.Hour),
			RawAmount: fmt.Sprintf("1234567890123456789%02d", d), Unit: "PRE", Decimals: 18})
		nodes = append(nodes, store.NodeStatus{Node: fmt.Sprintf("key%d", d%3), Time: start, Connected: flag(d%2 == 0),
			Details: json.RawMessage(`{"meta": {"url": "<x>"}}`)})
	}
	// A late, older snapshot does not become the latest.
	nodes = append(nodes, store.NodeStatus{Node: "key0", Time: t0.Add(-time.Hour), Synced: flag(true)})
	steps = append(steps, []store.Batch{{Source: "presearch", Kind: "presearch", Rewards: pre, Nodes: nodes[:10]}})
	steps = append(steps, []store.Batch{{Source: "presearch", Nodes: nodes[10:]}})
	// Quarantined records, one rewritten in a later batch.
	rej := []store.Rejected{
		store.NewRejected(store.RecordEvent, 7, "tx 0 event 1", "type", "empty", nil),
		store.NewRejected(store.RecordReward, 3, "reward a b", "raw_amount", "not an integer", []byte("x\x00y")),
		store.NewRejected(store.RecordNode, 1767225600, "node k", "time", "implausible", []byte(`{"t":1}`)),
	}
	rej[1].Time = t0
	steps = append(steps, []store.Batch{{Source: "flow", Rejected: rej[:2]}, {Source: "presearch", Rejected: rej[2:]},
		{Source: "flow", Rejected: []store.Rejected{store.NewRejected(store.RecordEvent, 7, "tx 0 event 1", "type", "too long", []byte("t"))}}})
	steps = append(steps, []store.Batch{{Source: "empty"}})
	// Rewards that name their epoch, on a source whose epochs are named,
	// and the network's payouts per epoch (one rewritten).
	var named []store.Reward
	for i := uint64(0); i < 9; i++ {
		named = append(named, store.Reward{Account: fmt.Sprintf("n%d", i%2), Kind: "flow_node_reward", ID: fmt.Sprint(i),
			Height: 100 + i*7, HasHeight: true, Epoch: 40 + i/3, HasEpoch: true, Time: t0.Add(time.Duration(i)*97*time.Minute + time.Duration(i)),
			RawAmount: fmt.Sprint(5000000000 + i), Unit: "FLOW", Decimals: 8})
	}
	total := func(epoch uint64, amount string) store.EpochTotal {
		return store.EpochTotal{Epoch: epoch, Height: 100 + epoch, Time: t0.Add(time.Duration(epoch) * time.Hour),
			RawTotal: amount, RawFromFees: "12", RawMinted: "34028236692093846346337460743176821145", RawBurned: "0", Unit: "FLOW", Decimals: 8}
	}
	steps = append(steps, []store.Batch{
		{Source: "flowx", Kind: "flow", Rewards: named, Epochs: &store.Epochs{Named: true}, EpochTotals: []store.EpochTotal{total(40, "100"), total(41, "200")}},
		{Source: "flowx", EpochTotals: []store.EpochTotal{total(41, "201"), total(42, "300")}},
	})
	// Contracts that are not their type's prefix, or only its text's.
	odd := []store.Event{
		{Height: 50, TxIndex: 0, EventIndex: 0, Type: "flow.AccountCreated", Contract: "A.0000000000000001.Core"},
		{Height: 50, TxIndex: 0, EventIndex: 1, Type: "A.1654653399040a61.FlowToken", Contract: "A.1654653399040a61.FlowToken"},
		{Height: 51, TxIndex: 0, EventIndex: 0, Type: "A.1654653399040a61.FlowTokenX.E", Contract: "A.1654653399040a61.FlowTokenX"},
		{Height: 51, TxIndex: 1, EventIndex: 0, Type: "A.1654653399040a61.FlowToken.TokensDeposited", Contract: "A.0000000000000001.Core"},
	}
	steps = append(steps, []store.Batch{{Source: "flow", Events: odd}, {Source: "other", Events: []store.Event{odd[0], odd[1]}}})
	return steps
}

// walk reads every page of a list query, checking that a page never
// repeats a row of an earlier one, and returns the rows and the cursors.
func walk[T any](t *testing.T, name string, list func(cursor string) (store.Page[T], error)) ([]T, []string) {
	t.Helper()
	var items []T
	var cursors []string
	cursor := ""
	for i := 0; ; i++ {
		p, err := list(cursor)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		items = append(items, p.Items...)
		if p.Next == "" {
			return items, cursors
		}
		if i > 10000 {
			t.Fatalf("%s: pagination does not end", name)
		}
		cursors = append(cursors, p.Next)
		cursor = p.Next
	}
}

// listQueries are the list queries compared, each run with a small page
// size in both orders.
func eventQueries() map[string]store.EventQuery {
	dep := "A.1654653399040a61.FlowToken.TokensDeposited"
	return map[string]store.EventQuery{
		"all":                {},
		"source":             {Source: "flow"},
		"heights":            {Source: "flow", FromHeight: u64(5), ToHeight: u64(17)},
		"heightsNoSource":    {FromHeight: u64(30)},
		"type":               {Types: []string{dep}},
		"types":              {Types: []string{dep, "A.8624b52f9ddcd04a.FlowIDTableStaking.RewardsPaid", dep}},
		"typeHeights":        {Types: []string{dep}, FromHeight: u64(10), ToHeight: u64(12)},
		"contract":           {Contract: "A.1654653399040a61.FlowToken"},
		"contractOther":      {Contract: "A.8624b52f9ddcd04a.FlowIDTableStaking", Source: "flow"},
		"contractNotPrefix":  {Contract: "A.0000000000000001.Core"},
		"contractIsType":     {Contract: "A.1654653399040a61.FlowToken", FromHeight: u64(40)},
		"contractText":       {Contract: "A.1654653399040a61.Flow"},
		"contractOtherSrc":   {Contract: "A.1654653399040a61.FlowToken", Source: "other"},
		"address":            {Address: "f919ee77447b7497"},
		"addressMoved":       {Address: "00000000000000aa"},
		"addressHeights":     {Address: fmt.Sprintf("%016x", 2), FromHeight: u64(3), ToHeight: u64(30)},
		"addressAndType":     {Address: "f919ee77447b7497", Types: []string{dep}},
		"tx":                 {TxID: fmt.Sprintf("%064x", 121)},
		"txAndSource":        {TxID: fmt.Sprintf("%064x", 120), Source: "flow"},
		"unknownSource":      {Source: "nope"},
		"unknownType":        {Types: []string{"A.x.Y.Z"}},
		"heightsPastTheEnd":  {FromHeight: u64(1000)},
		"hugeHeights":        {FromHeight: u64(1 << 63), ToHeight: u64(^uint64(0))},
		"contractAndAddress": {Contract: "A.1654653399040a61.FlowToken", Address: "0000000000000001"},
		"notUTF8":            {Source: "fl\xffow"},
		"nulType":            {Types: []string{"A.x\x00"}},
	}
}

func rewardQueries() map[string]store.RewardQuery {
	return map[string]store.RewardQuery{
		"all":            {},
		"source":         {Source: "sm"},
		"account":        {Accounts: []string{"sm1a"}},
		"alias":          {Accounts: []string{"s2"}},
		"accountOrAlias": {Accounts: []string{"sm1b", "s1", "s3"}},
		"accountSource":  {Source: "sm", Accounts: []string{"sm1a"}},
		"times":          {FromTime: t0.Add(time.Hour), ToTime: t0.Add(2 * time.Hour)},
		"accountTimes":   {Accounts: []string{"sm1a"}, FromTime: t0.Add(50 * time.Minute), ToTime: t0.Add(100 * time.Minute)},
		"heights":        {FromHeight: u64(20), ToHeight: u64(28)},
		"presearch":      {Source: "presearch", Accounts: []string{"key1"}},
		"nobody":         {Accounts: []string{"nobody"}},
		"notUTF8":        {Accounts: []string{"sm1a", "\xff"}, Source: "\xfe"},
		"kind":           {Kinds: []string{"smesher_reward"}},
		"kinds":          {Kinds: []string{"presearch_period", "flow_node_reward"}},
		"kindAccount":    {Kinds: []string{"smesher_reward", "flow_delegator_reward"}, Accounts: []string{"sm1a", "s2"}},
	}
}

// compare runs every query on both stores and fails on any difference.
func compare(t *testing.T, bolt, pg store.Store) {
	t.Helper()
	for name, q := range eventQueries() {
		for _, desc := range []bool{false, true} {
			for _, limit := range []int{3, 1000} {
				q := q
				q.Desc, q.Limit = desc, limit
				label := fmt.Sprintf("events %s desc=%v limit=%d", name, desc, limit)
				want, wantCursors := walk(t, label, func(c string) (store.Page[store.Event], error) { q.Cursor = c; return bolt.Events(ctx, q) })
				got, gotCursors := walk(t, label, func(c string) (store.Page[store.Event], error) { q.Cursor = c; return pg.Events(ctx, q) })
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: postgres returned %d events, bbolt %d; first difference: %s", label, len(got), len(want), firstDiff(got, want))
				}
				sameCursors(t, label, gotCursors, wantCursors)
			}
		}
	}
	for name, q := range rewardQueries() {
		for _, desc := range []bool{false, true} {
			q := q
			q.Desc, q.Limit = desc, 4
			label := fmt.Sprintf("rewards %s desc=%v", name, desc)
			want, wantCursors := walk(t, label, func(c string) (store.Page[store.Reward], error) { q.Cursor = c; return bolt.Rewards(ctx, q) })
			got, gotCursors := walk(t, label, func(c string) (store.Page[store.Reward], error) { q.Cursor = c; return pg.Rewards(ctx, q) })
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: postgres returned %d rewards, bbolt %d; first difference: %s", label, len(got), len(want), firstDiff(got, want))
			}
			sameCursors(t, label, gotCursors, wantCursors)
		}
	}
	for name, q := range map[string]store.BlockQuery{"all": {}, "source": {Source: "flow"}, "heights": {Source: "flow", FromHeight: u64(7), ToHeight: u64(9)},
		"heightsNoSource": {FromHeight: u64(38)}} {
		for _, desc := range []bool{false, true} {
			q := q
			q.Desc, q.Limit = desc, 5
			label := fmt.Sprintf("blocks %s desc=%v", name, desc)
			want, wc := walk(t, label, func(c string) (store.Page[store.Block], error) { q.Cursor = c; return bolt.Blocks(ctx, q) })
			got, gc := walk(t, label, func(c string) (store.Page[store.Block], error) { q.Cursor = c; return pg.Blocks(ctx, q) })
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: first difference: %s", label, firstDiff(got, want))
			}
			sameCursors(t, label, gc, wc)
		}
	}
	for _, q := range []store.NodeHistoryQuery{{Source: "presearch", Node: "key0"}, {Source: "presearch", Node: "key1", Desc: true},
		{Source: "presearch", Node: "key0", FromTime: t0, ToTime: t0.Add(50 * time.Hour)}} {
		q.Limit = 2
		label := fmt.Sprintf("node history %+v", q)
		want, wc := walk(t, label, func(c string) (store.Page[store.NodeStatus], error) { q.Cursor = c; return bolt.NodeHistory(ctx, q) })
		got, gc := walk(t, label, func(c string) (store.Page[store.NodeStatus], error) { q.Cursor = c; return pg.NodeHistory(ctx, q) })
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: first difference: %s", label, firstDiff(got, want))
		}
		sameCursors(t, label, gc, wc)
	}
	for _, q := range []store.RejectedQuery{{}, {Source: "flow"}, {Desc: true}, {FromHeight: u64(5), ToHeight: u64(1 << 40)}} {
		q.Limit = 1
		label := fmt.Sprintf("rejected %+v", q)
		want, wc := walk(t, label, func(c string) (store.Page[store.Rejected], error) { q.Cursor = c; return bolt.Rejected(ctx, q) })
		got, gc := walk(t, label, func(c string) (store.Page[store.Rejected], error) { q.Cursor = c; return pg.Rejected(ctx, q) })
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: first difference: %s", label, firstDiff(got, want))
		}
		sameCursors(t, label, gc, wc)
	}
	ny, _ := time.LoadLocation("America/New_York")
	ktm, _ := time.LoadLocation("Asia/Kathmandu")
	for _, q := range []store.SummaryQuery{
		{GroupBy: store.GroupDay}, {GroupBy: store.GroupWeek, Location: ny}, {GroupBy: store.GroupMonth, Location: ktm},
		{GroupBy: store.GroupDay, Location: ktm, RewardQuery: store.RewardQuery{Accounts: []string{"s1", "key2"}}},
		{GroupBy: store.GroupEpoch, RewardQuery: store.RewardQuery{Source: "sm"}},
		{GroupBy: store.GroupEpoch, RewardQuery: store.RewardQuery{Source: "flowx"}},
		{GroupBy: store.GroupWeek, RewardQuery: store.RewardQuery{Source: "flowx", Accounts: []string{"n1"}}},
		{GroupBy: store.GroupMonth, RewardQuery: store.RewardQuery{Kinds: []string{"presearch_period", "smesher_reward"}}},
		{GroupBy: store.GroupEpoch}, // presearch has no epochs: an error on both
		{GroupBy: "year"},
	} {
		want, werr := bolt.RewardSummary(ctx, q)
		got, gerr := pg.RewardSummary(ctx, q)
		if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("summary %s %v: postgres %v (%v), bbolt %v (%v)", q.GroupBy, q.Location, got, gerr, want, werr)
		}
	}
	for _, src := range []string{"sm", "flow", "nope"} {
		same(t, "eligibilities "+src, func(b store.Store) (any, error) { return b.(store.Announcements).Eligibilities(ctx, src) }, bolt, pg)
		same(t, "proposal gaps "+src, func(b store.Store) (any, error) { return b.(store.Announcements).ProposalGaps(ctx, src) }, bolt, pg)
		same(t, "missed coverage "+src, func(b store.Store) (any, error) {
			return store.MissedCoverage(ctx, b.(store.MissedReader), src, nil)
		}, bolt, pg)
	}
	for _, r := range [][2]uint64{{0, 100}, {4, 9}, {10, 2}, {0, ^uint64(0)}} {
		same(t, fmt.Sprint("proposals ", r), func(b store.Store) (any, error) {
			return b.(store.Announcements).Proposals(ctx, "sm", "s1", r[0], r[1])
		}, bolt, pg)
	}
	for _, q := range []store.MissedQuery{{}, {Source: "sm", Limit: 2}, {Accounts: []string{"s2"}, Desc: true}} {
		label := fmt.Sprintf("missed rewards %+v", q)
		want, wc := walk(t, label, func(c string) (store.Page[store.MissedReward], error) {
			q.Cursor = c
			return store.MissedRewards(ctx, bolt.(store.MissedReader), q)
		})
		got, gc := walk(t, label, func(c string) (store.Page[store.MissedReward], error) {
			q.Cursor = c
			return store.MissedRewards(ctx, pg.(store.MissedReader), q)
		})
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: first difference: %s", label, firstDiff(got, want))
		}
		sameCursors(t, label, gc, wc)
	}
	for _, q := range []store.EpochTotalQuery{{}, {Source: "flowx", FromEpoch: 41}, {ToEpoch: 41}, {Source: "sm"}} {
		same(t, fmt.Sprintf("epoch totals %+v", q), func(b store.Store) (any, error) { return b.(store.EpochTotalReader).EpochTotals(ctx, q) }, bolt, pg)
	}
	same(t, "nodes", func(b store.Store) (any, error) { return b.Nodes(ctx, "") }, bolt, pg)
	same(t, "nodes of presearch", func(b store.Store) (any, error) { return b.Nodes(ctx, "presearch") }, bolt, pg)
	same(t, "nodes of nobody", func(b store.Store) (any, error) { return b.Nodes(ctx, "nobody") }, bolt, pg)
	same(t, "sources", func(b store.Store) (any, error) { return b.Sources(ctx) }, bolt, pg)
	same(t, "nodes of a name that is not UTF-8", func(b store.Store) (any, error) { return b.Nodes(ctx, "\xff") }, bolt, pg)
	for _, src := range []string{"flow", "sm", "presearch", "empty", "nope", "\xff\x00"} {
		same(t, "source "+src, func(b store.Store) (any, error) { return b.Source(ctx, src) }, bolt, pg)
		same(t, "coverage "+src, func(b store.Store) (any, error) { return b.Coverage(ctx, src) }, bolt, pg)
		same(t, "checkpoint "+src, func(b store.Store) (any, error) {
			cp, ok, err := b.Checkpoint(ctx, src)
			return []any{cp, ok}, err
		}, bolt, pg)
	}
	if ps, ok := pg.(interface {
		States(context.Context, string) (map[string][]byte, error)
	}); ok {
		states, err := ps.States(ctx, "sm")
		want := map[string][]byte{}
		for _, k := range []string{"a", "b", "empty"} {
			if v, _ := bolt.State(ctx, "sm", k); v != nil {
				want[k] = v
			}
		}
		if err != nil || !reflect.DeepEqual(states, want) {
			t.Errorf("states: postgres %q (%v), bbolt %q", states, err, want)
		}
	}
	for _, k := range []string{"a", "b", "empty", "none"} {
		same(t, "state "+k, func(b store.Store) (any, error) { return b.State(ctx, "sm", k) }, bolt, pg)
	}
	for _, h := range []uint64{1, 12, 40, 41} {
		same(t, fmt.Sprint("block ", h), func(b store.Store) (any, error) { return b.Block(ctx, "flow", h) }, bolt, pg)
	}
}

func same(t *testing.T, label string, read func(store.Store) (any, error), bolt, pg store.Store) {
	t.Helper()
	want, werr := read(bolt)
	got, gerr := read(pg)
	if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(got, want) {
		t.Errorf("%s: postgres %+v (%v), bbolt %+v (%v)", label, got, gerr, want, werr)
	}
}

// sameCursors: where both backends end a page at the same row, their
// cursors are the same bytes. (bbolt may also end a page early, when its
// scan budget runs out or rows remain that its filters then reject; those
// extra cursors are not compared.)
func sameCursors(t *testing.T, label string, got, want []string) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("%s: cursor %d differs: postgres %q, bbolt %q", label, i, got[i], want[i])
			return
		}
	}
}

func firstDiff[T any](got, want []T) string {
	for i := range min(len(got), len(want)) {
		if !reflect.DeepEqual(got[i], want[i]) {
			return fmt.Sprintf("row %d: postgres %+v, bbolt %+v", i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("lengths %d and %d", len(got), len(want))
	}
	return "none"
}

// TestSameAsBolt applies one mixed history to a bbolt file and a
// PostgreSQL database, step by step, and compares every query's every
// page, cursor, count and summary after each step.
func TestSameAsBolt(t *testing.T) {
	bolt := openBolt(t)
	pg, _ := openPG(t)
	for i, step := range history() {
		if err := bolt.Apply(ctx, step...); err != nil {
			t.Fatalf("step %d: bbolt: %v", i, err)
		}
		if err := pg.Apply(ctx, step...); err != nil {
			t.Fatalf("step %d: postgres: %v", i, err)
		}
		// Under -short only the final state is compared (it holds every
		// step's effect); otherwise the state after each step.
		if testing.Short() && i < len(history())-1 {
			continue
		}
		compare(t, bolt, pg)
		if t.Failed() {
			t.Fatalf("after step %d", i)
		}
	}
}
