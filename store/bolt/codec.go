package bolt

import (
	"github.com/evindex/evindex/store"

	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Events and blocks are the bulk of the file, so their values use a compact
// binary layout (the identity is in the key and not repeated). The first
// byte is a format version so the layout can evolve through a migration.
const codecV1 = 1

var errShortValue = errors.New("truncated value")

type enc struct{ b []byte }

func (e *enc) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *enc) bytes(p []byte) {
	e.b = binary.AppendUvarint(e.b, uint64(len(p)))
	e.b = append(e.b, p...)
}
func (e *enc) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) time(t time.Time) {
	if t.IsZero() {
		e.b = binary.AppendVarint(e.b, 0)
		return
	}
	e.b = binary.AppendVarint(e.b, t.UnixNano())
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShortValue
		return 0
	}
	d.b = d.b[n:]
	return v
}
func (d *dec) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = errShortValue
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}
func (d *dec) str() string { return string(d.bytes()) }
func (d *dec) time() time.Time {
	if d.err != nil {
		return time.Time{}
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShortValue
		return time.Time{}
	}
	d.b = d.b[n:]
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

// Version 2 of the event value packs what version 1 spelled out:
//
//	codecV2 flags
//	[payload dictionary id]          when evPayloadDict
//	[block id (hexStr), block time]  unless evBlockJoined
//	tx id (hexStr), type
//	contract: its length when evContractInType, else the text
//	address count, addresses (hexStr each)
//	payload: the rest of the value, packed when evPayloadPacked
//
// A packed payload of a value without evPayloadDict was packed with
// dictionary 1: values of earlier files name no dictionary, and the file
// holds theirs under that id. Version 1 values (codecV1, every field
// spelled out) are still read.
const codecV2 = 2

// Event value flags.
const (
	// evBlockJoined: the block id and time are the block record's at the
	// event's height; the store keeps that true when a block changes.
	evBlockJoined = 1 << iota
	// evContractInType: the contract is the first n bytes of the type.
	evContractInType
	// evPayloadPacked: the payload is packed (see payloadCodec).
	evPayloadPacked
	// evPayloadDict: the id of the payload's dictionary follows the flags.
	evPayloadDict
)

// legacyDictionary is the dictionary of packed values that name none.
const legacyDictionary = 1

// hexStr writes a string of lowercase hex digits as its bytes, anything
// else as text; the low bit of the length says which.
func (e *enc) hexStr(s string) {
	if s != "" && len(s)%2 == 0 && isLowerHex(s) {
		e.uvarint(uint64(len(s)/2)<<1 | 1)
		e.b, _ = hex.AppendDecode(e.b, []byte(s))
		return
	}
	e.uvarint(uint64(len(s)) << 1)
	e.b = append(e.b, s...)
}

func (d *dec) hexStr() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	isHex, n := n&1 == 1, n>>1
	if uint64(len(d.b)) < n {
		d.err = errShortValue
		return ""
	}
	p := d.b[:n]
	d.b = d.b[n:]
	if isHex {
		return hex.EncodeToString(p)
	}
	return string(p)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// contractInType reports whether the contract is a proper prefix of the
// type, as sources that name an event after its contract write them
// ("Token" of "Token.Deposited"); such events need no
// by_contract entry, their by_type entries find them.
func contractInType(typ, contract string) bool {
	return contract != "" && len(typ) > len(contract) && typ[:len(contract)] == contract
}

// encodeEvent encodes e as a version 2 value, its payload packed with pc;
// joined says the block record at e's height has e's block id and time.
func encodeEvent(e *store.Event, joined bool, pc *payloadCodec) []byte {
	return encodeEventInto(make([]byte, 0, 64+len(e.Payload)), e, joined, pc)
}

// encodeEventInto is encodeEvent in buf's space (from buf[:0]), for a
// writer that copies the value out at its exact size: bbolt keeps every
// value it is given until the transaction ends, and a packed payload
// left most of a payload-sized buffer unused.
func encodeEventInto(buf []byte, e *store.Event, joined bool, pc *payloadCodec) []byte {
	x := enc{b: slices.Grow(buf[:0], 64+len(e.Payload))}
	var flags byte
	if joined {
		flags |= evBlockJoined
	}
	inType := contractInType(e.Type, e.Contract)
	if inType {
		flags |= evContractInType
	}
	x.b = append(x.b, codecV2, flags)
	if pc.id != legacyDictionary {
		x.uvarint(pc.id)
	}
	if !joined {
		x.hexStr(e.BlockID)
		x.time(e.BlockTime)
	}
	x.hexStr(e.TxID)
	x.str(e.Type)
	if inType {
		x.uvarint(uint64(len(e.Contract)))
	} else {
		x.str(e.Contract)
	}
	x.uvarint(uint64(len(e.Addresses)))
	for _, a := range e.Addresses {
		x.hexStr(a)
	}
	at := len(x.b)
	x.b = pc.pack(x.b, e.Payload, e.Type)
	if len(x.b)-at < len(e.Payload) {
		x.b[1] |= evPayloadPacked
		if pc.id != legacyDictionary {
			x.b[1] |= evPayloadDict
		}
		return x.b
	}
	x.b = append(x.b[:at], e.Payload...)
	if pc.id != legacyDictionary {
		// The id is only needed by a packed payload: drop it.
		n := uvarintLen(pc.id)
		x.b = append(x.b[:2], x.b[2+n:]...)
	}
	return x.b
}

func uvarintLen(v uint64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], v)
}

