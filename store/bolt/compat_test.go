package bolt_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/storetest"
)

// compatBatches is the content of the files in testdata: v1.db, written
// by the store before event values were packed (codec version 1, JSON
// rewards, a by_contract entry for every event), and v2.db, written by
// schema version 2 (packed values whose payloads name no dictionary, a
// tx entry per transaction; schema 3 writes values the same way). Do not change it: the files were made from
// exactly these batches.
func compatBatches() []store.Batch {
	var out []store.Batch
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for h := uint64(1); h <= 30; h++ {
		b := store.Batch{Source: "flow", Kind: "flow"}
		t := t0.Add(time.Duration(h) * time.Minute)
		id := fmt.Sprintf("%064x", h*7919)
		for i := 0; i < 4; i++ {
			typ := []string{"A.1654653399040a61.FlowToken.TokensWithdrawn", "A.1654653399040a61.FlowToken.TokensDeposited", "A.f919ee77447b7497.FlowFees.FeesDeducted", "flow.AccountCreated"}[i]
			ctr := []string{"A.1654653399040a61.FlowToken", "A.1654653399040a61.FlowToken", "A.f919ee77447b7497.FlowFees", "flow"}[i]
			addr := fmt.Sprintf("%016x", h%3+1)
			b.Events = append(b.Events, store.Event{
				Height: h, BlockID: id, BlockTime: t, TxID: fmt.Sprintf("%064x", h*100+uint64(i/2)),
				TxIndex: uint32(i / 2), EventIndex: uint32(i), Type: typ, Contract: ctr,
				Addresses: []string{addr},
				Payload: json.RawMessage(fmt.Sprintf(`{"type":"Event","value":{"id":%q,"fields":[{"name":"amount","value":{"type":"UFix64","value":"%d.00000000"}},{"name":"to","value":{"type":"Optional","value":{"type":"Address","value":"0x%s"}}}]}}`,
					typ, h, addr)),
			})
		}
		// An event whose contract is not its type's prefix, and one
		// without a transaction.
		b.Events = append(b.Events, store.Event{Height: h, BlockID: id, BlockTime: t, TxIndex: 9, EventIndex: 0,
			Type: "beacon", Contract: "admin", Addresses: []string{"sm1qqq", "ABC"}, Payload: json.RawMessage(`{"epoch":3}`)})
		b.Blocks = []store.Block{{Height: h, BlockID: id, BlockTime: t, EventCount: 5}}
		if h%5 == 0 {
			b.Rewards = append(b.Rewards,
				store.Reward{Account: "node1", Kind: "flow_node_reward", ID: fmt.Sprintf("%d/0/0", h), Height: h, HasHeight: true,
					Time: t, RawAmount: fmt.Sprint(h * 123456789), Unit: "FLOW", Decimals: 8, Details: json.RawMessage(`{"tx_id":"ab"}`)},
				store.Reward{Account: "node1", Kind: "flow_delegator_reward", ID: fmt.Sprintf("%d/0/1", h), Height: h, HasHeight: true,
					Time: t, RawAmount: "340282366920938463463374607431768211456", Unit: "FLOW", Decimals: 8, Aliases: []string{"node1/1"}})
		}
		b.Checkpoint = &store.Checkpoint{Height: h, BlockID: id, Time: t}
		b.Coverage = &store.Range{From: h, To: h}
		out = append(out, b)
	}
	out = append(out, store.Batch{Source: "pre", Kind: "presearch", Rewards: []store.Reward{{
		Account: "key1", Kind: "presearch_period", ID: "w1", Time: t0.Add(time.Hour),
		PeriodStart: t0, PeriodEnd: t0.Add(time.Hour), RawAmount: "1000000000000000000", Unit: "PRE", Decimals: 18,
	}}})
	return out
}

// TestReadsVersion1File opens a file written by the first format and
// checks that every query answers as it does on a file written now.
func TestReadsVersion1File(t *testing.T) { testReadsOldFile(t, "v1.db") }

// TestReadsVersion2File does the same for a file of schema version 2,
// whose payloads were packed with the dictionary the migration to
// version 4 records in the file.
func TestReadsVersion2File(t *testing.T) { testReadsOldFile(t, "v2.db") }

