package flowsim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/onflow/flow/protobuf/go/flow/entities"
)

// Mainnet addresses of the contracts whose events the simulated chain emits.
const (
	DefaultStakingContract = "8624b52f9ddcd04a"
	FlowTokenContract      = "1654653399040a61"
	FlowFeesContract       = "f919ee77447b7497"
	NFTContract            = "1d7e57aa55817448"
)

// Reward kinds as reported by the ground-truth accessors.
const (
	KindNodeReward      = "node"
	KindDelegatorReward = "delegator"
)

// nodeCount and delegatorsPerNode size the fixed staking table.
const (
	nodeCount         = 5
	delegatorsPerNode = 2
	accountCount      = 8
)

// Block is one simulated block with every event it holds, in
// (transaction index, event index) order.
type Block struct {
	ID       []byte
	ParentID []byte
	Height   uint64
	Time     time.Time
	Events   []*entities.Event
}

// Reward is one staking payment the chain made, for ground-truth checks.
type Reward struct {
	Height      uint64
	TxIndex     uint32
	EventIndex  uint32
	Kind        string // KindNodeReward or KindDelegatorReward
	NodeID      string // lowercase hex
	DelegatorID uint32 // set for KindDelegatorReward
	Raw         uint64 // in 10^-8 FLOW
	// Epoch is the epoch the payment rewards: the event's epochCounter, or
	// for the legacy signatures the block's EpochTotalRewardsPaid's
	// epochCounterForRewards.
	Epoch uint64
}

// EpochTotal is one epoch's network-wide payout, as EpochTotalRewardsPaid
// reports it, for ground-truth checks.
type EpochTotal struct {
	Height                          uint64
	Epoch                           uint64
	Total, FromFees, Minted, Burned uint64 // in 10^-8 FLOW
}

// RewardTotal is the count and exact sum (in 10^-8 FLOW) of one node's
// rewards, node and delegator payments together.
type RewardTotal struct {
	Count int
	Raw   uint64
}

// chain derives every block from the seed alone, so two simulators with the
// same seed serve identical blocks at the same heights (whatever range each
// serves: a spork's nodes and the next spork's agree) and tests can
// recompute truth.
type chain struct {
	seed        int64
	root        uint64 // the node's root block holds no events
	genesis     time.Time
	legacyBelow uint64
	step        time.Duration
	backHeights uint64        // heights 1..backHeights are backStep apart
	backStep    time.Duration // (BackHistory, BackHistoryStep)
	rewardEvery uint64
	staking     string
	mask        uint64 // hides the height inside block ids
}

func newChain(cfg Config) *chain {
	h := sha256.Sum256([]byte("flowsim-mask-" + strconv.FormatInt(cfg.Seed, 10)))
	return &chain{
		seed:        cfg.Seed,
		root:        cfg.RootHeight,
		genesis:     cfg.GenesisTime,
		legacyBelow: cfg.LegacyRewardsBelow,
		step:        cfg.BlockTimeStep,
		backHeights: cfg.BackHistory,
		backStep:    cfg.BackHistoryStep,
		rewardEvery: cfg.RewardEvery,
		staking:     cfg.StakingContract,
		mask:        binary.BigEndian.Uint64(h[:8]),
	}
}

// NodeIDs returns the simulated staking table's node ids (lowercase hex).
func NodeIDs() []string {
	ids := make([]string, nodeCount)
	for i := range ids {
		ids[i] = nodeID(i)
	}
	return ids
}

// Accounts returns the addresses (lowercase hex, no 0x) that send and
// receive tokens on the simulated chain.
func Accounts() []string {
	out := make([]string, accountCount)
	for i := range out {
		out[i] = account(i)
	}
	return out
}

func nodeID(i int) string {
	h := sha256.Sum256([]byte("flowsim-node-" + strconv.Itoa(i)))
	return hex.EncodeToString(h[:])
}

func account(i int) string {
	h := sha256.Sum256([]byte("flowsim-account-" + strconv.Itoa(i)))
	return hex.EncodeToString(h[:8])
}

// hash mixes the seed with labelled integers.
func (c *chain) hash(label string, vals ...uint64) [32]byte {
	buf := make([]byte, 0, 8+len(label)+8*len(vals))
	buf = binary.BigEndian.AppendUint64(buf, uint64(c.seed))
	buf = append(buf, label...)
	for _, v := range vals {
		buf = binary.BigEndian.AppendUint64(buf, v)
	}
	return sha256.Sum256(buf)
}

