package spacemesh

import (
	"encoding/json"
	"testing"
	"time"

	smv1 "github.com/spacemeshos/api/release/go/spacemesh/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestEventRecordIdentity(t *testing.T) {
	genesis := time.Date(2023, 7, 14, 8, 0, 0, 0, time.UTC)
	r := &run{net: network{genesis: genesis, layerDuration: 5 * time.Minute, layersPerEpoch: 4032}}
	at := genesis.Add(80640*5*time.Minute + 42*time.Second)
	smesher := make([]byte, 32)
	smesher[31] = 7
	proposal := func(layer uint32) *smv1.Event {
		return &smv1.Event{
			Timestamp: timestamppb.New(at),
			Help:      "Published proposal.",
			Details:   &smv1.Event_Proposal{Proposal: &smv1.EventProposal{Layer: layer, Proposal: []byte{1, 2}, Smesher: smesher}},
		}
	}

	a, err := r.eventRecord(proposal(80640))
	if err != nil {
		t.Fatal(err)
	}
	replay, err := r.eventRecord(proposal(80640))
	if err != nil {
		t.Fatal(err)
	}
	other, err := r.eventRecord(proposal(80641))
	if err != nil {
		t.Fatal(err)
	}
	if a.Height != 80640 || !a.BlockTime.Equal(at) || a.Type != "spacemesh.proposal" {
		t.Fatalf("record %+v", a)
	}
	if a.Height != replay.Height || a.TxIndex != replay.TxIndex || a.EventIndex != replay.EventIndex || string(a.Payload) != string(replay.Payload) {
		t.Fatal("a replayed event got another identity")
	}
	if a.Height == other.Height && a.TxIndex == other.TxIndex && a.EventIndex == other.EventIndex {
		t.Fatal("two different events share an identity")
	}
	if len(a.Addresses) != 1 || a.Addresses[0] != "0000000000000000000000000000000000000000000000000000000000000007" {
		t.Fatalf("addresses %v", a.Addresses)
	}
	var payload map[string]any
	if err := json.Unmarshal(a.Payload, &payload); err != nil {
		t.Fatalf("payload %s: %v", a.Payload, err)
	}
	if _, ok := payload["proposal"]; !ok || payload["help"] != "Published proposal." {
		t.Fatalf("payload %s", a.Payload)
	}

	for _, tc := range []struct {
		name string
		ev   *smv1.Event
		want string
	}{
		{"Beacon", &smv1.Event{Timestamp: timestamppb.New(at), Details: &smv1.Event_Beacon{Beacon: &smv1.EventBeacon{Epoch: 20}}}, "spacemesh.beacon"},
		{"PoetWait", &smv1.Event{Timestamp: timestamppb.New(at), Details: &smv1.Event_PoetWaitProof{PoetWaitProof: &smv1.EventPoetWaitProof{}}}, "spacemesh.poet_wait_proof"},
		{"FailureWithoutDetails", &smv1.Event{Timestamp: timestamppb.New(at), Failure: true}, "spacemesh.failure"},
		{"BeforeGenesis", &smv1.Event{Timestamp: timestamppb.New(genesis.Add(-time.Hour)), Details: &smv1.Event_PostServiceStarted{PostServiceStarted: &smv1.EventPostServiceStarted{}}}, "spacemesh.post_service_started"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := r.eventRecord(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if e.Type != tc.want {
				t.Fatalf("type %q, want %q", e.Type, tc.want)
			}
		})
	}
	if _, err := r.eventRecord(&smv1.Event{}); err == nil {
		t.Fatal("an event without a timestamp was accepted")
	}
}

// TestEventRecordRefusesInvalidTimestamps: an admin event whose timestamp
// protobuf calls invalid ({seconds: 1, nanos: -5}, or past year 9999) was
// stored with whatever AsTime made of it; it is refused, and the stream
// follower quarantines it with its bytes.
func TestEventRecordRefusesInvalidTimestamps(t *testing.T) {
	r := &run{net: network{genesis: time.Date(2023, 7, 14, 8, 0, 0, 0, time.UTC), layerDuration: 5 * time.Minute, layersPerEpoch: 4032}}
	for _, ts := range []*timestamppb.Timestamp{{Seconds: 1, Nanos: -5}, {Seconds: 253402300800}} {
		if _, err := r.eventRecord(&smv1.Event{Timestamp: ts, Details: &smv1.Event_Beacon{Beacon: &smv1.EventBeacon{Epoch: 1}}}); err == nil {
			t.Errorf("timestamp %v accepted", ts)
		}
	}
}
