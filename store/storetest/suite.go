package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
)

// Run is the conformance suite of store.Store: every backend's tests call
// it with a function that opens a fresh, empty store for one test (and
// registers its own cleanup: close, and an integrity check where the
// backend has one). The suite knows no backend; what it checks is what
// indexer, httpapi and the exports rely on. A backend must guarantee:
//
//   - Apply is one transaction: every batch of the call, with its
//     records, checkpoint, coverage and state, commits or none does, and a
//     malformed batch is refused with ErrInvalid (a *FieldError naming the
//     field) before anything is written.
//   - Records have deterministic identities (event: source, height, tx
//     index, event index; block: source, height; reward: source, account,
//     time, id; rejected: source, height, key): writing one again replaces
//     it, so a replayed range changes nothing, and SourceInfo's counters
//     count distinct records.
//   - The checkpoint is the last one written; coverage ranges are merged
//     when they overlap or touch, and read back ascending and disjoint.
//   - Lists come in identity order, reversed with Desc, a page at a time
//     behind an opaque keyset cursor (store.EncodeCursor over the bbolt key
//     layout, so a cursor means the same row on every backend): pages
//     never skip or repeat a row while Apply keeps writing past them, and
//     a cursor of another list, or garbage, is ErrCursorInvalid.
//   - Event filters combine (AND) and types OR among themselves; an event
//     with several matching addresses is listed once; a contract finds its
//     events whatever the spelling of their types; heights bound every
//     source when no source is given.
//   - Replacing a block record does not change the block id and time that
//     stored events report; events rewritten with the new block follow it.
//   - ReplaceRewards deletes the source's stored rewards in its height
//     range that the batch does not rewrite (a revert); aliases find
//     rewards like the account does.
//   - Summaries are exact integers (past 64 bits) equal to the sum of the
//     rows, bucketed by day, week (from Monday), month in the query's
//     Location, or by epoch from the source's Epochs (ErrInvalid without),
//     whether the backend sums the rewards or totals it keeps of them
//     (store.SummaryHours), through rewrites and reverts.
//   - A node's latest status is never replaced by an older snapshot; its
//     history is listed by time.
//   - Source state is private to the source and read back as written.
//   - Quarantined records are listed like the others and counted once;
//     a counting record (Rejected.Counted) is counted as the records it
//     stands for, also when a rewrite changes its count.
//   - Alerts are episodes (source, rule, subject, starts_at) written with
//     the batch that changed them, fenced by its lease, listed like the
//     other lists; each (source, rule, subject) has one fingerprint. The
//     outbox keeps each transition's rows in id order; a claimed row goes
//     to one sender at a time, and a finish from a sender that lost its
//     claim is ErrClaimLost.
func Run(t *testing.T, open func(*testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(*testing.T, func(*testing.T) store.Store)
	}{
		{"ReplayDoesNotDuplicate", testReplayDoesNotDuplicate},
		{"ApplyIsAllOrNothing", testApplyIsAllOrNothing},
		{"CoverageMerges", testCoverageMerges},
		{"PaginationNeverSkipsOrRepeatsDuringIngestion", testPaginationNeverSkipsOrRepeatsDuringIngestion},
		{"EventFilters", testEventFilters},
		{"CursorInvalid", testCursorInvalid},
		{"ReplaceRewardsOnRevert", testReplaceRewardsOnRevert},
		{"SummaryEqualsRows", testSummaryEqualsRows},
		{"SummaryPastUint64", testSummaryPastUint64},
		{"SummaryTimeZone", testSummaryTimeZone},
		{"SummaryEqualsItsRewards", testSummaryEqualsItsRewards},
		{"NodesLatestAndHistory", testNodesLatestAndHistory},
		{"ReplacedBlockKeepsEventsBlock", testReplacedBlockKeepsEventsBlock},
		{"HeightRangeWithoutSource", testHeightRangeWithoutSource},
		{"TxEntriesFollowRewrites", testTxEntriesFollowRewrites},
		{"OneApplyManyBatchesMarks", testOneApplyManyBatchesMarks},
		{"ContractWhateverTheTypeSpelling", testContractWhateverTheTypeSpelling},
		{"ApplyRefusesWhatCannotReadBack", testApplyRefusesWhatCannotReadBack},
		{"RejectedList", testRejectedList},
		{"AlertEpisodes", testAlertEpisodes},
		{"AlertsList", testAlertsList},
		{"OutboxClaims", testOutboxClaims},
		{"AlertsFencedByLease", testAlertsFencedByLease},
		{"RejectedSampledAndCounted", testRejectedSampledAndCounted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open) })
	}
}

var ctx = context.Background()

func u64(v uint64) *uint64 { return &v }

