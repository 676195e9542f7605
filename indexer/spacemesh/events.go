package spacemesh

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"

	smv1 "github.com/spacemeshos/api/release/go/spacemesh/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/evindex/evindex/store"
)

// EventTypePrefix starts the type of every admin event, e.g.
// "spacemesh.eligibilities".
const EventTypePrefix = "spacemesh."

// eventRecord turns an admin event into a store event whose identity comes
// from its content: the height is the layer of its timestamp and the
// tx/event indexes are a hash of the whole event. go-spacemesh replays its
// last ~100 events to every new subscriber, so a replay must rewrite the
// same keys.
func (r *run) eventRecord(e *smv1.Event) (store.Event, error) {
	if e.GetTimestamp() == nil {
		return store.Event{}, fmt.Errorf("admin event without a timestamp")
	}
	if err := e.GetTimestamp().CheckValid(); err != nil {
		return store.Event{}, fmt.Errorf("admin event timestamp: %w", err)
	}
	bin, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
	if err != nil {
		return store.Event{}, fmt.Errorf("encode admin event: %w", err)
	}
	sum := sha256.Sum256(bin)
	payload, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(e)
	if err != nil {
		return store.Event{}, fmt.Errorf("encode admin event: %w", err)
	}
	// protojson varies its whitespace on purpose; store one spelling.
	var compact bytes.Buffer
	if err := json.Compact(&compact, payload); err != nil {
		return store.Event{}, fmt.Errorf("encode admin event: %w", err)
	}
	kind, smesher := eventKind(e)
	ts := e.GetTimestamp().AsTime().UTC()
	ev := store.Event{
		Height:     r.net.layerAt(ts),
		BlockTime:  ts,
		TxIndex:    binary.BigEndian.Uint32(sum[0:4]),
		EventIndex: binary.BigEndian.Uint32(sum[4:8]),
		Type:       EventTypePrefix + kind,
		Payload:    compact.Bytes(),
	}
	if smesher != "" {
		ev.Addresses = []string{smesher}
	}
	return ev, nil
}

// eventKind names an event by its details (the oneof field: "beacon",
// "eligibilities", "atx_published", "poet_wait_round", "init_failed"...)
// and returns the smesher (hex) it is about, if any.
func eventKind(e *smv1.Event) (kind, smesher string) {
	m := e.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("details"))
	if fd == nil {
		if e.GetFailure() {
			return "failure", ""
		}
		return "unknown", ""
	}
	kind = string(fd.Name())
	if fd.Kind() == protoreflect.MessageKind {
		dm := m.Get(fd).Message()
		if sf := dm.Descriptor().Fields().ByName("smesher"); sf != nil && sf.Kind() == protoreflect.BytesKind {
			if b := dm.Get(sf).Bytes(); len(b) > 0 {
				smesher = hex.EncodeToString(b)
			}
		}
	}
	return kind, smesher
}
