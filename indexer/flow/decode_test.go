package flow

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/entities"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/evindex/evindex/store"
)

func TestParseUFix64(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"12.50000000", 1250000000, true},
		{"0.00000001", 1, true},
		{"0.0", 0, true},
		{"7", 700000000, true},
		{"1.5", 150000000, true},
		{"184467440737.09551615", 18446744073709551615, true}, // UFix64 max
		{"184467440737.09551616", 0, false},
		{"184467440738.0", 0, false},
		{"99999999999999999999.0", 0, false},
		{"", 0, false},
		{".5", 0, false},
		{"1.", 0, false},
		{"-1.0", 0, false},
		{"+1.0", 0, false},
		{"1.000000001", 0, false},
		{"1e8", 0, false},
		{" 1.0", 0, false},
		{"1.0 ", 0, false},
		{"1,5", 0, false},
		{"0x10", 0, false},
		{"1.2.3", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseUFix64(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, errUFix64) {
				t.Fatalf("error %v does not wrap errUFix64", err)
			}
			if got != tt.want {
				t.Fatalf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestContractOf(t *testing.T) {
	tests := map[string]string{
		"A.8624b52f9ddcd04a.FlowIDTableStaking.RewardsPaid": "A.8624b52f9ddcd04a.FlowIDTableStaking",
		"A.1654653399040a61.FlowToken.TokensDeposited":      "A.1654653399040a61.FlowToken",
		"flow.AccountCreated":                               "flow",
		"A.1654653399040a61.FlowToken":                      "",
		"garbage":                                           "",
		"":                                                  "",
	}
	for typ, want := range tests {
		if got := contractOf(typ); got != want {
			t.Errorf("contractOf(%q) = %q, want %q", typ, got, want)
		}
	}
}

func TestDecodePayload(t *testing.T) {
	tests := []struct {
		name      string
		payload   string
		wantJSON  string
		wantAddrs []string
		ok        bool
	}{
		{
			name:      "Deposit",
			payload:   `{"type":"Event","value":{"id":"A.1654653399040a61.FlowToken.TokensDeposited","fields":[{"name":"amount","value":{"type":"UFix64","value":"12.50000000"}}, {"name":"to","value":{"type":"Optional","value":{"type":"Address","value":"0x01CF0E2F2F715450"}}}]}}` + "\n",
			wantJSON:  `{"type":"Event","value":{"id":"A.1654653399040a61.FlowToken.TokensDeposited","fields":[{"name":"amount","value":{"type":"UFix64","value":"12.50000000"}},{"name":"to","value":{"type":"Optional","value":{"type":"Address","value":"0x01CF0E2F2F715450"}}}]}}`,
			wantAddrs: []string{"01cf0e2f2f715450"},
			ok:        true,
		},
		{
			name:    "NilOptional",
			payload: `{"type":"Event","value":{"id":"A.1.C.E","fields":[{"name":"to","value":{"type":"Optional","value":null}}]}}`,
			ok:      true,
		},
		{
			name:      "NestedAndDuplicate",
			payload:   `{"type":"Event","value":{"id":"A.1.C.E","fields":[{"name":"a","value":{"type":"Address","value":"0xf919ee77447b7497"}},{"name":"m","value":{"type":"Dictionary","value":[{"key":{"type":"Address","value":"0x1"},"value":{"type":"Array","value":[{"type":"Address","value":"0xF919EE77447B7497"}]}}]}}]}}`,
			wantAddrs: []string{"f919ee77447b7497", "0000000000000001"},
			ok:        true,
		},
		{
			name:    "AddressWordInAString",
			payload: `{"type":"Event","value":{"id":"A.1.C.E","fields":[{"name":"type","value":{"type":"String","value":"Address"}}]}}`,
			ok:      true,
		},
		{name: "NotJSON", payload: "\x00\x01ccf", wantJSON: `"\u0000\u0001ccf"`},
		{name: "Truncated", payload: `{"type":"Event"`, wantJSON: `"{\"type\":\"Event\""`},
		{name: "TwoValues", payload: `{} {}`, wantJSON: `"{} {}"`},
		{name: "Empty", payload: ``, wantJSON: `null`, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, addrs, ok := decodePayload([]byte(tt.payload))
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !json.Valid(got) {
				t.Fatalf("payload %q is not JSON", got)
			}
			if tt.wantJSON != "" && string(got) != tt.wantJSON {
				t.Fatalf("payload\n got %s\nwant %s", got, tt.wantJSON)
			}
			if !slices.Equal(addrs, tt.wantAddrs) {
				t.Fatalf("addresses %v, want %v", addrs, tt.wantAddrs)
			}
		})
	}
}

func TestDecoderRewards(t *testing.T) {
	const node = "a5c7ce2f1f1d6a59b5ac2fc2c07b04b6b3ae2c2e61b7e3f1b34a0d7ff0a0b1c2"
	payload := func(typ string, fields string) []byte {
		return []byte(`{"type":"Event","value":{"id":"` + typ + `","fields":[` + fields + `]}}`)
	}
	nodeField := `{"name":"nodeID","value":{"type":"String","value":"` + strings.ToUpper(node) + `"}}`
	rewardsPaid := "A.8624b52f9ddcd04a.FlowIDTableStaking.RewardsPaid"
	delegator := "A.8624b52f9ddcd04a.FlowIDTableStaking.DelegatorRewardsPaid"
	blockTime := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	var bad []string
	d := newDecoder("flow-main", "0x8624B52F9DDCD04A")
	d.onBadReward = func(typ string, h uint64, err error) { bad = append(bad, err.Error()) }
	d.onBadPayload = func(ev *entities.Event, h uint64) { bad = append(bad, "payload of "+ev.Type) }
	var b store.Batch
	d.addHeight(&b, blockData{height: 42, id: []byte{0xAB, 0xCD}, ts: timestamppb.New(blockTime), events: []*entities.Event{
		{Type: rewardsPaid, TransactionId: []byte{1}, TransactionIndex: 0, EventIndex: 0,
			Payload: payload(rewardsPaid, nodeField+`,{"name":"amount","value":{"type":"UFix64","value":"1234.56789012"}}`)},
		{Type: delegator, TransactionId: []byte{1}, TransactionIndex: 0, EventIndex: 1,
			Payload: payload(delegator, nodeField+`,{"name":"delegatorID","value":{"type":"UInt32","value":"7"}},{"name":"amount","value":{"type":"UFix64","value":"0.00000001"}}`)},
		// A staking contract at another address pays nothing here.
		{Type: "A.0000000000000001.FlowIDTableStaking.RewardsPaid", TransactionId: []byte{1}, TransactionIndex: 0, EventIndex: 2,
			Payload: payload("A.0000000000000001.FlowIDTableStaking.RewardsPaid", nodeField+`,{"name":"amount","value":{"type":"UFix64","value":"5.0"}}`)},
		{Type: rewardsPaid, TransactionId: []byte{1}, TransactionIndex: 1, EventIndex: 0,
			Payload: payload(rewardsPaid, nodeField+`,{"name":"amount","value":{"type":"UFix64","value":"-5.0"}}`)},
		{Type: rewardsPaid, TransactionId: []byte{1}, TransactionIndex: 1, EventIndex: 1, Payload: []byte("ccf\xff")},
	}})

	if len(b.Events) != 5 || len(b.Blocks) != 1 || b.Blocks[0].EventCount != 5 || b.Blocks[0].BlockID != "abcd" {
		t.Fatalf("batch: %d events, blocks %+v", len(b.Events), b.Blocks)
	}
	if len(b.Rewards) != 2 {
		t.Fatalf("got %d rewards, want 2: %+v", len(b.Rewards), b.Rewards)
	}
	nr, dr := b.Rewards[0], b.Rewards[1]
	if nr.Account != node || nr.Kind != KindNodeReward || nr.RawAmount != "123456789012" ||
		nr.ID != "42/0/0" || !nr.HasHeight || nr.Height != 42 || !nr.Time.Equal(blockTime) || nr.Unit != "FLOW" || nr.Decimals != 8 {
		t.Fatalf("node reward: %+v", nr)
	}
	if dr.Account != node || dr.Kind != KindDelegatorReward || dr.RawAmount != "1" || dr.ID != "42/0/1" ||
		!slices.Equal(dr.Aliases, []string{node + "/7"}) || !strings.Contains(string(dr.Details), `"delegator_id":7`) {
		t.Fatalf("delegator reward: %+v details %s", dr, dr.Details)
	}
	if len(bad) != 3 || !strings.Contains(bad[0], "amount") || bad[1] != "payload of "+rewardsPaid {
		t.Fatalf("reported problems: %q", bad)
	}
	if ev := b.Events[4]; string(ev.Payload) != `"ccf\ufffd"` || ev.Contract != "A.8624b52f9ddcd04a.FlowIDTableStaking" || ev.TxID != "01" {
		t.Fatalf("event with a bad payload: %+v", ev)
	}
}

func TestConfigValidate(t *testing.T) {
	base := func() Config { return Config{Name: "flow-main", Endpoint: "127.0.0.1:3569"} }
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // error prefix; empty means valid
	}{
		{"Defaults", func(*Config) {}, ""},
		{"Full", func(c *Config) {
			c.EventTypes = []string{"A.8624b52f9ddcd04a.FlowIDTableStaking.RewardsPaid", "flow.AccountCreated"}
			c.Contracts = []string{"A.1654653399040a61.FlowToken", "flow"}
			c.Addresses = []string{"0x1654653399040a61", "f919ee77447b7497"}
			c.Backfill = BackfillConfig{Workers: 8, MaxRange: 250, RequestsPerSecond: 90, Distance: 10}
		}, ""},
		{"NoName", func(c *Config) { c.Name = "" }, "name: required"},
		{"BadName", func(c *Config) { c.Name = "Flow_Main" }, "name: "},
		{"NoEndpoint", func(c *Config) { c.Endpoint = " " }, "endpoint: required"},
		{"EndpointScheme", func(c *Config) { c.Endpoint = "grpc://x:1" }, "endpoint: "},
		{"BadEventType", func(c *Config) { c.EventTypes = []string{"A.1.C.E", "RewardsPaid"} }, "event_types[1]: "},
		{"EventTypeWith0x", func(c *Config) { c.EventTypes = []string{"A.0x1.C.E"} }, "event_types[0]: "},
		{"BadContract", func(c *Config) { c.Contracts = []string{"A.1.C.E"} }, "contracts[0]: "},
		{"BadAddress", func(c *Config) { c.Addresses = []string{"0xzz"} }, "addresses[0]: "},
		{"LongAddress", func(c *Config) { c.Addresses = []string{"0x00000000000000001"} }, "addresses[0]: "},
		{"BadStaking", func(c *Config) { c.StakingContract = "staking" }, "staking_contract: "},
		{"Workers", func(c *Config) { c.Backfill.Workers = -1 }, "backfill.workers: "},
		{"MaxRange", func(c *Config) { c.Backfill.MaxRange = 251 }, "backfill.max_range: "},
		{"RPS", func(c *Config) { c.Backfill.RequestsPerSecond = -2 }, "backfill.requests_per_second: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mutate(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if _, err := New(c); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %v, want prefix %q", err, tt.want)
			}
			if _, err := New(c); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if c.HeartbeatInterval != 1 || c.StakingContract != "8624b52f9ddcd04a" || c.Backfill.Workers != 4 ||
		c.Backfill.MaxRange != 250 || c.Backfill.RequestsPerSecond != 50 || c.Backfill.Distance != 500 {
		t.Fatalf("defaults: %+v", c)
	}
}