// codecLookup returns the payload codec of a dictionary id the file holds.
type codecLookup func(id uint64) (*payloadCodec, bool)

// blockLookup returns the id and time of a source's block record at a
// height, for events stored with evBlockJoined.
type blockLookup func(source string, height uint64) (id string, t time.Time, ok bool)

// decodeEvent fills e from a key and value; it copies everything, so the
// result outlives the transaction.
func decodeEvent(k, v []byte, e *store.Event, blocks blockLookup, codecs codecLookup) error {
	src, h, tx, ev, ok := parseEventKey(k)
	if !ok || len(v) == 0 {
		return store.ErrCorrupt
	}
	*e = store.Event{Source: src, Height: h, TxIndex: tx, EventIndex: ev}
	switch v[0] {
	case codecV1:
		return decodeEventV1(v[1:], e)
	case codecV2:
	default:
		return store.ErrCorrupt
	}
	if len(v) < 2 {
		return store.ErrCorrupt
	}
	flags := v[1]
	d := dec{b: v[2:]}
	dict := uint64(legacyDictionary)
	if flags&evPayloadDict != 0 {
		dict = d.uvarint()
	}
	if flags&evBlockJoined != 0 {
		id, t, ok := blocks(src, h)
		if !ok {
			return fmt.Errorf("%w: no block record at height %d for an event that refers to it", store.ErrCorrupt, h)
		}
		e.BlockID, e.BlockTime = id, t
	} else {
		e.BlockID = d.hexStr()
		e.BlockTime = d.time()
	}
	e.TxID = d.hexStr()
	e.Type = d.str()
	if flags&evContractInType != 0 {
		if n := d.uvarint(); n <= uint64(len(e.Type)) {
			e.Contract = e.Type[:n]
		} else if d.err == nil {
			d.err = store.ErrCorrupt
		}
	} else {
		e.Contract = d.str()
	}
	if n := d.uvarint(); n > 0 && n < uint64(len(v)) {
		e.Addresses = make([]string, n)
		for i := range e.Addresses {
			e.Addresses[i] = d.hexStr()
		}
	}
	if d.err != nil {
		return d.err
	}
	switch {
	case flags&evPayloadPacked != 0:
		pc, ok := codecs(dict)
		if !ok {
			return fmt.Errorf("%w: the payload names dictionary %d, which the file does not hold", store.ErrCorrupt, dict)
		}
		p, err := pc.unpack(d.b, e.Type)
		if err != nil {
			return err
		}
		e.Payload = p
	case len(d.b) > 0:
		e.Payload = append(json.RawMessage(nil), d.b...)
	}
	return nil
}

func decodeEventV1(v []byte, e *store.Event) error {
	d := dec{b: v}
	e.BlockID = d.str()
	e.BlockTime = d.time()
	e.TxID = d.str()
	e.Type = d.str()
	e.Contract = d.str()
	if n := d.uvarint(); n > 0 && n < uint64(len(v)) {
		e.Addresses = make([]string, n)
		for i := range e.Addresses {
			e.Addresses[i] = d.str()
		}
	}
	if p := d.bytes(); len(p) > 0 {
		e.Payload = append(json.RawMessage(nil), p...)
	}
	return d.err
}

// eventJoined reports whether a stored event value takes its block id
// and time from the block record.
func eventJoined(v []byte) bool {
	return len(v) >= 2 && v[0] == codecV2 && v[1]&evBlockJoined != 0
}