// blockID is 24 hash bytes followed by the masked height, so an id can be
// mapped back to its height without an index.
func (c *chain) blockID(height uint64) []byte {
	h := c.hash("block", height)
	id := make([]byte, 32)
	copy(id, h[:24])
	binary.BigEndian.PutUint64(id[24:], height^c.mask)
	return id
}

// heightOf returns the height of a block id this chain produced.
func (c *chain) heightOf(id []byte) (uint64, bool) {
	if len(id) != 32 {
		return 0, false
	}
	height := binary.BigEndian.Uint64(id[24:]) ^ c.mask
	if string(c.blockID(height)) != string(id) {
		return 0, false
	}
	return height, true
}

// blockTime counts from height 0, not from the node's root, so every
// spork's nodes agree on it. A block's jitter stays below a quarter of the
// steps on both sides of it, so where the back-history's long steps meet
// the live ones the timestamps still increase.
func (c *chain) blockTime(height uint64) time.Time {
	if height == 0 {
		return c.genesis
	}
	h := c.hash("time", height)
	jitter := time.Duration(0)
	if q := int64(min(c.stepTo(height), c.stepTo(height+1)) / 4); q > 0 {
		jitter = time.Duration(binary.BigEndian.Uint64(h[:8]) % uint64(q))
	}
	back := min(height, c.backHeights)
	nominal := time.Duration(back)*c.backStep + time.Duration(height-back)*c.step
	return c.genesis.Add(nominal + jitter).UTC().Truncate(time.Millisecond)
}

// stepTo is the nominal time from the block below height to it.
func (c *chain) stepTo(height uint64) time.Duration {
	if height <= c.backHeights {
		return c.backStep
	}
	return c.step
}

func (c *chain) rng(label string, height uint64) *rand.Rand {
	h := c.hash(label, height)
	return rand.New(rand.NewPCG(binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:16])))
}

// isRewardBlock reports whether the epoch payout happens at height. The
// schedule counts from height 0, so it is the same on every spork's nodes;
// a node's own root block holds no events.
func (c *chain) isRewardBlock(height uint64) bool {
	return height > c.root && c.rewardEvery > 0 && height%c.rewardEvery == 0
}

// epochOf is the counter of the epoch whose rewards the payout at height
// pays: the payouts are numbered from 1.
func (c *chain) epochOf(height uint64) uint64 { return height / c.rewardEvery }

// block builds the block at height. The root block holds no events.
func (c *chain) block(height uint64) Block {
	return c.blockOf(height, nil)
}

// blockOf builds the block at height with only the events want accepts
// (nil: all). Building an event's payload is most of the work, so a range
// call for one type builds only that type's.
func (c *chain) blockOf(height uint64, want func(typ string) bool) Block {
	b := Block{
		ID:     c.blockID(height),
		Height: height,
		Time:   c.blockTime(height),
	}
	if height > 0 {
		b.ParentID = c.blockID(height - 1)
	}
	if height <= c.root {
		return b
	}
	b.Events, _, _ = c.eventsOf(height, want)
	return b
}

// events generates a block's events and the rewards among them.
func (c *chain) events(height uint64) ([]*entities.Event, []Reward) {
	events, rewards, _ := c.eventsOf(height, nil)
	return events, rewards
}

