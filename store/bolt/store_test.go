package bolt_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/storetest"
)

var ctx = context.Background()

func u64(v uint64) *uint64 { return &v }

// flowBatch builds the batch a Flow source emits for one height: nEvents
// events alternating between two types and two addresses.
func flowBatch(h uint64, nEvents int) store.Batch {
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

func allEvents(t *testing.T, s *bolt.Store, q store.EventQuery) []store.Event {
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

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, bolt.FileName): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode %v, want %v", path, got, want)
		}
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = bolt.Open(dir, bolt.Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if want := filepath.Join(dir, bolt.FileName); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the file %s", err, want)
	}
}

func TestCorruptFileIsAnErrorNotAPanic(t *testing.T) {
	for name, content := range map[string][]byte{
		"Garbage":   []byte("this is not a bbolt file, just some text that is long enough to look like a header page or two"),
		"Truncated": nil,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if content == nil {
				s, err := bolt.Open(dir, bolt.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Apply(ctx, flowBatch(1, 4)); err != nil {
					t.Fatal(err)
				}
				s.Close()
				raw, _ := os.ReadFile(filepath.Join(dir, bolt.FileName))
				content = raw[:100]
			}
			if err := os.WriteFile(filepath.Join(dir, bolt.FileName), content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := bolt.Open(dir, bolt.Options{})
			if err == nil {
				t.Fatal("opened a corrupt file")
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, bolt.FileName)) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestReplayDoesNotDuplicate(t *testing.T) {
	s := storetest.MustOpen(t)
	for h := uint64(1); h <= 50; h++ {
		if err := s.Apply(ctx, flowBatch(h, 4)); err != nil {
			t.Fatal(err)
		}
	}
	// An upstream resends heights 20..50 after a reconnect.
	for h := uint64(20); h <= 50; h++ {
		if err := s.Apply(ctx, flowBatch(h, 4)); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(allEvents(t, s, store.EventQuery{Source: "flow"})); got != 200 {
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

func TestApplyIsAllOrNothing(t *testing.T) {
	s := storetest.MustOpen(t)
	bad := flowBatch(2, 2)
	bad.Events[1].Payload = json.RawMessage(`{not json`)
	err := s.Apply(ctx, flowBatch(1, 2), bad)
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
	if evs := allEvents(t, s, store.EventQuery{}); len(evs) != 0 {
		t.Fatalf("%d events stored from a rejected transaction", len(evs))
	}
	if _, found, _ := s.Checkpoint(ctx, "flow"); found {
		t.Fatal("checkpoint stored from a rejected transaction")
	}
}

func TestCoverageMerges(t *testing.T) {
	s := storetest.MustOpen(t)
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

func TestPaginationNeverSkipsOrRepeatsDuringIngestion(t *testing.T) {
	for _, desc := range []bool{false, true} {
		t.Run(fmt.Sprintf("desc=%v", desc), func(t *testing.T) {
			s := storetest.MustOpen(t)
			for h := uint64(100); h < 200; h++ {
				if err := s.Apply(ctx, flowBatch(h, 6)); err != nil {
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
				if err := s.Apply(ctx, flowBatch(next, 6)); err != nil {
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

func TestEventFilters(t *testing.T) {
	s := storetest.MustOpen(t)
	for h := uint64(1); h <= 30; h++ {
		if err := s.Apply(ctx, flowBatch(h, 4)); err != nil {
			t.Fatal(err)
		}
	}
	other := flowBatch(5, 2)
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
				if got := len(allEvents(t, s, q)); got != c.want {
					t.Fatalf("limit %d: %d events, want %d", limit, got, c.want)
				}
			}
		})
	}
}

func TestCursorInvalid(t *testing.T) {
	s := storetest.MustOpen(t)
	for _, c := range []string{"!!!", "Zm9v"} {
		if _, err := s.Events(ctx, store.EventQuery{Cursor: c}); !errors.Is(err, store.ErrCursorInvalid) {
			t.Errorf("cursor %q: %v, want ErrCursorInvalid", c, err)
		}
	}
	if err := s.Apply(ctx, flowBatch(1, 3)); err != nil {
		t.Fatal(err)
	}
	ep, _ := s.Events(ctx, store.EventQuery{Limit: 1})
	if _, err := s.Blocks(ctx, store.BlockQuery{Cursor: ep.Next}); !errors.Is(err, store.ErrCursorInvalid) {
		t.Errorf("an events cursor on blocks: %v, want ErrCursorInvalid", err)
	}
}

func smReward(layer uint64, smesher, coinbase string, amount int64) store.Reward {
	return store.Reward{Account: coinbase, Kind: "smesher_reward", ID: fmt.Sprintf("%s/%d", smesher, layer),
		Height: layer, HasHeight: true, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(layer) * 5 * time.Minute),
		RawAmount: fmt.Sprint(amount), Unit: "SMH", Decimals: 9, Aliases: []string{smesher}}
}

func TestReplaceRewardsOnRevert(t *testing.T) {
	s := storetest.MustOpen(t)
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

func TestSummaryEqualsRows(t *testing.T) {
	s := storetest.MustOpen(t)
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

// TestSummaryPastUint64 sums amounts whose total leaves uint64 (and one
// that never fitted): the row switches to a big sum and stays exact.
func TestSummaryPastUint64(t *testing.T) {
	s := storetest.MustOpen(t)
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

func TestSummaryTimeZone(t *testing.T) {
	s := storetest.MustOpen(t)
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

func TestNodesLatestAndHistory(t *testing.T) {
	s := storetest.MustOpen(t)
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

func TestStateAndBackup(t *testing.T) {
	s := storetest.MustOpen(t)
	if err := s.Apply(ctx, store.Batch{Source: "pre", State: map[string][]byte{"limiter": []byte("t1,t2")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, flowBatch(7, 3)); err != nil {
		t.Fatal(err)
	}
	v, _ := s.State(ctx, "pre", "limiter")
	if string(v) != "t1,t2" {
		t.Fatalf("state %q", v)
	}
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, bolt.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backup(ctx, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	restored, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if err := restored.Check(ctx); err != nil {
		t.Fatal(err)
	}
	cp, found, _ := restored.Checkpoint(ctx, "flow")
	if !found || cp.Height != 7 {
		t.Fatalf("restored checkpoint %+v %v", cp, found)
	}
	if got := len(allEvents(t, restored, store.EventQuery{})); got != 3 {
		t.Fatalf("restored %d events, want 3", got)
	}
}