// FlowBatch builds the batch a Flow source emits for one height: nEvents
// events alternating between two types and two addresses.
func FlowBatch(h uint64, nEvents int) store.Batch {
	b := store.Batch{Source: "flow", Kind: "flow"}
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(h) * time.Second)
	for i := 0; i < nEvents; i++ {
		typ := "A.1.Token.Deposited"
		if i%2 == 1 {
			typ = "A.1.Token.Withdrawn"
		}
		b.Events = append(b.Events, store.Event{
			Height: h, BlockID: fmt.Sprintf("%064x", h), BlockTime: t, TxID: fmt.Sprintf("%064x", h*100+uint64(i/2)),
			TxIndex: uint32(i / 2), EventIndex: uint32(i), Type: typ, Contract: "A.1.Token",
			Addresses: []string{fmt.Sprintf("addr%d", i%2), "shared"},
			Payload:   json.RawMessage(fmt.Sprintf(`{"type":"Event","value":{"id":%q,"n":%d}}`, typ, i)),
		})
	}
	b.Blocks = []store.Block{{Height: h, BlockID: fmt.Sprintf("%064x", h), BlockTime: t, EventCount: uint32(nEvents)}}
	b.Checkpoint = &store.Checkpoint{Height: h, BlockID: fmt.Sprintf("%064x", h), Time: t}
	b.Coverage = &store.Range{From: h, To: h}
	return b
}

// AllEvents reads every page of q from s.
func AllEvents(t *testing.T, s store.Store, q store.EventQuery) []store.Event {
	t.Helper()
	var out []store.Event
	for i := 0; ; i++ {
		p, err := s.Events(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out
		}
		if i > 100000 {
			t.Fatal("pagination does not end")
		}
		q.Cursor = p.Next
	}
}

// AllRejected reads every page of q from s.
func AllRejected(t *testing.T, s store.Store, q store.RejectedQuery) []store.Rejected {
	t.Helper()
	var out []store.Rejected
	for range 100000 {
		p, err := s.Rejected(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Items...)
		if q.Cursor = p.Next; q.Cursor == "" {
			return out
		}
	}
	t.Fatal("the rejected list does not end")
	return nil
}

func smReward(layer uint64, smesher, coinbase string, amount int64) store.Reward {
	return store.Reward{Account: coinbase, Kind: "smesher_reward", ID: fmt.Sprintf("%s/%d", smesher, layer),
		Height: layer, HasHeight: true, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(layer) * 5 * time.Minute),
		RawAmount: fmt.Sprint(amount), Unit: "SMH", Decimals: 9, Aliases: []string{smesher}}
}