// eventsOf generates a block's events that want accepts (nil: all) and
// all of its rewards, with the epoch payout when the block has one. Every
// random draw happens whether or not its event is kept, so the chain is
// the same for every filter.
func (c *chain) eventsOf(height uint64, want func(typ string) bool) ([]*entities.Event, []Reward, *EpochTotal) {
	r := c.rng("events", height)
	var (
		events  []*entities.Event
		rewards []Reward
		payout  *EpochTotal
		tx      uint32
	)
	add := func(typ string, payload func() []byte, evIndex *uint32) {
		if want == nil || want(typ) {
			events = append(events, &entities.Event{
				Type:             typ,
				TransactionId:    c.txID(height, tx),
				TransactionIndex: tx,
				EventIndex:       *evIndex,
				Payload:          payload(),
			})
		}
		*evIndex++
	}

	if c.isRewardBlock(height) {
		var ev uint32
		var total uint64
		epoch := c.epochOf(height)
		// Below LegacyRewardsBelow the payments have the signatures mainnet
		// had before epochCounter was added: the epoch is only in the
		// block's EpochTotalRewardsPaid.
		legacy := height < c.legacyBelow
		counter := func(fields ...cdcField) []cdcField {
			if legacy {
				return fields
			}
			return append(fields, field("epochCounter", cdcTyped("UInt64", strconv.FormatUint(epoch, 10))))
		}
		for i := 0; i < nodeCount; i++ {
			raw := 100_00000000 + r.Uint64N(1900_00000000)
			total += raw
			rewards = append(rewards, Reward{Height: height, TxIndex: tx, EventIndex: ev, Kind: KindNodeReward, NodeID: nodeID(i), Raw: raw, Epoch: epoch})
			add(c.stakingType("RewardsPaid"), func() []byte {
				return eventPayload(c.stakingType("RewardsPaid"), counter(
					field("nodeID", cdcString(nodeID(i))),
					field("amount", cdcUFix64(raw)),
				)...)
			}, &ev)
			// Only every other node has delegators, as on mainnet many do not.
			if i%2 == 1 {
				continue
			}
			for d := uint32(1); d <= delegatorsPerNode; d++ {
				raw := 1_00000000 + r.Uint64N(99_00000000)
				total += raw
				rewards = append(rewards, Reward{Height: height, TxIndex: tx, EventIndex: ev, Kind: KindDelegatorReward, NodeID: nodeID(i), DelegatorID: d, Raw: raw, Epoch: epoch})
				add(c.stakingType("DelegatorRewardsPaid"), func() []byte {
					return eventPayload(c.stakingType("DelegatorRewardsPaid"), counter(
						field("nodeID", cdcString(nodeID(i))),
						field("delegatorID", cdcTyped("UInt32", strconv.FormatUint(uint64(d), 10))),
						field("amount", cdcUFix64(raw)),
					)...)
				}, &ev)
			}
		}
		et := c.epochTotal(height, total, r.Uint64N(50_00000000))
		payout = &et
		add(c.stakingType("EpochTotalRewardsPaid"), func() []byte {
			return eventPayload(c.stakingType("EpochTotalRewardsPaid"),
				field("total", cdcUFix64(et.Total)),
				field("fromFees", cdcUFix64(et.FromFees)),
				field("minted", cdcUFix64(et.Minted)),
				field("feesBurned", cdcUFix64(et.Burned)),
				field("epochCounterForRewards", cdcTyped("UInt64", strconv.FormatUint(et.Epoch, 10))),
			)
		}, &ev)
		tx++
	}

	// About a quarter of the ordinary blocks carry no transaction at all.
	n := r.IntN(4)
	for t := 0; t < n; t++ {
		var ev uint32
		fee := 1000 + r.Uint64N(99000)
		switch k := r.IntN(10); {
		case k < 6:
			amount := 100000 + r.Uint64N(500_00000000)
			from, to := account(r.IntN(accountCount)), account(r.IntN(accountCount))
			add(FlowTokenType("TokensWithdrawn"), func() []byte {
				return eventPayload(FlowTokenType("TokensWithdrawn"),
					field("amount", cdcUFix64(amount)),
					field("from", cdcOptional(cdcAddress(from))),
				)
			}, &ev)
			add(FlowTokenType("TokensDeposited"), func() []byte {
				return eventPayload(FlowTokenType("TokensDeposited"),
					field("amount", cdcUFix64(amount)),
					field("to", cdcOptional(cdcAddress(to))),
				)
			}, &ev)
		case k < 9:
			typ := "A." + NFTContract + ".NonFungibleToken.Deposited"
			id := r.Uint64N(1 << 40)
			nft, to := account(r.IntN(accountCount)), account(r.IntN(accountCount))
			add(typ, func() []byte {
				return eventPayload(typ,
					field("type", cdcString("A."+nft+".ExampleNFT.NFT")),
					field("id", cdcTyped("UInt64", strconv.FormatUint(id, 10))),
					field("uuid", cdcTyped("UInt64", strconv.FormatUint(id+7, 10))),
					field("to", cdcOptional(cdcAddress(to))),
				)
			}, &ev)
		default:
			// A burn: the tokens leave an account and land nowhere.
			amount := 100000 + r.Uint64N(10_00000000)
			from := account(r.IntN(accountCount))
			add(FlowTokenType("TokensWithdrawn"), func() []byte {
				return eventPayload(FlowTokenType("TokensWithdrawn"),
					field("amount", cdcUFix64(amount)),
					field("from", cdcOptional(cdcAddress(from))),
				)
			}, &ev)
			add(FlowTokenType("TokensDeposited"), func() []byte {
				return eventPayload(FlowTokenType("TokensDeposited"),
					field("amount", cdcUFix64(amount)),
					field("to", cdcOptional(nil)),
				)
			}, &ev)
		}
		feesType := "A." + FlowFeesContract + ".FlowFees.FeesDeducted"
		effort := r.Uint64N(1_00000000)
		add(feesType, func() []byte {
			return eventPayload(feesType,
				field("amount", cdcUFix64(fee)),
				field("inclusionEffort", cdcUFix64(1_00000000)),
				field("executionEffort", cdcUFix64(effort)),
			)
		}, &ev)
		tx++
	}
	return events, rewards, payout
}