func testReadsOldFile(t *testing.T, name string) {
	oldDir := t.TempDir()
	src, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(oldDir, bolt.FileName), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	old, err := bolt.Open(oldDir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	fresh := storetest.MustOpen(t)
	if err := fresh.Apply(ctx, compatBatches()...); err != nil {
		t.Fatal(err)
	}
	same := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the old file answers\n%+v\nthe new one\n%+v", name, got, want)
		}
	}
	for _, q := range []store.EventQuery{
		{Source: "flow", Limit: 1000},
		{Source: "flow", Contract: "A.1654653399040a61.FlowToken", Limit: 1000},
		{Contract: "flow", Limit: 1000},
		{Contract: "admin", Limit: 1000},
		{Types: []string{"A.f919ee77447b7497.FlowFees.FeesDeducted"}, Limit: 1000},
		{Address: "0000000000000002", FromHeight: u64(5), Limit: 1000},
		{TxID: fmt.Sprintf("%064x", 700), Limit: 1000},
		{FromHeight: u64(7), ToHeight: u64(9), Limit: 1000},
		{Source: "flow", Desc: true, Limit: 7},
	} {
		got, want := storetest.AllEvents(t, old, q), storetest.AllEvents(t, fresh, q)
		if len(want) == 0 {
			t.Errorf("query %+v finds nothing", q)
		}
		same(fmt.Sprintf("events %+v", q), got, want)
	}
	for _, s := range []*bolt.Store{old, fresh} {
		if err := s.Check(ctx); err != nil {
			t.Errorf("check: %v", err)
		}
	}
	gb, err := old.Blocks(ctx, store.BlockQuery{Source: "flow", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	wb, _ := fresh.Blocks(ctx, store.BlockQuery{Source: "flow", Limit: 1000})
	same("blocks", gb, wb)
	for _, q := range []store.RewardQuery{{Limit: 1000}, {Accounts: []string{"node1/1"}, Limit: 1000}, {Source: "pre", Limit: 1000}} {
		g, err := old.Rewards(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := fresh.Rewards(ctx, q)
		if len(w.Items) == 0 {
			t.Errorf("rewards %+v finds nothing", q)
		}
		same(fmt.Sprintf("rewards %+v", q), g, w)
	}
	// Several accounts sum the rewards; one account, or none, reads the
	// hour totals, which the migration to version 9 filled (Check above
	// compares them with the rewards).
	for _, acct := range [][]string{{"node1", "key1"}, {"node1"}, {"node1/1"}, nil} {
		sq := store.SummaryQuery{RewardQuery: store.RewardQuery{Accounts: acct}, GroupBy: store.GroupDay}
		gs, err := old.RewardSummary(ctx, sq)
		if err != nil {
			t.Fatal(err)
		}
		ws, _ := fresh.RewardSummary(ctx, sq)
		if len(ws) == 0 {
			t.Errorf("summary of %q finds nothing", acct)
		}
		same(fmt.Sprintf("summary of %q", acct), fmt.Sprint(gs), fmt.Sprint(ws))
	}
	// Rewriting old records in the new format keeps one copy of each.
	if err := old.Apply(ctx, compatBatches()...); err != nil {
		t.Fatal(err)
	}
	same("events after rewrite", storetest.AllEvents(t, old, store.EventQuery{Limit: 1000}), storetest.AllEvents(t, fresh, store.EventQuery{Limit: 1000}))
	if err := old.Check(ctx); err != nil {
		t.Errorf("check after rewrite: %v", err)
	}
}

// TestWriteVersion1File regenerates testdata/v1.db; it only runs with
// EVINDEX_WRITE_V1=1 and only means something on the version 1 code.
func TestWriteVersion1File(t *testing.T) {
	if os.Getenv("EVINDEX_WRITE_V1") != "1" {
		t.Skip("set EVINDEX_WRITE_V1=1 to regenerate testdata/v1.db")
	}
	dir := t.TempDir()
	s, err := bolt.Open(dir, bolt.Options{Now: func() time.Time { return time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, compatBatches()...); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join("testdata", "v1.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backup(ctx, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s.Close()
}
