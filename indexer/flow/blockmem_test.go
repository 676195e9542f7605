package flow

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/onflow/flow/protobuf/go/flow/entities"

	"github.com/evindex/evindex/store"
)

// A block of 100,000 events held each payload twice (the message's and
// the record's); a compact payload is now kept as the message's bytes.
func TestDecodePayloadKeepsCompactBytes(t *testing.T) {
	p := []byte(`{"type":"Event","value":{"id":"A.1.C.E","fields":[{"name":"a","value":{"type":"Address","value":"0x0000000000000001"}}]}}`)
	out, addrs, ok := decodePayload(p)
	if !ok || string(out) != string(p) || len(addrs) != 1 {
		t.Fatalf("decodePayload = %s %v %v", out, addrs, ok)
	}
	if unsafe.SliceData(out) != unsafe.SliceData(p) || cap(out) != len(out) {
		t.Fatal("a compact payload was copied (or handed on with room to append into the message)")
	}
	spaced := []byte(`{ "type" : "Event" }`)
	out, _, ok = decodePayload(spaced)
	if !ok || string(out) != `{"type":"Event"}` || unsafe.SliceData(out) == unsafe.SliceData(spaced) {
		t.Fatalf("a payload with spaces: %s (ok %v)", out, ok)
	}
	if again, _, _ := decodePayload([]byte(`{"b":2}`)); string(out) != `{"type":"Event"}` || string(again) != `{"b":2}` {
		t.Fatalf("the scanner's buffer is shared between results: %s, %s", out, again)
	}
}

// A flood of rewards with 300-digit amounts: each rejected record's reason
// quoted the whole amount, and every record had its own copy of it.
func TestRewardFloodRejectedShareReason(t *testing.T) {
	d := newDecoder("flow-test", "0x8624b52f9ddcd04a")
	amount := strings.Repeat("9", 300) + ".0"
	var events []*entities.Event
	for i := range 3 {
		events = append(events, &entities.Event{Type: d.rewardsPaid, TransactionIndex: 1, EventIndex: uint32(i), Payload: []byte(fmt.Sprintf(
			`{"type":"Event","value":{"id":%q,"fields":[{"name":"nodeID","value":{"type":"String","value":"ab"}},{"name":"amount","value":{"type":"UFix64","value":%q}}]}}`,
			d.rewardsPaid, amount))})
	}
	var b store.Batch
	d.addHeight(&b, blockData{height: 7, id: []byte{7}, events: events})
	if len(b.Rejected) != 3 || len(b.Events) != 3 {
		t.Fatalf("%d rejected, %d events", len(b.Rejected), len(b.Events))
	}
	r := b.Rejected[0].Reason
	if len(r) > 200 || !strings.Contains(r, "(302 bytes)") {
		t.Fatalf("reason of %d bytes: %s", len(r), r)
	}
	for _, q := range b.Rejected[1:] {
		if unsafe.StringData(q.Reason) != unsafe.StringData(r) {
			t.Fatal("each rejected record has its own copy of the same reason")
		}
	}
	for _, e := range b.Events[1:] {
		if unsafe.StringData(e.Type) != unsafe.StringData(b.Events[0].Type) {
			t.Fatal("each event has its own copy of the same type")
		}
	}
}