// payloadCorpus holds payloads whose fast and slow decodings must agree:
// the shapes flowsim and Cadence produce, and the corner cases of JSON.
var payloadCorpus = []string{
	`{"type":"Event","value":{"id":"A.1654653399040a61.FlowToken.TokensDeposited","fields":[{"name":"amount","value":{"type":"UFix64","value":"12.50000000"}},{"name":"to","value":{"type":"Optional","value":{"type":"Address","value":"0x01cf0e2f2f715450"}}}]}}` + "\n",
	`{"type":"Event","value":{"id":"A.1.C.E","fields":[{"name":"a","value":{"type":"Address","value":"0xf919ee77447b7497"}},{"name":"m","value":{"type":"Dictionary","value":[{"key":{"type":"Address","value":"0x1"},"value":{"type":"Array","value":[{"type":"Address","value":"0xF919EE77447B7497"}]}}]}}]}}`,
	` { "value" : { "type" : "Address" , "value" : "0x2" } , "type" : "Optional" } `,
	`{"z":{"type":"Address","value":"0x1"},"a":{"type":"Address","value":"0x2"},"m":[{"type":"Address","value":"0x3"}]}`,
	`{"type":"Address","value":"0x1","extra":{"type":"Address","value":"0x2"}}`,
	`{"type":"Address","value":7}`,
	`{"type":"Address"}`,
	`{"type":"Address","value":"not hex"}`,
	`{"type":"Address","value":"0x12345678901234567"}`,
	`{"type":"Addr\u0065ss","value":"0x5"}`,
	`{"type":"Address","value":"0x\u0036"}`,
	`{"typ\u0065":"Address","value":"0x7"}`,
	`{"type":"Address","type":"String","value":"0x8"}`,
	`{"a":{"type":"Address","value":"0x9"},"a":null}`,
	`{"type":"String","value":"quote \" and \\ and \u00e9 and \n"}`,
	`{"type":"String","value":"caf` + "\u00e9" + `"}`,
	"{\"type\":\"String\",\"value\":\"bad \xff utf8\"}",
	"{\"k\xff\":{\"type\":\"Address\",\"value\":\"0x1\"}}",
	`[1,-0,0.5,1e10,-2.5E-3,true,false,null,"",{},[]]`,
	`"just a string"`, `12`, `-`, `01`, `1.`, `1e`, `.5`, `tru`, `nul`, `[1,]`, `{"a":1,}`, `{"a"}`, `{1:2}`,
	`[1 2]`, `{"a":1 "b":2}`, `"\x"`, `"\u12"`, "\"ctl\x01\"", `"unterminated`, `{"a":`, `[`, `{} {}`, `{}x`,
	"", "   \n\t", "\x00\x01ccf", `{"type":"Event"`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
}