// Block values: version 2 writes the id with hexStr.
func encodeBlock(b *store.Block) []byte {
	x := enc{b: make([]byte, 0, 64)}
	x.b = append(x.b, codecV2)
	x.hexStr(b.BlockID)
	x.time(b.BlockTime)
	x.uvarint(uint64(b.EventCount))
	x.str(b.Status)
	return x.b
}

func decodeBlock(k, v []byte, b *store.Block) error {
	src, h, ok := parseBlockKey(k)
	if !ok || len(v) == 0 || (v[0] != codecV1 && v[0] != codecV2) {
		return store.ErrCorrupt
	}
	d := dec{b: v[1:]}
	*b = store.Block{Source: src, Height: h}
	if v[0] == codecV1 {
		b.BlockID = d.str()
	} else {
		b.BlockID = d.hexStr()
	}
	b.BlockTime = d.time()
	b.EventCount = uint32(d.uvarint())
	b.Status = d.str()
	return d.err
}

// Rewards were JSON (version 1, a value starting with '{'); the summary
// spent most of its time decoding it, so version 2 is binary and leaves
// out what the key holds (source, account, id):
//
//	codecV2 flags kind time [height] [period start, period end]
//	amount (uvarint when rwAmountUint, else text) unit decimals(varint)
//	alias count, aliases, details (the rest)
//
// Both versions are read.
type rewardValue struct {
	Kind        string          `json:"k"`
	ID          string          `json:"id"`
	Height      *uint64         `json:"h,omitempty"`
	PeriodStart *time.Time      `json:"ps,omitempty"`
	PeriodEnd   *time.Time      `json:"pe,omitempty"`
	Time        time.Time       `json:"t"`
	RawAmount   string          `json:"a"`
	Unit        string          `json:"u"`
	Decimals    int             `json:"d"`
	Aliases     []string        `json:"al,omitempty"`
	Details     json.RawMessage `json:"x,omitempty"`
	Source      string          `json:"s"`
	Account     string          `json:"acc"`
}

// Reward value flags.
const (
	rwHeight     = 1 << iota // a height follows
	rwPeriod                 // period start and end follow
	rwAmountUint             // the amount is a uvarint, not text
	rwEpoch                  // an epoch follows the height
)

func encodeReward(r *store.Reward) ([]byte, error) {
	x := enc{b: make([]byte, 0, 48+len(r.Details))}
	var flags byte
	if r.HasHeight {
		flags |= rwHeight
	}
	if r.HasEpoch {
		flags |= rwEpoch
	}
	if !r.PeriodStart.IsZero() {
		flags |= rwPeriod
	}
	amount, amountUint := canonicalUint(r.RawAmount)
	if amountUint {
		flags |= rwAmountUint
	}
	x.b = append(x.b, codecV2, flags)
	x.str(r.Kind)
	x.time(r.Time)
	if r.HasHeight {
		x.uvarint(r.Height)
	}
	if r.HasEpoch {
		x.uvarint(r.Epoch)
	}
	if !r.PeriodStart.IsZero() {
		x.time(r.PeriodStart)
		x.time(r.PeriodEnd)
	}
	if amountUint {
		x.uvarint(amount)
	} else {
		x.str(r.RawAmount)
	}
	x.str(r.Unit)
	x.b = binary.AppendVarint(x.b, int64(r.Decimals))
	x.uvarint(uint64(len(r.Aliases)))
	for _, a := range r.Aliases {
		x.str(a)
	}
	x.b = append(x.b, r.Details...)
	return x.b, nil
}

// canonicalUint parses a decimal integer that fits 64 bits and is written
// the way strconv writes it, so it prints back the same.
func canonicalUint(s string) (uint64, bool) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// parseRewardKey splits a reward key into source, account and id.
func parseRewardKey(k []byte) (source, account, id string, ok bool) {
	i := bytes.IndexByte(k, sep)
	if i < 0 {
		return "", "", "", false
	}
	j := bytes.IndexByte(k[i+1:], sep)
	if j < 0 || len(k) < i+1+j+1+8 {
		return "", "", "", false
	}
	return string(k[:i]), string(k[i+1 : i+1+j]), string(k[i+1+j+1+8:]), true
}

// rewardHead is the part of a reward value a summary needs.
type rewardHead struct {
	flags     byte
	kind      []byte // points into the value
	time      time.Time
	height    uint64
	epoch     uint64 // when flags has rwEpoch
	amount    uint64 // when flags has rwAmountUint
	rawAmount []byte // otherwise; points into the value
	unit      []byte // points into the value
	decimals  int
	aliases   int // count; they follow in rest
	rest      dec
}

