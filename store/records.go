package store

import (
	"encoding/json"
	"time"
)

// Event is one indexed upstream event. Its identity is (Source, Height,
// TxIndex, EventIndex): writing the same identity twice replaces the record,
// so replayed ranges never duplicate.
type Event struct {
	Source     string
	Height     uint64
	BlockID    string // lowercase hex, no 0x
	BlockTime  time.Time
	TxID       string // lowercase hex, no 0x; may be empty for non-chain events
	TxIndex    uint32
	EventIndex uint32
	Type       string
	Contract   string   // indexed; the source's grouping of types (a smart contract, a module)
	Addresses  []string // indexed; lowercase hex without 0x (or the source's native form)
	Payload    json.RawMessage
}

// Block is one indexed block, or whatever unit of the upstream's chain a
// height names. Its identity is (Source, Height).
type Block struct {
	Source     string
	Height     uint64
	BlockID    string
	BlockTime  time.Time
	EventCount uint32
	Status     string // optional, in the source's own words
}

// Reward is one payment to an account. Its identity is (Source, Account,
// Time, ID); ID is chosen by the source and must be deterministic (for
// example "height/tx/event" of the event that paid it).
type Reward struct {
	Source  string
	Account string
	Kind    string // named by the source, served as it is
	ID      string
	// Height is meaningful only when HasHeight is set (rewards for a
	// period of time may have no height).
	Height    uint64
	HasHeight bool
	// Epoch is meaningful only when HasEpoch is set: the epoch the
	// upstream names in the reward itself. A
	// summary by epoch groups such rewards by it; others by their
	// source's Epochs.
	Epoch       uint64
	HasEpoch    bool
	Time        time.Time
	PeriodStart time.Time // zero when not a period reward
	PeriodEnd   time.Time
	// RawAmount is the amount in base units as a decimal integer string;
	// it may exceed 64 bits (tokens with 18 decimals do).
	RawAmount string
	Unit      string // the token's symbol
	Decimals  int    // base units per whole unit = 10^Decimals
	// Aliases are further account ids that find this reward (for example
	// the id of the node that earned it next to the account paid).
	Aliases []string
	Details json.RawMessage
}

// EpochTotal is a network's whole reward payout of one epoch, as its
// upstream announces it, kept so a reader can set an account's rewards of
// the epoch against it. Its identity is (Source, Epoch): a replay rewrites
// it. Amounts are decimal integers in base units, like Reward.RawAmount.
type EpochTotal struct {
	Source string
	Epoch  uint64
	Height uint64 // where it was paid
	Time   time.Time
	// RawTotal is what the epoch paid; RawFromFees the part the collected
	// fees paid, RawMinted the part minted; RawBurned the fees burned.
	RawTotal, RawFromFees, RawMinted, RawBurned string
	Unit                                        string
	Decimals                                    int
}

// NodeStatus is one snapshot of a monitored node's health.
type NodeStatus struct {
	Source    string
	Node      string
	Time      time.Time
	Connected *bool // nil when the upstream does not say
	Synced    *bool
	Details   json.RawMessage
}

// Checkpoint names the last position whose data is completely in the store.
type Checkpoint struct {
	Height    uint64    `json:"height"`
	BlockID   string    `json:"block_id,omitempty"`
	Time      time.Time `json:"time,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitempty"`
}

// Range is an inclusive range of heights.
type Range struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// Epochs describes how a source's heights group into epochs, for
// group_by=epoch summaries. Height h starts at Genesis + h*BlockDuration and
// belongs to epoch h / BlocksPerEpoch.
type Epochs struct {
	Genesis        time.Time     `json:"genesis"`
	BlockDuration  time.Duration `json:"block_duration"`
	BlocksPerEpoch uint64        `json:"blocks_per_epoch"`
	// Named says the source's rewards name their epoch (Reward.Epoch), so
	// a summary by epoch needs no schedule (for networks whose epochs are
	// not a fixed number of blocks).
	Named bool `json:"named,omitempty"`
}