func TestDecodePayloadMatchesSlow(t *testing.T) {
	check := func(t *testing.T, p []byte) {
		t.Helper()
		got, gotAddrs, gotOK := decodePayload(p)
		want, wantAddrs, wantOK := decodePayloadSlow(p)
		if gotOK != wantOK || string(got) != string(want) || !slices.Equal(gotAddrs, wantAddrs) {
			t.Fatalf("payload %q:\n got %v %q %q\nwant %v %q %q", p, gotOK, got, gotAddrs, wantOK, want, wantAddrs)
		}
	}
	for i, p := range payloadCorpus {
		t.Run(fmt.Sprint(i), func(t *testing.T) { check(t, []byte(p)) })
	}
	// Every cut and every one-byte change of the corpus, a bounded number
	// of cases.
	t.Run("Mutations", func(t *testing.T) {
		alphabet := []byte(`{}[]",:\ 0x1eE.-+tuAa` + "\xff\x01\n")
		for _, s := range payloadCorpus[:6] {
			p := []byte(s)
			for i := range p {
				check(t, p[:i])
				for _, c := range alphabet {
					q := slices.Clone(p)
					q[i] = c
					check(t, q)
				}
			}
		}
	})
}

func FuzzDecodePayload(f *testing.F) {
	for _, p := range payloadCorpus {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		got, gotAddrs, gotOK := decodePayload(p)
		want, wantAddrs, wantOK := decodePayloadSlow(p)
		if gotOK != wantOK || string(got) != string(want) || !slices.Equal(gotAddrs, wantAddrs) {
			t.Fatalf("payload %q:\n got %v %q %q\nwant %v %q %q", p, gotOK, got, gotAddrs, wantOK, want, wantAddrs)
		}
	})
}