func testReplayDoesNotDuplicate(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	for h := uint64(1); h <= 50; h++ {
		if err := s.Apply(ctx, FlowBatch(h, 4)); err != nil {
			t.Fatal(err)
		}
	}
	// An upstream resends heights 20..50 after a reconnect.
	for h := uint64(20); h <= 50; h++ {
		if err := s.Apply(ctx, FlowBatch(h, 4)); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(AllEvents(t, s, store.EventQuery{Source: "flow"})); got != 200 {
		t.Fatalf("%d events, want 200", got)
	}
	info, err := s.Source(ctx, "flow")
	if err != nil {
		t.Fatal(err)
	}
	if info.Events != 200 || info.Blocks != 50 {
		t.Errorf("counters events=%d blocks=%d, want 200 and 50", info.Events, info.Blocks)
	}
	if info.Checkpoint == nil || info.Checkpoint.Height != 50 {
		t.Errorf("checkpoint %+v, want height 50", info.Checkpoint)
	}
	cov, err := s.Coverage(ctx, "flow")
	if err != nil {
		t.Fatal(err)
	}
	if len(cov) != 1 || cov[0] != (store.Range{From: 1, To: 50}) {
		t.Errorf("coverage %v, want one range 1..50", cov)
	}
}

func testApplyIsAllOrNothing(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	bad := FlowBatch(2, 2)
	bad.Events[1].Payload = json.RawMessage(`{not json`)
	err := s.Apply(ctx, FlowBatch(1, 2), bad)
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
	if evs := AllEvents(t, s, store.EventQuery{}); len(evs) != 0 {
		t.Fatalf("%d events stored from a rejected transaction", len(evs))
	}
	if _, found, _ := s.Checkpoint(ctx, "flow"); found {
		t.Fatal("checkpoint stored from a rejected transaction")
	}
}

func testCoverageMerges(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	for _, r := range []store.Range{{From: 1, To: 5}, {From: 10, To: 12}, {From: 20, To: 20}, {From: 6, To: 9}, {From: 13, To: 15}} {
		if err := s.Apply(ctx, store.Batch{Source: "x", Coverage: &r}); err != nil {
			t.Fatal(err)
		}
	}
	cov, _ := s.Coverage(ctx, "x")
	want := []store.Range{{From: 1, To: 15}, {From: 20, To: 20}}
	if fmt.Sprint(cov) != fmt.Sprint(want) {
		t.Fatalf("coverage %v, want %v", cov, want)
	}
}

func testPaginationNeverSkipsOrRepeatsDuringIngestion(t *testing.T, open func(*testing.T) store.Store) {
	for _, desc := range []bool{false, true} {
		t.Run(fmt.Sprintf("desc=%v", desc), func(t *testing.T) {
			s := open(t)
			for h := uint64(100); h < 200; h++ {
				if err := s.Apply(ctx, FlowBatch(h, 6)); err != nil {
					t.Fatal(err)
				}
			}
			seen := map[string]bool{}
			q := store.EventQuery{Source: "flow", Limit: 37, Desc: desc}
			next := uint64(200)
			for pages := 0; ; pages++ {
				p, err := s.Events(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				var prev *store.Event
				for i := range p.Items {
					e := &p.Items[i]
					k := fmt.Sprintf("%d/%d/%d", e.Height, e.TxIndex, e.EventIndex)
					if seen[k] {
						t.Fatalf("event %s served twice", k)
					}
					seen[k] = true
					if prev != nil && (prev.Height > e.Height) != desc && prev.Height != e.Height {
						t.Fatalf("order broken: %d then %d", prev.Height, e.Height)
					}
					prev = e
				}
				if p.Next == "" {
					break
				}
				q.Cursor = p.Next
				// Ingestion continues between pages, after the range being read.
				if err := s.Apply(ctx, FlowBatch(next, 6)); err != nil {
					t.Fatal(err)
				}
				next++
			}
			for h := uint64(100); h < 200; h++ {
				for i := 0; i < 6; i++ {
					if k := fmt.Sprintf("%d/%d/%d", h, i/2, i); !seen[k] {
						t.Fatalf("event %s skipped", k)
					}
				}
			}
		})
	}
}

func testEventFilters(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	for h := uint64(1); h <= 30; h++ {
		if err := s.Apply(ctx, FlowBatch(h, 4)); err != nil {
			t.Fatal(err)
		}
	}
	other := FlowBatch(5, 2)
	other.Source = "flow-b"
	if err := s.Apply(ctx, other); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		q    store.EventQuery
		want int
	}{
		{"All", store.EventQuery{}, 122},
		{"Source", store.EventQuery{Source: "flow"}, 120},
		{"OneType", store.EventQuery{Source: "flow", Types: []string{"A.1.Token.Deposited"}}, 60},
		{"TwoTypesMerged", store.EventQuery{Types: []string{"A.1.Token.Withdrawn", "A.1.Token.Deposited"}}, 122},
		{"Address", store.EventQuery{Address: "addr1"}, 61},
		{"SharedAddressOnce", store.EventQuery{Address: "shared", Source: "flow"}, 120},
		{"Contract", store.EventQuery{Contract: "A.1.Token", Source: "flow-b"}, 2},
		{"Tx", store.EventQuery{TxID: fmt.Sprintf("%064x", 1001), Source: "flow"}, 2},
		{"HeightRange", store.EventQuery{Source: "flow", FromHeight: u64(10), ToHeight: u64(12)}, 12},
		{"HeightRangeNoSource", store.EventQuery{FromHeight: u64(5), ToHeight: u64(5)}, 6},
		{"TypeAndAddress", store.EventQuery{Source: "flow", Types: []string{"A.1.Token.Withdrawn"}, Address: "addr0"}, 0},
		{"TypeAndHeights", store.EventQuery{Source: "flow", Types: []string{"A.1.Token.Withdrawn"}, FromHeight: u64(30)}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, limit := range []int{1, 7, 1000} {
				q := c.q
				q.Limit = limit
				if got := len(AllEvents(t, s, q)); got != c.want {
					t.Fatalf("limit %d: %d events, want %d", limit, got, c.want)
				}
			}
		})
	}
}

func testCursorInvalid(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	for _, c := range []string{"!!!", "Zm9v"} {
		if _, err := s.Events(ctx, store.EventQuery{Cursor: c}); !errors.Is(err, store.ErrCursorInvalid) {
			t.Errorf("cursor %q: %v, want ErrCursorInvalid", c, err)
		}
	}
	if err := s.Apply(ctx, FlowBatch(1, 3)); err != nil {
		t.Fatal(err)
	}
	ep, _ := s.Events(ctx, store.EventQuery{Limit: 1})
	if _, err := s.Blocks(ctx, store.BlockQuery{Cursor: ep.Next}); !errors.Is(err, store.ErrCursorInvalid) {
		t.Errorf("an events cursor on blocks: %v, want ErrCursorInvalid", err)
	}
}

