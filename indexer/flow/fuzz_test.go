package flow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/entities"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/evindex/evindex/store"
)

// FuzzDecodeEvent feeds arbitrary bytes as an event payload, as a
// broken or hostile access node could send them, to the decoder, once as
// an ordinary event and once as each reward event: whatever the bytes,
// the batch is storable (valid JSON payload, addresses in normal form) and
// a reward, when one is read, has an exact integer amount.
func FuzzDecodeEvent(f *testing.F) {
	seeds := []string{
		`{"type":"Event","value":{"id":"A.8624b52f9ddcd04a.FlowIDTableStaking.RewardsPaid","fields":[{"name":"nodeID","value":{"type":"String","value":"ab"}},{"name":"amount","value":{"type":"UFix64","value":"12.50000000"}}]}}`,
		`{"type":"Event","value":{"id":"x","fields":[{"name":"nodeID","value":{"type":"String","value":"AB"}},{"name":"delegatorID","value":{"type":"UInt32","value":"4294967295"}},{"name":"amount","value":{"type":"Optional","value":{"type":"UFix64","value":"0.1"}}}]}}` + "\n",
		`{"type":"Event","value":{"id":"y","fields":[{"name":"to","value":{"type":"Optional","value":{"type":"Address","value":"0xF8D6E0586B0A20C7"}}},{"name":"from","value":{"type":"Address","value":"0x1"}}]}}`,
		`{"type":"Event","value":{"fields":[{"name":"amount","value":{"type":"UFix64","value":"184467440737.09551615"}}]}}`,
		`{"type":"Optional","value":null}`,
		`{"a":1} {"b":2}`,
		"\x00\xff\xfe{\"type\":\"Event\",\"value\":",
		`"just a string"`, `[]`, `null`, ` `, ``, `{"type":"Address","value":"0xzz"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	d := newDecoder("flow-f", DefaultStakingContract)
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, typ := range []string{"A.1654653399040a61.FlowToken.TokensDeposited", d.rewardsPaid, d.delegatorReward} {
			var b store.Batch
			d.addHeight(&b, blockData{height: 9, id: []byte{1, 2}, ts: timestamppb.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), events: []*entities.Event{{
				Type: typ, TransactionId: []byte{3}, TransactionIndex: 1, EventIndex: 2, Payload: payload,
			}}})
			if len(b.Events) != 1 || len(b.Blocks) != 1 {
				t.Fatalf("%d events, %d blocks from one event", len(b.Events), len(b.Blocks))
			}
			e := b.Events[0]
			if !json.Valid(e.Payload) {
				t.Fatalf("stored payload %q is not JSON", e.Payload)
			}
			for _, a := range e.Addresses {
				if n, ok := normalizeAddress(a); !ok || n != a {
					t.Fatalf("address %q is not in normal form", a)
				}
			}
			if p, _, ok := decodePayload(payload); ok && len(bytes.TrimSpace(payload)) == 0 {
				if string(p) != "null" {
					t.Fatalf("an empty payload was stored as %q", p)
				}
			} else if ok {
				var buf bytes.Buffer
				if json.Compact(&buf, payload) != nil || !bytes.Equal(buf.Bytes(), p) {
					t.Fatalf("a readable payload was not stored as its compact form: %q", p)
				}
			}
			for _, r := range b.Rewards {
				v, ok := new(big.Int).SetString(r.RawAmount, 10)
				if !ok || v.Sign() < 0 || r.Account != strings.ToLower(r.Account) || r.ID != "9/1/2" || r.Decimals != 8 {
					t.Fatalf("reward %+v", r)
				}
			}
			if typ != d.rewardsPaid && typ != d.delegatorReward && len(b.Rewards) != 0 {
				t.Fatalf("a %s event became a reward", typ)
			}
		}
	})
}

// FuzzParseUFix64 checks the UFix64 reader against its own output: what
// it accepts is digits with at most 8 decimals, exactly, and formatting the
// result gives the input back (up to trailing zeros).
func FuzzParseUFix64(f *testing.F) {
	for _, s := range []string{"0.0", "12.50000000", "1", "184467440737.09551615", "184467440737.09551616", "1.123456789", ".5", "5.", "-1.0", "1e8", "00.10", " 1.0", "+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		raw, err := parseUFix64(s)
		if err != nil {
			return
		}
		whole, frac, _ := strings.Cut(s, ".")
		w, _ := strconv.ParseUint(whole, 10, 64)
		want := fmt.Sprintf("%d.%s", w, (frac + "00000000")[:8])
		if got := fmt.Sprintf("%d.%08d", raw/100_000_000, raw%100_000_000); got != want {
			t.Fatalf("%q parsed as %d (%s), want %s", s, raw, got, want)
		}
	})
}