// decodeRewardHead reads a version 2 value up to its aliases without
// copying; the slices point into v.
func decodeRewardHead(v []byte, h *rewardHead) error {
	if len(v) < 2 || v[0] != codecV2 {
		return store.ErrCorrupt
	}
	h.flags = v[1]
	d := dec{b: v[2:]}
	h.kind = d.bytes()
	h.time = d.time()
	if h.flags&rwHeight != 0 {
		h.height = d.uvarint()
	}
	if h.flags&rwEpoch != 0 {
		h.epoch = d.uvarint()
	}
	if h.flags&rwPeriod != 0 {
		d.time()
		d.time()
	}
	if h.flags&rwAmountUint != 0 {
		h.amount = d.uvarint()
	} else {
		h.rawAmount = d.bytes()
	}
	h.unit = d.bytes()
	if d.err == nil {
		dv, n := binary.Varint(d.b)
		if n <= 0 {
			return store.ErrCorrupt
		}
		h.decimals = int(dv)
		d.b = d.b[n:]
	}
	h.aliases = int(d.uvarint())
	if d.err != nil || h.aliases > len(d.b) {
		return store.ErrCorrupt
	}
	h.rest = d
	return nil
}

// decodeReward fills r from a reward key and value of either version.
func decodeReward(k, v []byte, r *store.Reward) error {
	if len(v) > 0 && v[0] == '{' {
		return decodeRewardV1(v, r)
	}
	src, acct, id, ok := parseRewardKey(k)
	if !ok {
		return store.ErrCorrupt
	}
	var h rewardHead
	if err := decodeRewardHead(v, &h); err != nil {
		return err
	}
	d := dec{b: v[2:]}
	*r = store.Reward{Source: src, Account: acct, ID: id, Kind: d.str(), Time: h.time, Unit: string(h.unit), Decimals: h.decimals}
	r.Height, r.HasHeight = h.height, h.flags&rwHeight != 0
	r.Epoch, r.HasEpoch = h.epoch, h.flags&rwEpoch != 0
	if h.flags&rwPeriod != 0 {
		d.time() // Time, and Height and Epoch when set, are in h
		if r.HasHeight {
			d.uvarint()
		}
		if r.HasEpoch {
			d.uvarint()
		}
		r.PeriodStart, r.PeriodEnd = d.time(), d.time()
	}
	if h.flags&rwAmountUint != 0 {
		r.RawAmount = strconv.FormatUint(h.amount, 10)
	} else {
		r.RawAmount = string(h.rawAmount)
	}
	if h.aliases > 0 {
		r.Aliases = make([]string, h.aliases)
		for i := range r.Aliases {
			r.Aliases[i] = h.rest.str()
		}
	}
	if h.rest.err != nil {
		return store.ErrCorrupt
	}
	if len(h.rest.b) > 0 {
		r.Details = append(json.RawMessage(nil), h.rest.b...)
	}
	return nil
}

func decodeRewardV1(v []byte, r *store.Reward) error {
	var x rewardValue
	if err := json.Unmarshal(v, &x); err != nil {
		return store.ErrCorrupt
	}
	*r = store.Reward{Source: x.Source, Account: x.Account, Kind: x.Kind, ID: x.ID, Time: x.Time,
		RawAmount: x.RawAmount, Unit: x.Unit, Decimals: x.Decimals, Aliases: x.Aliases, Details: x.Details}
	if x.Height != nil {
		r.Height, r.HasHeight = *x.Height, true
	}
	if x.PeriodStart != nil {
		r.PeriodStart = *x.PeriodStart
	}
	if x.PeriodEnd != nil {
		r.PeriodEnd = *x.PeriodEnd
	}
	return nil
}

type nodeValue struct {
	Source    string          `json:"s"`
	Node      string          `json:"n"`
	Time      time.Time       `json:"t"`
	Connected *bool           `json:"c,omitempty"`
	Synced    *bool           `json:"y,omitempty"`
	Details   json.RawMessage `json:"x,omitempty"`
}

func encodeNode(n *store.NodeStatus) ([]byte, error) {
	return json.Marshal(nodeValue{n.Source, n.Node, n.Time.UTC(), n.Connected, n.Synced, n.Details})
}

func decodeNode(v []byte, n *store.NodeStatus) error {
	var x nodeValue
	if err := json.Unmarshal(v, &x); err != nil {
		return store.ErrCorrupt
	}
	*n = store.NodeStatus{Source: x.Source, Node: x.Node, Time: x.Time, Connected: x.Connected, Synced: x.Synced, Details: x.Details}
	return nil
}
