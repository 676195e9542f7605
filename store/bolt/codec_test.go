package bolt

import (
	"github.com/evindex/evindex/store"

	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRewardValueRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	tests := map[string]store.Reward{
		"FlowNode": {Source: "flow", Account: "node1", Kind: "flow_node_reward", ID: "5/0/0", Height: 5, HasHeight: true,
			Time: t0, RawAmount: "1234500000", Unit: "FLOW", Decimals: 8, Details: json.RawMessage(`{"tx_id":"ab"}`)},
		"HeightAndPeriod": {Source: "s", Account: "a", Kind: "k", ID: "x/y", Height: 1 << 40, HasHeight: true, Time: t0,
			PeriodStart: t0.Add(-time.Hour), PeriodEnd: t0, RawAmount: "0", Unit: "U", Decimals: -2, Aliases: []string{"b", "c"}},
		"HugeAmount": {Source: "pre", Account: "key", Kind: "presearch_period", ID: "w", Time: t0,
			RawAmount: "340282366920938463463374607431768211456", Unit: "PRE", Decimals: 18},
		"LeadingZero": {Source: "s", Account: "a", Kind: "k", ID: "i", Time: t0, RawAmount: "007", Unit: "U"},
		"MaxUint64":   {Source: "s", Account: "a", Kind: "k", ID: "i", Time: t0, RawAmount: "18446744073709551615", Unit: "U"},
		"Negative":    {Source: "s", Account: "a", Kind: "k", ID: "i", Time: t0, RawAmount: "-5", Unit: "U"},
		"LongID":      {Source: "s", Account: "a", Kind: "k", ID: strings.Repeat("\x00z", 40), Time: t0, RawAmount: "1", Unit: "U"},
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			v, err := encodeReward(&r)
			if err != nil {
				t.Fatal(err)
			}
			var got store.Reward
			if err := decodeReward(rewardKey(&r), v, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, r) {
				t.Fatalf("got  %+v\nwant %+v", got, r)
			}
		})
	}
}

// legacyCodec is the codec of dictionary 1, as a new file holds it.
func legacyCodec(tb testing.TB) *payloadCodec {
	tb.Helper()
	s, err := Open(tb.TempDir(), Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	pc, ok := s.codecs.lookup(legacyDictionary)
	if !ok {
		tb.Fatal("a new file holds no dictionary 1")
	}
	return pc
}

func TestPayloadPacking(t *testing.T) {
	typ := "A.1654653399040a61.FlowToken.TokensDeposited"
	for _, pc := range []*payloadCodec{legacyCodec(t), noFragments} {
		for _, p := range []string{
			`{"type":"Event","value":{"id":"A.1654653399040a61.FlowToken.TokensDeposited","fields":[{"name":"amount","value":{"type":"UFix64","value":"1.87456326"}},{"name":"to","value":{"type":"Optional","value":{"type":"Address","value":"0xcb46ce589ee8f4f8"}}}]}}`,
			"", "{}", "a\x00b\x01\x1f\xff\xc0", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			"abcdefa", "abcdefab", typ + typ, `"\u00e9\n"`,
		} {
			packed := pc.pack(nil, []byte(p), typ)
			back, err := pc.unpack(packed, typ)
			if err != nil || string(back) != p {
				t.Fatalf("dictionary %d: %q packs to %q and back to %q, %v", pc.id, p, packed, back, err)
			}
		}
	}
	p := `{"type":"Event","value":{"id":"A.1654653399040a61.FlowToken.TokensDeposited","fields":[{"name":"amount","value":{"type":"UFix64","value":"1.87456326"}},{"name":"to","value":{"type":"Optional","value":{"type":"Address","value":"0xcb46ce589ee8f4f8"}}}]}}`
	if n := len(legacyCodec(t).pack(nil, []byte(p), typ)); n > len(p)/4 {
		t.Errorf("a deposit packs to %d of %d bytes", n, len(p))
	}
}

func FuzzPayloadPacking(f *testing.F) {
	f.Add([]byte(`{"type":"Event","value":{"id":"A.1.C.E","fields":[]}}`), "A.1.C.E")
	f.Add([]byte("\x00\x1f\xc5abcdef0123"), "")
	pc := legacyCodec(f)
	f.Fuzz(func(t *testing.T, p []byte, typ string) {
		back, err := pc.unpack(pc.pack(nil, p, typ), typ)
		if err != nil || string(back) != string(p) {
			t.Fatalf("%q came back as %q, %v", p, back, err)
		}
		pc.unpack(p, typ) // arbitrary bytes: an error at worst
	})
}