// epochTotal splits an epoch's payout into the part the collected fees
// paid and the part minted; a tenth of the fees is burned, as mainnet
// burns a share of them.
func (c *chain) epochTotal(height, total, fees uint64) EpochTotal {
	fees = min(fees, total)
	return EpochTotal{Height: height, Epoch: c.epochOf(height), Total: total, FromFees: fees, Minted: total - fees, Burned: fees / 10}
}

func (c *chain) txID(height uint64, tx uint32) []byte {
	h := c.hash("tx", height, uint64(tx))
	return h[:]
}

func (c *chain) stakingType(name string) string {
	return "A." + c.staking + ".FlowIDTableStaking." + name
}

// FlowTokenType returns the full type of a FlowToken event, e.g.
// FlowTokenType("TokensDeposited").
func FlowTokenType(name string) string {
	return "A." + FlowTokenContract + ".FlowToken." + name
}

// JSON-Cadence (JSON-CDC) values, encoded the way Cadence's encoder does:
// numbers as strings, optionals wrapping their value, composite fields in
// declaration order.
type cdcValue struct {
	Type  string `json:"type"`
	Value any    `json:"value"`
}

type cdcField struct {
	Name  string   `json:"name"`
	Value cdcValue `json:"value"`
}

type cdcComposite struct {
	ID     string     `json:"id"`
	Fields []cdcField `json:"fields"`
}

func field(name string, v cdcValue) cdcField { return cdcField{Name: name, Value: v} }

func cdcTyped(typ, v string) cdcValue { return cdcValue{Type: typ, Value: v} }

func cdcString(s string) cdcValue { return cdcTyped("String", s) }

func cdcAddress(hexAddr string) cdcValue { return cdcTyped("Address", "0x"+hexAddr) }

func cdcUFix64(raw uint64) cdcValue { return cdcTyped("UFix64", FormatUFix64(raw)) }

// cdcOptional wraps v; nil encodes Cadence's nil.
func cdcOptional(v any) cdcValue {
	if v == nil {
		return cdcValue{Type: "Optional", Value: nil}
	}
	return cdcValue{Type: "Optional", Value: v}
}

// eventPayload encodes an event as JSON-CDC bytes. Like Cadence's encoder it
// ends with a newline.
func eventPayload(typ string, fields ...cdcField) []byte {
	b := appendCDC(make([]byte, 0, 256), cdcValue{Type: "Event", Value: cdcComposite{ID: typ, Fields: fields}})
	return append(b, '\n')
}

// appendCDC appends v as encoding/json would marshal it, byte for byte,
// without reflection: range calls build hundreds of blocks, and the
// reflective encoder was most of a call's cost.
func appendCDC(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendJSONString(b, x)
	case cdcValue:
		b = append(b, `{"type":`...)
		b = appendJSONString(b, x.Type)
		b = append(b, `,"value":`...)
		b = appendCDC(b, x.Value)
		return append(b, '}')
	case cdcComposite:
		b = append(b, `{"id":`...)
		b = appendJSONString(b, x.ID)
		b = append(b, `,"fields":`...)
		if x.Fields == nil {
			return append(b, "null}"...)
		}
		b = append(b, '[')
		for i, f := range x.Fields {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendJSONString(b, f.Name)
			b = append(b, `,"value":`...)
			b = appendCDC(b, f.Value)
			b = append(b, '}')
		}
		return append(b, "]}"...)
	}
	m, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("flowsim: encode event: %v", err))
	}
	return append(b, m...)
}

// appendJSONString quotes s as encoding/json does; text that needs no
// escaping (all of the chain's) is copied, anything else goes through it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			m, _ := json.Marshal(s)
			return append(b, m...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// FormatUFix64 renders an amount in 10^-8 units as Cadence prints a UFix64.
func FormatUFix64(raw uint64) string {
	b := strconv.AppendUint(make([]byte, 0, 21), raw/100_000_000, 10)
	frac := raw % 100_000_000
	b = append(b, '.')
	for d := uint64(10_000_000); d > 0; d /= 10 {
		b = append(b, byte('0'+frac/d%10))
	}
	return string(b)
}
