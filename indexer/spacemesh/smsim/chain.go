package smsim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"

	smv1 "github.com/spacemeshos/api/release/go/spacemesh/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/evindex/evindex/indexer/spacemesh/internal/bech32"
)

// identity is one simulated smesher and the coinbase it is paid to.
type identity struct {
	id       [32]byte
	coinbase string // bech32
	own      bool   // run by the simulated node: its admin events are about it
}

// Reward is one simulated reward as the node reports it.
type Reward struct {
	Layer       uint32
	Smesher     string // hex
	Coinbase    string // bech32
	Total       uint64 // smidge
	LayerReward uint64 // smidge; the fee is Total - LayerReward
}

type reward struct {
	Reward
	smesher [32]byte
}

// layer is one applied layer: its content depends on the seed, its number
// and how often it was reverted.
type layer struct {
	number  uint32
	rev     uint32
	hash    [32]byte
	block   [20]byte
	state   [32]byte
	rewards []reward // ordered by smesher index
}

// digest hashes the seed and parts into 32 deterministic bytes.
func digest(seed int64, label string, parts ...uint64) [32]byte {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(seed))
	h.Write(b[:])
	h.Write([]byte(label))
	for _, p := range parts {
		binary.BigEndian.PutUint64(b[:], p)
		h.Write(b[:])
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// identities builds the fixed cast of smeshers: s0 and s1 are the node's own
// identities and share coinbase A; s2 pays B, s3 pays C, s4 pays D (tracked
// by smesher id only) and s5 pays E (someone else's, never tracked).
func identities(seed int64, hrp string) ([]identity, error) {
	coinbases := make([]string, 5)
	for j := range coinbases {
		d := digest(seed, "coinbase", uint64(j))
		var addr [24]byte // 4 reserved zero bytes, then 20 bytes of key hash
		copy(addr[4:], d[:20])
		s, err := bech32.Encode(hrp, addr[:])
		if err != nil {
			return nil, err
		}
		coinbases[j] = s
	}
	pay := []int{0, 0, 1, 2, 3, 4}
	ids := make([]identity, len(pay))
	for i, j := range pay {
		ids[i] = identity{id: digest(seed, "smesher", uint64(i)), coinbase: coinbases[j], own: i < 2}
	}
	return ids, nil
}

// buildLayer derives layer n at revision rev.
func (s *Sim) buildLayer(n, rev uint32) layer {
	l := layer{number: n, rev: rev, hash: digest(s.cfg.Seed, "layer", uint64(n), uint64(rev))}
	blk := digest(s.cfg.Seed, "block", uint64(n), uint64(rev))
	copy(l.block[:], blk[:20])
	l.state = digest(s.cfg.Seed, "state", uint64(n), uint64(rev))
	if n <= s.cfg.EffectiveGenesis {
		return l
	}
	for i, id := range s.ids {
		h := digest(s.cfg.Seed, "reward", uint64(n), uint64(rev), uint64(i))
		if id.own {
			// The node's own identities earn only where they were
			// eligible and their proposal made it into the layer.
			if !s.eligible(i, n) || !s.proposed(i, n) || !s.included(i, n, rev) {
				continue
			}
		} else if h[0] >= 110 { // about 43% of layers pay each other smesher
			continue
		}
		lr := 1_000_000_000 + binary.BigEndian.Uint64(h[1:9])%49_000_000_000
		var fee uint64
		if h[9]%4 == 0 {
			fee = uint64(binary.BigEndian.Uint32(h[10:14])) % 1_000_000
		}
		l.rewards = append(l.rewards, reward{
			Reward: Reward{
				Layer:       n,
				Smesher:     hex.EncodeToString(id.id[:]),
				Coinbase:    id.coinbase,
				Total:       lr + fee,
				LayerReward: lr,
			},
			smesher: id.id,
		})
	}
	return l
}

// layerTime is when layer n starts.
func (s *Sim) layerTime(n uint32) time.Time {
	return s.genesis.Add(time.Duration(n) * s.layerDuration)
}

// eligible reports whether own identity i may propose in layer n (fixed at
// the epoch's start, so reverts do not change it).
func (s *Sim) eligible(i int, n uint32) bool {
	return s.eligibilities(i, n) > 0
}

// eligibilities is how many proposals own identity i may publish in layer
// n: none in two of three layers, now and then two.
func (s *Sim) eligibilities(i int, n uint32) uint32 {
	if n <= s.cfg.EffectiveGenesis {
		return 0
	}
	h := digest(s.cfg.Seed, "eligible", uint64(i), uint64(n))
	switch {
	case h[0]%3 != 0:
		return 0
	case h[1]%5 == 0:
		return 2
	}
	return 1
}

// proposed reports whether own identity i published its proposal in an
// eligible layer n: one in five it is late and publishes nothing (a miss
// of reason no_proposal). Fixed per layer: a revert does not unpublish.
func (s *Sim) proposed(i int, n uint32) bool {
	h := digest(s.cfg.Seed, "late", uint64(i), uint64(n))
	return h[0]%5 != 0
}

// included reports whether a published proposal of own identity i made it
// into layer n at revision rev: one in four does not (a miss of reason
// not_included), and a revert decides again.
func (s *Sim) included(i int, n, rev uint32) bool {
	h := digest(s.cfg.Seed, "included", uint64(i), uint64(n), uint64(rev))
	return h[0]%4 != 0
}

// layerEvents derives the admin events the node emits when layer n is
// applied: epoch starts bring a beacon, eligibilities, an ATX and a PoET
// wait; eligible layers bring proposals; now and then something fails.
func (s *Sim) layerEvents(n uint32) []*smv1.Event {
	lpe := s.cfg.LayersPerEpoch
	epoch := n / lpe
	base := s.layerTime(n)
	var out []*smv1.Event
	add := func(help string, failure bool, d smv1.IsEventDetails) {
		out = append(out, &smv1.Event{
			Timestamp: timestamppb.New(base.Add(time.Duration(len(out)) * time.Millisecond)),
			Failure:   failure,
			Help:      help,
			Details:   d,
		})
	}
	if n%lpe == 0 {
		beacon := digest(s.cfg.Seed, "beacon", uint64(epoch))
		add("Node computed the beacon for the epoch.", false,
			&smv1.Event_Beacon{Beacon: &smv1.EventBeacon{Epoch: epoch, Beacon: beacon[:4]}})
		for i, id := range s.ids {
			if !id.own {
				continue
			}
			atx := digest(s.cfg.Seed, "atx", uint64(i), uint64(epoch))
			var elig []*smv1.ProposalEligibility
			for l := epoch * lpe; l < (epoch+1)*lpe; l++ {
				if c := s.eligibilities(i, l); c > 0 {
					elig = append(elig, &smv1.ProposalEligibility{Layer: l, Count: c})
				}
			}
			add("Computed eligibilities for the epoch. Rewards will be received after publishing proposals at specified layers.", false,
				&smv1.Event_Eligibilities{Eligibilities: &smv1.EventEligibilities{
					Epoch: epoch, Beacon: beacon[:4], Atx: atx[:], ActiveSetSize: 6,
					Eligibilities: elig, Smesher: id.id[:],
				}})
			add("Published activation for the next epoch.", false,
				&smv1.Event_AtxPublished{AtxPublished: &smv1.EventAtxPubished{
					Current: epoch, Target: epoch + 1, Id: atx[:], Smesher: id.id[:],
					Wait:  durationpb.New(time.Duration(lpe) * s.layerDuration),
					Until: timestamppb.New(s.layerTime((epoch + 1) * lpe)),
				}})
			add("Node is waiting for the PoET round to start.", false,
				&smv1.Event_PoetWaitRound{PoetWaitRound: &smv1.EventPoetWaitRound{
					Current: epoch, Publish: epoch + 1, Smesher: id.id[:],
					Wait:  durationpb.New(time.Duration(lpe/2) * s.layerDuration),
					Until: timestamppb.New(s.layerTime(epoch*lpe + lpe/2)),
				}})
		}
	}
	for i, id := range s.ids {
		if !id.own || !s.eligible(i, n) || !s.proposed(i, n) {
			continue
		}
		p := digest(s.cfg.Seed, "proposal", uint64(i), uint64(n))
		add("Published proposal. Rewards will be received once the layer is applied.", false,
			&smv1.Event_Proposal{Proposal: &smv1.EventProposal{Layer: n, Proposal: p[:20], Smesher: id.id[:]}})
	}
	if n > 0 && n%29 == 0 {
		id := s.ids[int(n/29)%2]
		add("PoST verification failed; see the node's logs.", true,
			&smv1.Event_InitFailed{InitFailed: &smv1.EventInitFailed{Smesher: id.id[:], Error: "proof of space-time is invalid"}})
	}
	return out
}

// nodeStatus is the simulated node's health after layer n was applied:
// peers change every few layers, and now and then the node loses its peers
// or falls out of sync for a while.
func (s *Sim) nodeStatus(n uint32) *smv1.NodeStatus {
	span := uint64(n / 7)
	h := digest(s.cfg.Seed, "peers", span)
	peers := 6 + uint64(h[0]%10)
	if span%13 == 12 {
		peers = 0
	}
	return &smv1.NodeStatus{
		ConnectedPeers: peers,
		IsSynced:       span%11 != 5,
		SyncedLayer:    &smv1.LayerNumber{Number: n},
		TopLayer:       &smv1.LayerNumber{Number: n + 1},
		VerifiedLayer:  &smv1.LayerNumber{Number: n},
	}
}

// clone copies bytes handed to a message: messages are encoded after the
// lock is released, and a revert rewrites layers in place.
func clone(b []byte) []byte { return append([]byte(nil), b...) }