func testReplaceRewardsOnRevert(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	var rs []store.Reward
	for l := uint64(1); l <= 20; l++ {
		rs = append(rs, smReward(l, "s1", "sm1a", 1000), smReward(l, "s2", "sm1a", 7))
	}
	if err := s.Apply(ctx, store.Batch{Source: "sm", Rewards: rs}); err != nil {
		t.Fatal(err)
	}
	// Layers 16..20 are reverted: s2 lost its rewards, s1's changed.
	var again []store.Reward
	for l := uint64(16); l <= 20; l++ {
		again = append(again, smReward(l, "s1", "sm1a", 999))
	}
	if err := s.Apply(ctx, store.Batch{Source: "sm", Rewards: again, ReplaceRewards: &store.Range{From: 16, To: 20}}); err != nil {
		t.Fatal(err)
	}
	page, err := s.Rewards(ctx, store.RewardQuery{Accounts: []string{"sm1a"}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	sum := new(big.Int)
	for _, r := range page.Items {
		v, _ := new(big.Int).SetString(r.RawAmount, 10)
		sum.Add(sum, v)
	}
	if len(page.Items) != 35 || sum.Int64() != 15*1007+5*999 {
		t.Fatalf("%d rewards summing %s, want 35 summing %d", len(page.Items), sum, 15*1007+5*999)
	}
	bySmesher, _ := s.Rewards(ctx, store.RewardQuery{Accounts: []string{"s2"}, Limit: 1000})
	if len(bySmesher.Items) != 15 {
		t.Fatalf("alias query found %d rewards of s2, want 15", len(bySmesher.Items))
	}
	info, _ := s.Source(ctx, "sm")
	if info.Rewards != 35 {
		t.Errorf("reward counter %d, want 35", info.Rewards)
	}
}

func testSummaryEqualsRows(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	var rs []store.Reward
	for l := uint64(0); l < 2000; l++ {
		rs = append(rs, smReward(l, "s1", "sm1a", 123456789+int64(l)), smReward(l, "s2", "sm1b", 5))
	}
	if err := s.Apply(ctx, store.Batch{Source: "sm", Rewards: rs,
		Epochs: &store.Epochs{Genesis: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), BlockDuration: 5 * time.Minute, BlocksPerEpoch: 288}}); err != nil {
		t.Fatal(err)
	}
	big18 := store.Reward{Account: "node1", Kind: "presearch_period", ID: "p1", Time: time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC),
		PeriodStart: time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC), PeriodEnd: time.Date(2026, 1, 3, 1, 0, 0, 0, time.UTC),
		RawAmount: "123456789012345678901234", Unit: "PRE", Decimals: 18}
	if err := s.Apply(ctx, store.Batch{Source: "pre", Rewards: []store.Reward{big18}}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{store.GroupDay, store.GroupWeek, store.GroupMonth, store.GroupEpoch} {
		t.Run(g, func(t *testing.T) {
			q := store.SummaryQuery{RewardQuery: store.RewardQuery{Source: "sm", Accounts: []string{"sm1a"}}, GroupBy: g}
			rows, err := s.RewardSummary(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			total, count := new(big.Int), uint64(0)
			for _, r := range rows {
				total.Add(total, r.RawAmount)
				count += r.Count
				if r.Account != "sm1a" {
					t.Fatalf("summary mixed in account %s", r.Account)
				}
			}
			want := new(big.Int)
			for l := int64(0); l < 2000; l++ {
				want.Add(want, big.NewInt(123456789+l))
			}
			if total.Cmp(want) != 0 || count != 2000 {
				t.Fatalf("summary %s over %d rows, want %s over 2000", total, count, want)
			}
		})
	}
	rows, err := s.RewardSummary(ctx, store.SummaryQuery{RewardQuery: store.RewardQuery{Source: "pre"}, GroupBy: store.GroupDay})
	if err != nil || len(rows) != 1 || rows[0].RawAmount.String() != big18.RawAmount {
		t.Fatalf("presearch summary %+v %v", rows, err)
	}
	if _, err := s.RewardSummary(ctx, store.SummaryQuery{RewardQuery: store.RewardQuery{Source: "pre"}, GroupBy: store.GroupEpoch}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("epoch summary of a source without epochs: %v, want ErrInvalid", err)
	}
}

// testSummaryPastUint64 sums amounts whose total leaves uint64 (and one
// that never fitted): the row switches to a big sum and stays exact.
func testSummaryPastUint64(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	amounts := []string{"18446744073709551615", "1", "123456789012345678901234567890", "18446744073709551615"}
	var rs []store.Reward
	want := new(big.Int)
	for i, a := range amounts {
		r := smReward(uint64(i), "s1", "sm1a", 0)
		r.RawAmount = a
		rs = append(rs, r)
		n, _ := new(big.Int).SetString(a, 10)
		want.Add(want, n)
	}
	if err := s.Apply(ctx, store.Batch{Source: "sm", Rewards: rs}); err != nil {
		t.Fatal(err)
	}
	rows, err := s.RewardSummary(ctx, store.SummaryQuery{GroupBy: store.GroupDay})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Count != 4 || rows[0].RawAmount.Cmp(want) != 0 {
		t.Fatalf("summary %+v, want one row of 4 summing %s", rows, want)
	}
}

func testSummaryTimeZone(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	r := smReward(0, "s1", "sm1a", 10)
	r.Time = time.Date(2026, 3, 2, 3, 0, 0, 0, time.UTC) // 22:00 on March 1 in New York
	if err := s.Apply(ctx, store.Batch{Source: "sm", Rewards: []store.Reward{r}}); err != nil {
		t.Fatal(err)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tz database:", err)
	}
	rows, err := s.RewardSummary(ctx, store.SummaryQuery{GroupBy: store.GroupDay, Location: ny})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].BucketStart.Day() != 1 || rows[0].BucketStart.Month() != time.March {
		t.Fatalf("bucket %v, want March 1 in New York", rows[0].BucketStart)
	}
}