// SourceInfo is what the store keeps about one source besides its records.
type SourceInfo struct {
	Name       string
	Kind       string
	Checkpoint *Checkpoint
	Epochs     *Epochs
	Meta       json.RawMessage // source facts, e.g. a network's HRP
	Events     uint64          // records currently stored
	Blocks     uint64
	Rewards    uint64
	// Rejected counts the quarantined records, those kept in full and
	// those a counting record stands for.
	Rejected uint64
}

// Rejected is an upstream record that failed validation, quarantined
// instead of stored or dropped: it commits in the same transaction as the
// checkpoint that passes it, so a bad record neither stops its source nor
// disappears. Its identity is (Source, Height, Key): a replayed range
// rewrites the same rejected records.
type Rejected struct {
	Source string
	// Height is the record's position: its block height, or for records
	// without one (a node's status) the Unix second of its time.
	Height uint64
	Key    string // the record within the height, e.g. "tx 3 event 1"
	Kind   string // RecordEvent, RecordBlock, RecordReward or RecordNode
	Field  string // the field that failed, when one did
	Reason string
	// Raw is the upstream bytes that failed: the whole record when the
	// source has it in one piece (a node's JSON from an API), else the
	// failing field's value; at most MaxRejectedRaw bytes of RawSize.
	Raw     []byte
	RawSize int
	Time    time.Time // when it was rejected; Apply sets it when zero
	// Counted, when not zero, makes this a counting record: it stands for
	// that many rejected records of its height, kind, field and reason
	// that were not kept in full (MaxRejectedSample), from the one named
	// by Key to the one named by LastKey. It keeps no raw bytes.
	Counted uint64
	LastKey string
}

// Batch is one unit of work for Apply: records plus the checkpoint and
// coverage they complete. Everything in a batch commits together or not at all.
type Batch struct {
	Source string
	Kind   string // the source's kind, recorded with the source on first write

	Events  []Event
	Blocks  []Block
	Rewards []Reward
	// ReplaceRewards, when set, declares that Rewards holds ALL of this
	// source's rewards with heights in the range: stored ones in the range
	// that the batch does not rewrite are deleted (a chain revert).
	ReplaceRewards *Range
	Nodes          []NodeStatus
	// EpochTotals are network-wide payouts, one per (source, epoch).
	EpochTotals []EpochTotal
	// Rejected are records quarantined by the source or by Quarantine,
	// under the quarantine's bound (Reject).
	Rejected []Rejected
	// tally indexes Rejected by group for Reject.
	tally *rejectedTally
	// Eligibilities and Proposals are what the node announced about its
	// accounts' rights to rewards and its use of them; missed rewards are
	// derived from them (MissedRewards).
	Eligibilities []Eligibility
	Proposals     []Proposal
	// ProposalGaps are height ranges in which announcements may have been
	// lost; a miss there has no proven reason.
	ProposalGaps []Range
	// Alerts are alert episodes the batch's data fired or resolved, and
	// Deliveries the outbox rows of those transitions, one per webhook:
	// they commit with the data, fenced by the same lease.
	Alerts     []Alert
	Deliveries []Delivery

	// Checkpoint, when set, becomes the source's checkpoint.
	Checkpoint *Checkpoint
	// Coverage, when set, is merged into the source's proven ranges.
	Coverage *Range
	// State holds source-private values (rate-limiter history, dedupe marks)
	// that must change atomically with the records; a nil value deletes.
	State map[string][]byte
	// Epochs and Meta, when set, replace the stored ones.
	Epochs *Epochs
	Meta   json.RawMessage

	// Lease, when set, fences the write on a store shared by several
	// processes: Apply checks inside its transaction that Lease.Owner
	// still holds the source's lease at Lease.Generation, and otherwise
	// fails with ErrLeaseLost and writes nothing. A store with one writer
	// (the bbolt file, locked by its process) has no leases and ignores it.
	Lease *Lease

	// PayloadDictionary, when set, becomes the source's: its events'
	// payloads from this batch on are packed with it by a backend that
	// packs them. A source hands it once per run, not with every batch.
	PayloadDictionary *PayloadDictionary
}

// Len is the number of records in the batch, used for batch sizing.
func (b *Batch) Len() int {
	return len(b.Events) + len(b.Blocks) + len(b.Rewards) + len(b.Nodes) + len(b.Rejected) + len(b.Eligibilities) + len(b.Proposals)
}