func BenchmarkDecodePayload(b *testing.B) {
	p := []byte(payloadCorpus[0])
	for _, fn := range []struct {
		name string
		f    func([]byte) (json.RawMessage, []string, bool)
	}{{"Scanner", decodePayload}, {"Tree", decodePayloadSlow}} {
		b.Run(fn.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				fn.f(p)
			}
		})
	}
}

// A reward's epoch: epochCounter when the event has it; for the older
// signatures the same block's EpochTotalRewardsPaid's
// epochCounterForRewards; none when neither says. The payout itself is
// kept once per epoch.
func TestDecoderRewardEpochs(t *testing.T) {
	const staking = "A.8624b52f9ddcd04a.FlowIDTableStaking."
	payload := func(typ string, fields ...string) []byte {
		return []byte(`{"type":"Event","value":{"id":"` + staking + typ + `","fields":[` + strings.Join(fields, ",") + `]}}`)
	}
	node := `{"name":"nodeID","value":{"type":"String","value":"ab"}}`
	amount := `{"name":"amount","value":{"type":"UFix64","value":"1.00000000"}}`
	counter := func(name, v string) string {
		return `{"name":"` + name + `","value":{"type":"UInt64","value":"` + v + `"}}`
	}
	ufix := func(name, v string) string {
		return `{"name":"` + name + `","value":{"type":"UFix64","value":"` + v + `"}}`
	}
	total := func(fields ...string) *entities.Event {
		return &entities.Event{Type: staking + "EpochTotalRewardsPaid", TransactionIndex: 0, EventIndex: 9, Payload: payload("EpochTotalRewardsPaid",
			append([]string{ufix("total", "10.0"), ufix("fromFees", "1.5"), ufix("minted", "8.5"), ufix("feesBurned", "0.25")}, fields...)...)}
	}
	paid := func(fields ...string) *entities.Event {
		return &entities.Event{Type: staking + "RewardsPaid", TransactionIndex: 0, EventIndex: 0, Payload: payload("RewardsPaid", fields...)}
	}
	tests := []struct {
		name     string
		events   []*entities.Event
		epoch    uint64
		hasEpoch bool
		totals   int
		rejected int
	}{
		{"Current", []*entities.Event{paid(node, amount, counter("epochCounter", "147"))}, 147, true, 0, 0},
		{"LegacyFromTheBlock", []*entities.Event{paid(node, amount), total(counter("epochCounterForRewards", "88"))}, 88, true, 1, 0},
		{"OldestNamesNone", []*entities.Event{paid(node, amount), total()}, 0, false, 0, 0},
		{"LegacyAlone", []*entities.Event{paid(node, amount)}, 0, false, 0, 0},
		{"BadCounter", []*entities.Event{paid(node, amount, counter("epochCounter", "-1"))}, 0, false, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDecoder("flow-main", "8624b52f9ddcd04a")
			var b store.Batch
			d.addHeight(&b, blockData{height: 7, id: []byte{1}, events: tt.events})
			if len(b.Rejected) != tt.rejected || len(b.EpochTotals) != tt.totals {
				t.Fatalf("rejected %+v, totals %+v", b.Rejected, b.EpochTotals)
			}
			if tt.rejected > 0 {
				return
			}
			if len(b.Rewards) != 1 || b.Rewards[0].HasEpoch != tt.hasEpoch || b.Rewards[0].Epoch != tt.epoch {
				t.Fatalf("rewards %+v, want epoch %d (%v)", b.Rewards, tt.epoch, tt.hasEpoch)
			}
			if tt.totals > 0 {
				e := b.EpochTotals[0]
				if e.Epoch != tt.epoch || e.RawTotal != "1000000000" || e.RawFromFees != "150000000" || e.RawMinted != "850000000" || e.RawBurned != "25000000" || e.Height != 7 {
					t.Fatalf("epoch total %+v", e)
				}
			}
		})
	}
}