func testNodesLatestAndHistory(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	yes, no := true, false
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ns []store.NodeStatus
	for i := 0; i < 10; i++ {
		c := &yes
		if i%3 == 0 {
			c = &no
		}
		ns = append(ns, store.NodeStatus{Node: "n1", Time: base.Add(time.Duration(i) * time.Minute), Connected: c})
	}
	if err := s.Apply(ctx, store.Batch{Source: "pre", Nodes: ns}); err != nil {
		t.Fatal(err)
	}
	// A late, older snapshot must not replace the latest.
	if err := s.Apply(ctx, store.Batch{Source: "pre", Nodes: []store.NodeStatus{{Node: "n1", Time: base, Connected: &no}}}); err != nil {
		t.Fatal(err)
	}
	latest, err := s.Nodes(ctx, "pre")
	if err != nil || len(latest) != 1 || !latest[0].Time.Equal(base.Add(9*time.Minute)) || *latest[0].Connected != false {
		t.Fatalf("latest %+v %v", latest, err)
	}
	h, err := s.NodeHistory(ctx, store.NodeHistoryQuery{Source: "pre", Node: "n1", FromTime: base.Add(2 * time.Minute), ToTime: base.Add(5 * time.Minute)})
	if err != nil || len(h.Items) != 3 {
		t.Fatalf("history %d items, %v; want 3", len(h.Items), err)
	}
}

// Replacing a block record must not change the block id and time that
// the events stored at its height say.
func testReplacedBlockKeepsEventsBlock(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	b := FlowBatch(5, 4)
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	before := AllEvents(t, s, store.EventQuery{Source: "flow"})
	newer := store.Batch{Source: "flow", Blocks: []store.Block{{Height: 5, BlockID: "ff", BlockTime: time.Unix(7, 0).UTC(), Status: "reverted"}}}
	if err := s.Apply(ctx, newer); err != nil {
		t.Fatal(err)
	}
	after := AllEvents(t, s, store.EventQuery{Source: "flow"})
	if len(after) != len(before) {
		t.Fatalf("%d events, want %d", len(after), len(before))
	}
	for i := range after {
		if after[i].BlockID != before[i].BlockID || !after[i].BlockTime.Equal(before[i].BlockTime) {
			t.Errorf("event %d: block %s %v after the block record changed, was %s %v", i, after[i].BlockID, after[i].BlockTime, before[i].BlockID, before[i].BlockTime)
		}
	}
	// Events rewritten with the new block follow it.
	b.Blocks = newer.Blocks
	for i := range b.Events {
		b.Events[i].BlockID, b.Events[i].BlockTime = "ff", time.Unix(7, 0).UTC()
	}
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, e := range AllEvents(t, s, store.EventQuery{Source: "flow"}) {
		if e.BlockID != "ff" {
			t.Errorf("event %d/%d: block %s, want ff", e.TxIndex, e.EventIndex, e.BlockID)
		}
	}
}

func testHeightRangeWithoutSource(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	for h := uint64(1); h <= 20; h++ {
		a, b := FlowBatch(h, 2), FlowBatch(h, 3)
		b.Source = "flow2"
		for i := range b.Events {
			b.Events[i].Source = ""
		}
		if err := s.Apply(ctx, a, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []store.EventQuery{
		{FromHeight: u64(10), ToHeight: u64(12)},
		{FromHeight: u64(18)},
		{ToHeight: u64(2), Desc: true},
		{FromHeight: u64(10), ToHeight: u64(12), Address: "shared", Limit: 2},
		{FromHeight: u64(10), Types: []string{"A.1.Token.Withdrawn"}},
	} {
		got := AllEvents(t, s, q)
		var want []store.Event
		for _, src := range []string{"flow", "flow2"} {
			q2 := q
			q2.Source, q2.Limit, q2.Cursor = src, 1000, ""
			want = append(want, AllEvents(t, s, q2)...)
		}
		if len(got) != len(want) || len(got) == 0 {
			t.Fatalf("%+v: %d events, want %d (both sources)", q, len(got), len(want))
		}
		for _, e := range got {
			if q.FromHeight != nil && e.Height < *q.FromHeight || q.ToHeight != nil && e.Height > *q.ToHeight {
				t.Fatalf("%+v: event at height %d", q, e.Height)
			}
		}
	}
}

// A tx id finds all of a transaction's events, and each event only while
// it carries the id.
func testTxEntriesFollowRewrites(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	b := FlowBatch(3, 6) // three transactions of two events
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	tx1 := b.Events[2].TxID
	count := func(txID string) int { return len(AllEvents(t, s, store.EventQuery{TxID: txID})) }
	if n := count(tx1); n != 2 {
		t.Fatalf("tx %s finds %d events, want 2", tx1, n)
	}
	if n := len(AllEvents(t, s, store.EventQuery{TxID: tx1, Source: "other"})); n != 0 {
		t.Fatalf("another source finds %d events", n)
	}
	b.Events[2].TxID = "not-hex"
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if n, m := count(tx1), count("not-hex"); n != 1 || m != 1 {
		t.Fatalf("after one rewrite: %d and %d events, want 1 and 1", n, m)
	}
	b.Events[3].TxID = "not-hex"
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if n, m := count(tx1), count("not-hex"); n != 0 || m != 2 {
		t.Fatalf("after both rewrites: %d and %d events, want 0 and 2", n, m)
	}
	if c, ok := s.(store.Checker); ok {
		if err := c.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// Checkpoints and coverage of several batches in one Apply end as if
// they had been applied one by one.
func testOneApplyManyBatchesMarks(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	var bs []store.Batch
	for _, h := range []uint64{1, 2, 3, 7, 8, 5} {
		bs = append(bs, FlowBatch(h, 1))
	}
	other := FlowBatch(4, 1)
	other.Source = "other"
	other.Events = nil
	bs = append(bs, other)
	if err := s.Apply(ctx, bs...); err != nil {
		t.Fatal(err)
	}
	cov, err := s.Coverage(ctx, "flow")
	if err != nil {
		t.Fatal(err)
	}
	if want := []store.Range{{From: 1, To: 3}, {From: 5, To: 5}, {From: 7, To: 8}}; fmt.Sprint(cov) != fmt.Sprint(want) {
		t.Errorf("coverage %v, want %v", cov, want)
	}
	for src, want := range map[string]uint64{"flow": 5, "other": 4} {
		cp, ok, err := s.Checkpoint(ctx, src)
		if err != nil || !ok || cp.Height != want {
			t.Errorf("%s checkpoint %d (%v, %v), want %d, the last batch's", src, cp.Height, ok, err, want)
		}
	}
}

// A contract is found however a source spells its types: those that
// start with the contract's name and those that do not, and never the
// events of a contract whose name only starts the same way.
func testContractWhateverTheTypeSpelling(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	b := store.Batch{Source: "chain"}
	for i, ev := range []struct{ typ, contract string }{
		{"balances::Transfer", "balances"},
		{"balances::Deposit", "balances"},
		{"balancesx::Transfer", "balancesx"},
		{"Transfer", "balances"},
		{"balances", "balances"},
	} {
		b.Events = append(b.Events, store.Event{Height: 1, EventIndex: uint32(i), Type: ev.typ, Contract: ev.contract})
	}
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, q := range []store.EventQuery{{Contract: "balances"}, {Contract: "balances", Desc: true}, {Contract: "balances", Limit: 1}} {
		got := AllEvents(t, s, q)
		var idx []uint32
		for _, e := range got {
			idx = append(idx, e.EventIndex)
		}
		want := []uint32{0, 1, 3, 4}
		if q.Desc {
			want = []uint32{4, 3, 1, 0}
		}
		if fmt.Sprint(idx) != fmt.Sprint(want) {
			t.Errorf("%+v: events %v, want %v", q, idx, want)
		}
	}
}

// testApplyRefusesWhatCannotReadBack covers values that used to be stored
// and then read back as something else, or stop a source for good: each
// is refused by Apply naming the field, and Quarantine moves it aside so
// the rest of the batch and its checkpoint commit.
func testApplyRefusesWhatCannotReadBack(t *testing.T, open func(*testing.T) store.Store) {
	deep := strings.Repeat("[", store.MaxJSONDepth+1) + strings.Repeat("]", store.MaxJSONDepth+1)
	cases := []struct {
		name  string
		field string
		edit  func(b *store.Batch)
	}{
		{"Year9999", "block_time", func(b *store.Batch) { b.Blocks[0].BlockTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC) }},
		{"Year1600", "block_time", func(b *store.Batch) { b.Events[0].BlockTime = time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"TypeWithNUL", "type", func(b *store.Batch) { b.Events[0].Type = "A.1.Token\x00Deposited" }},
		{"LongType", "type", func(b *store.Batch) { b.Events[0].Type = strings.Repeat("T", 64<<10) }},
		{"LongTxID", "tx_id", func(b *store.Batch) { b.Events[0].TxID = strings.Repeat("ab", 20<<10) }},
		{"InvalidUTF8Payload", "payload", func(b *store.Batch) { b.Events[0].Payload = json.RawMessage("{\"a\":\"\xff\xfe\"}") }},
		{"DeepPayload", "payload", func(b *store.Batch) { b.Events[0].Payload = json.RawMessage(deep) }},
		{"NegativeAmount", "raw_amount", func(b *store.Batch) { b.Rewards[0].RawAmount = "-5" }},
		{"NodeWithNUL", "node", func(b *store.Batch) { b.Nodes[0].Node = "key\x00" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			b := rejectBatch(7)
			c.edit(&b)
			err := s.Apply(ctx, b)
			var fe *store.FieldError
			if !errors.Is(err, store.ErrInvalid) || !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("Apply = %v, want ErrInvalid naming %s", err, c.field)
			}
			if n := b.Quarantine(time.Now()); n == 0 {
				t.Fatal("Quarantine moved nothing")
			}
			if err := s.Apply(ctx, b); err != nil {
				t.Fatalf("Apply after Quarantine: %v", err)
			}
			if cp, _, _ := s.Checkpoint(ctx, "flow"); cp.Height != 7 {
				t.Fatalf("checkpoint %d, want 7: a bad record must not hold it back", cp.Height)
			}
			p, err := s.Rejected(ctx, store.RejectedQuery{Source: "flow"})
			if err != nil || len(p.Items) == 0 {
				t.Fatalf("rejected: %v, %d items", err, len(p.Items))
			}
			at := uint64(7) // records without a height are placed at their time's Unix second
			if c.field == "node" {
				at = uint64(b.Blocks[0].BlockTime.Unix())
			}
			if r := p.Items[0]; r.Field != c.field || r.Height != at || r.Reason == "" || r.RawSize == 0 || r.Time.IsZero() {
				t.Fatalf("rejected record %+v", r)
			}
			if in, _ := s.Source(ctx, "flow"); in.Rejected != uint64(len(p.Items)) {
				t.Fatalf("source counts %d rejected, %d listed", in.Rejected, len(p.Items))
			}
		})
	}
}

func rejectBatch(h uint64) store.Batch {
	b := FlowBatch(h, 2)
	b.Rewards = []store.Reward{{Account: "node1", Kind: "flow_node_reward", ID: "7/0/0", Height: h, HasHeight: true,
		Time: b.Blocks[0].BlockTime, RawAmount: "100", Unit: "FLOW", Decimals: 8}}
	b.Nodes = []store.NodeStatus{{Node: "node1", Time: b.Blocks[0].BlockTime}}
	return b
}

// testRejectedList pages through quarantined records with cursors, in
// both orders, and replays do not count them twice.
func testRejectedList(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	for h := uint64(1); h <= 25; h++ {
		b := FlowBatch(h, 1)
		b.Rejected = []store.Rejected{store.NewRejected(store.RecordEvent, h, "tx 0 event 9", "type", "contains a NUL byte", []byte("A.x\x00"))}
		for range 2 { // a replay rewrites the same record
			if err := s.Apply(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, desc := range []bool{false, true} {
		q := store.RejectedQuery{Source: "flow", FromHeight: u64(3), ToHeight: u64(22), Limit: 7, Desc: desc}
		var heights []uint64
		for i := 0; i < 10; i++ {
			p, err := s.Rejected(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range p.Items {
				heights = append(heights, r.Height)
				if string(r.Raw) != "A.x\x00" || r.Key != "tx 0 event 9" {
					t.Fatalf("record %+v", r)
				}
			}
			if q.Cursor = p.Next; q.Cursor == "" {
				break
			}
		}
		if len(heights) != 20 || (heights[0] == 3) == desc {
			t.Fatalf("desc=%v: heights %v", desc, heights)
		}
	}
	if in, _ := s.Source(ctx, "flow"); in.Rejected != 25 {
		t.Fatalf("rejected count %d, want 25", in.Rejected)
	}
	if _, err := s.Rejected(ctx, store.RejectedQuery{Cursor: "ZXZlbnQ"}); !errors.Is(err, store.ErrCursorInvalid) {
		t.Fatalf("an events cursor on the rejected list: %v", err)
	}
}

// testRejectedSampledAndCounted: a flood of rejected records at one height
// is kept as a sample per reason plus counting records, and every count
// (the source's, the list's) stays exact through replays and rewrites.
func testRejectedSampledAndCounted(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	flood := func(a int) store.Batch {
		b := FlowBatch(5, 1)
		for i := range a { // one reason, many records
			b.Rejected = append(b.Rejected, store.NewRejected(store.RecordReward, 5, fmt.Sprintf("reward tx 1 event %05d", i), "", "amount: not a UFix64", []byte("9999")))
		}
		for i := range 30 { // another, under the sample
			b.Rejected = append(b.Rejected, store.NewRejected(store.RecordReward, 5, fmt.Sprintf("reward tx 2 event %05d", i), "", "field nodeID: missing", nil))
		}
		for i := range 25 { // a reason each: past MaxRejectedReasons they are counted together
			b.Rejected = append(b.Rejected, store.NewRejected(store.RecordReward, 5, fmt.Sprintf("reward tx 3 event %05d", i), "", fmt.Sprintf("amount: %d is out of range", i), nil))
		}
		b.Quarantine(time.Now())
		return b
	}
	list := func() []store.Rejected { return AllRejected(t, s, store.RejectedQuery{Source: "flow", Limit: 40}) }
	check := func(a int) {
		t.Helper()
		want := uint64(a + 30 + 25)
		items := list()
		var total uint64
		var counting []store.Rejected
		for _, r := range items {
			total += r.Records()
			if r.Counted > 0 {
				counting = append(counting, r)
			}
		}
		if in, _ := s.Source(ctx, "flow"); in.Rejected != want || total != want {
			t.Fatalf("source counts %d rejected, the list %d, want %d", in.Rejected, total, want)
		}
		keptA := store.MaxRejectedSample
		further := 25 - (store.MaxRejectedReasons - 2)
		if n := keptA + 30 + (25 - further) + len(counting); len(items) != n || len(counting) != 2 {
			t.Fatalf("%d items, %d counting, want %d and 2", len(items), len(counting), n)
		}
		for _, c := range counting {
			switch {
			case c.Key == fmt.Sprintf("reward tx 1 event %05d", keptA):
				if c.Counted != uint64(a-keptA) || c.LastKey != fmt.Sprintf("reward tx 1 event %05d", a-1) || c.Reason != "amount: not a UFix64" || len(c.Raw) != 0 || c.Kind != store.RecordReward {
					t.Fatalf("counting record of the flood %+v", c)
				}
			case strings.HasPrefix(c.Reason, store.RejectedFurtherReasons):
				if c.Counted != uint64(further) || c.Key != fmt.Sprintf("reward tx 3 event %05d", 25-further) || c.LastKey != "reward tx 3 event 00024" {
					t.Fatalf("counting record of further reasons %+v", c)
				}
			default:
				t.Fatalf("counting record %+v", c)
			}
		}
	}
	b := flood(1000)
	if len(b.Rejected) >= 1000 {
		t.Fatalf("Quarantine left %d rejected records in the batch", len(b.Rejected))
	}
	for range 2 { // a replay rewrites the same records
		if err := s.Apply(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	check(1000)
	// The upstream sends the height again with more of the flood: the
	// counting record is rewritten with its new count.
	if err := s.Apply(ctx, flood(1500)); err != nil {
		t.Fatal(err)
	}
	check(1500)
	// Counting records as a list reads them (a copy into another store)
	// go through Apply as they are.
	items := list()
	c := FlowBatch(6, 0)
	c.Rejected = items
	for i := range c.Rejected {
		c.Rejected[i].Height = 6
	}
	if err := s.Apply(ctx, c); err != nil {
		t.Fatal(err)
	}
	if in, _ := s.Source(ctx, "flow"); in.Rejected != 2*(1500+30+25) {
		t.Fatalf("after copying height 5 to 6 the source counts %d, want %d", in.Rejected, 2*(1500+30+25))
	}
}
