package flow

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/onflow/flow/protobuf/go/flow/entities"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/evindex/evindex/store"
)

// Reward event names in FlowIDTableStaking.
const (
	rewardsPaidEvent          = "FlowIDTableStaking.RewardsPaid"
	delegatorRewardsPaidEvent = "FlowIDTableStaking.DelegatorRewardsPaid"
	epochTotalEvent           = "FlowIDTableStaking.EpochTotalRewardsPaid"
)

// decoder turns access node messages into store records.
type decoder struct {
	source          string
	rewardsPaid     string // full event types
	delegatorReward string
	epochTotal      string
	// onBadPayload is called for an event whose payload is not JSON.
	onBadPayload func(ev *entities.Event, height uint64)
	// onBadReward is called for a reward event that cannot be read.
	onBadReward func(typ string, height uint64, err error)
	// now is the clock upstream times are judged by.
	now func() time.Time
}

func newDecoder(source, stakingContract string) *decoder {
	addr, _ := normalizeAddress(stakingContract)
	prefix := "A." + addr + "."
	return &decoder{
		source:          source,
		rewardsPaid:     prefix + rewardsPaidEvent,
		delegatorReward: prefix + delegatorRewardsPaidEvent,
		epochTotal:      prefix + epochTotalEvent,
		onBadPayload:    func(*entities.Event, uint64) {},
		onBadReward:     func(string, uint64, error) {},
		now:             time.Now,
	}
}

// blockData is one height as the access node reports it.
type blockData struct {
	height uint64
	id     []byte
	ts     *timestamppb.Timestamp
	time   time.Time // set by addHeight from ts
	events []*entities.Event
}

// addHeight appends a height's block, events and rewards to b. A block
// timestamp that is invalid (protobuf's own rules) or implausible is not
// stored: the block and its events keep an unknown time, and a rejected
// record flags the timestamp. (A year-9999 time used to read back as 1816.)
func (d *decoder) addHeight(b *store.Batch, bd blockData) {
	blockID := hex.EncodeToString(bd.id)
	bd.time = time.Time{}
	if bd.ts != nil {
		err := bd.ts.CheckValid()
		if err == nil {
			bd.time = bd.ts.AsTime().UTC()
			err = store.PlausibleTime(bd.time, d.now())
			if bd.time.IsZero() { // year 1, which would read back as "unknown"
				err = errors.New("year 1 is no block's time")
			}
		}
		if err != nil {
			bd.time = time.Time{}
			b.Reject(store.NewRejected(store.RecordBlock, bd.height, "block time", "block_time", err.Error(),
				[]byte(fmt.Sprintf(`{"seconds":%d,"nanos":%d}`, bd.ts.GetSeconds(), bd.ts.GetNanos()))))
		}
	}
	b.Blocks = append(b.Blocks, store.Block{
		Source:     d.source,
		Height:     bd.height,
		BlockID:    blockID,
		BlockTime:  bd.time,
		EventCount: uint32(len(bd.events)),
	})
	var lastTx []byte
	var txID string
	// A flood of one kind of event repeats one type and one reason: the
	// records share one string of each instead of one per event, the
	// message's own copies go back to the GC with it.
	var typ, reason string
	// One slice growth per height, not a doubling's worth of garbage: a
	// block can hold a hundred thousand events.
	b.Events = slices.Grow(b.Events, len(bd.events))
	blockEpoch, hasBlockEpoch := d.blockEpoch(b, bd)
	for _, ev := range bd.events {
		payload, addrs, ok := decodePayload(ev.Payload)
		if !ok {
			d.onBadPayload(ev, bd.height)
		}
		// A transaction's events come together: one string for them all.
		if lastTx == nil || !bytes.Equal(ev.TransactionId, lastTx) {
			lastTx, txID = ev.TransactionId, hex.EncodeToString(ev.TransactionId)
		}
		if ev.Type != typ {
			typ = ev.Type
		}
		b.Events = append(b.Events, store.Event{
			Source:     d.source,
			Height:     bd.height,
			BlockID:    blockID,
			BlockTime:  bd.time,
			TxID:       txID,
			TxIndex:    ev.TransactionIndex,
			EventIndex: ev.EventIndex,
			Type:       typ,
			Contract:   contractOf(typ),
			Addresses:  addrs,
			Payload:    payload,
		})
		if ev.Type == d.rewardsPaid || ev.Type == d.delegatorReward {
			r, err := d.reward(ev, bd, txID)
			if err == nil {
				err = store.CheckAmount(r.RawAmount)
			}
			if err == nil && !r.HasEpoch && hasBlockEpoch {
				// The signatures before epochCounter: the block's epoch
				// payout says which epoch it pays.
				r.Epoch, r.HasEpoch = blockEpoch, true
			}
			if err != nil {
				// The event is stored (its payload is the reward's raw
				// bytes); the reward it should pay is quarantined, naming
				// the event. Repeating the payload would double what a
				// flood of bad rewards costs.
				d.onBadReward(ev.Type, bd.height, err)
				if r := err.Error() + "; the event is stored"; r != reason {
					reason = r
				}
				// Reject keeps a sample of a flood and counts the rest.
				b.Reject(store.NewRejected(store.RecordReward, bd.height,
					fmt.Sprintf("reward tx %d event %d", ev.TransactionIndex, ev.EventIndex), "", reason, nil))
				continue
			}
			b.Rewards = append(b.Rewards, r)
		}
	}
}

// blockEpoch reads the block's EpochTotalRewardsPaid, if it has one: its
// epochCounterForRewards is the epoch of the block's payments, and the
// event becomes the epoch's network-wide total. One that cannot be read is
// quarantined with its payload.
func (d *decoder) blockEpoch(b *store.Batch, bd blockData) (uint64, bool) {
	for _, ev := range bd.events {
		if ev.Type != d.epochTotal {
			continue
		}
		et, err := d.epochTotalOf(ev, bd)
		if err != nil {
			b.Reject(store.NewRejected(store.RecordEpochTotal, bd.height,
				fmt.Sprintf("epoch total tx %d event %d", ev.TransactionIndex, ev.EventIndex), "", err.Error(), ev.Payload))
			return 0, false
		}
		if !et.HasEpoch {
			return 0, false // the oldest signature names no epoch
		}
		b.EpochTotals = append(b.EpochTotals, et.EpochTotal)
		return et.Epoch, true
	}
	return 0, false
}

// epochTotal is a decoded EpochTotalRewardsPaid.
type epochTotal struct {
	store.EpochTotal
	HasEpoch bool
}

// epochTotalOf reads EpochTotalRewardsPaid(total, fromFees, minted,
// feesBurned, epochCounterForRewards); the oldest contracts emitted it
// without the counter.
func (d *decoder) epochTotalOf(ev *entities.Event, bd blockData) (epochTotal, error) {
	f, err := cdcFields(ev.Payload)
	if err != nil {
		return epochTotal{}, err
	}
	et := epochTotal{EpochTotal: store.EpochTotal{Source: d.source, Height: bd.height, Time: bd.time, Unit: "FLOW", Decimals: 8}}
	for _, a := range []struct {
		field string
		dst   *string
	}{{"total", &et.RawTotal}, {"fromFees", &et.RawFromFees}, {"minted", &et.RawMinted}, {"feesBurned", &et.RawBurned}} {
		text, err := f.str(a.field)
		if err != nil {
			return epochTotal{}, err
		}
		raw, err := parseUFix64(text)
		if err != nil {
			return epochTotal{}, fmt.Errorf("%s: %w", a.field, err)
		}
		*a.dst = strconv.FormatUint(raw, 10)
	}
	if _, ok := f["epochCounterForRewards"]; ok {
		if et.Epoch, err = f.uint64("epochCounterForRewards"); err != nil {
			return epochTotal{}, err
		}
		et.HasEpoch = true
	}
	return et, nil
}

// reward reads a RewardsPaid or DelegatorRewardsPaid event; the current
// signatures end with epochCounter, the older ones lack it.
func (d *decoder) reward(ev *entities.Event, bd blockData, txID string) (store.Reward, error) {
	f, err := cdcFields(ev.Payload)
	if err != nil {
		return store.Reward{}, err
	}
	node, err := f.str("nodeID")
	if err != nil {
		return store.Reward{}, err
	}
	node = strings.ToLower(node)
	amountText, err := f.str("amount")
	if err != nil {
		return store.Reward{}, err
	}
	raw, err := parseUFix64(amountText)
	if err != nil {
		return store.Reward{}, fmt.Errorf("amount: %w", err)
	}
	r := store.Reward{
		Source:    d.source,
		Account:   node,
		Kind:      KindNodeReward,
		ID:        fmt.Sprintf("%d/%d/%d", bd.height, ev.TransactionIndex, ev.EventIndex),
		Height:    bd.height,
		HasHeight: true,
		Time:      bd.time,
		RawAmount: strconv.FormatUint(raw, 10),
		Unit:      "FLOW",
		Decimals:  8,
	}
	if _, ok := f["epochCounter"]; ok {
		if r.Epoch, err = f.uint64("epochCounter"); err != nil {
			return store.Reward{}, err
		}
		r.HasEpoch = true
	}
	details := map[string]any{"tx_id": txID, "event_type": ev.Type}
	if ev.Type == d.delegatorReward {
		text, err := f.str("delegatorID")
		if err != nil {
			return store.Reward{}, err
		}
		id, err := strconv.ParseUint(text, 10, 32)
		if err != nil {
			return store.Reward{}, fmt.Errorf("delegatorID: %s is not a UInt32", quoted(text))
		}
		r.Kind = KindDelegatorReward
		r.Aliases = []string{node + "/" + strconv.FormatUint(id, 10)}
		details["delegator_id"] = id
	}
	r.Details, _ = json.Marshal(details)
	return r, nil
}

// decodePayload turns a JSON-CDC payload into compact JSON for the API and
// collects every Address value in it. A payload that is not JSON is kept
// verbatim as a JSON string and reported with ok false.
//
// It is one pass over the bytes (scanPayload); the few payloads that pass
// cannot settle exactly (escaped keys, duplicate keys, invalid input) go
// through decodePayloadSlow, which defines the result.
func decodePayload(p []byte) (payload json.RawMessage, addresses []string, ok bool) {
	sc := scanners.Get().(*payloadScanner)
	out, addrs, done := sc.scan(p)
	sc.reset()
	scanners.Put(sc)
	if done {
		return out, addrs, true
	}
	return decodePayloadSlow(p)
}

// scanners keeps scanners' key and address stacks between payloads.
var scanners = sync.Pool{New: func() any { return new(payloadScanner) }}

// decodePayloadSlow is decodePayload by decoding into a tree: the
// reference the scanner must agree with.
func decodePayloadSlow(p []byte) (payload json.RawMessage, addresses []string, ok bool) {
	if len(bytes.TrimSpace(p)) == 0 {
		return json.RawMessage("null"), nil, true
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil || dec.More() {
		s, _ := json.Marshal(string(p))
		return s, nil, false
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, p); err != nil {
		s, _ := json.Marshal(string(p))
		return s, nil, false
	}
	seen := map[string]bool{}
	collectAddresses(v, func(a string) {
		if !seen[a] {
			seen[a] = true
			addresses = append(addresses, a)
		}
	})
	return buf.Bytes(), addresses, true
}

// collectAddresses walks a decoded JSON-CDC value and reports every
// {"type":"Address","value":"0x…"} as lowercase hex without 0x. Object keys
// are visited in sorted order so a replay stores the same address list.
func collectAddresses(v any, found func(string)) {
	switch x := v.(type) {
	case map[string]any:
		if x["type"] == "Address" {
			if s, ok := x["value"].(string); ok {
				if a, ok := normalizeAddress(s); ok {
					found(a)
				}
			}
			return
		}
		for _, k := range slices.Sorted(maps.Keys(x)) {
			collectAddresses(x[k], found)
		}
	case []any:
		for _, child := range x {
			collectAddresses(child, found)
		}
	}
}

// maxPayloadDepth is encoding/json's nesting limit; deeper input is not
// JSON to it, and the scanner leaves such input to the slow path.
const maxPayloadDepth = 10000

// payloadScanner validates and compacts a JSON payload and collects its
// addresses in one pass, with the same result as decodePayloadSlow. Where
// a result would depend on decoding a string (an escaped or non-UTF-8 key,
// or such a "type" or "value" string) or on which of two equal keys wins,
// it gives up and the caller takes the slow path.
type payloadScanner struct {
	in    []byte
	pos   int
	out   []byte
	depth int
	// addrs collects addresses; an object's segment is reordered by key
	// when more than one of its members holds some.
	addrs []string
	// keys is a stack of the open objects' member keys (slices of in).
	keys []memberAddrs
}

// memberAddrs is one object member: its key and the span of addrs its
// value added.
type memberAddrs struct {
	key        []byte
	start, end int
}

// errGiveUp ends a scan that the slow path must settle.
var errGiveUp = errors.New("payload needs the slow path")

func (sc *payloadScanner) scan(p []byte) (json.RawMessage, []string, bool) {
	sc.in = p
	sc.skipSpace()
	if sc.pos == len(p) {
		return json.RawMessage("null"), nil, true
	}
	sc.out = slices.Grow(sc.out[:0], len(p))
	if _, err := sc.value(); err != nil {
		return nil, nil, false
	}
	sc.skipSpace()
	if sc.pos != len(p) {
		return nil, nil, false
	}
	// Most payloads are compact already: the record keeps the message's
	// own bytes (clipped, so no append reaches past them) instead of a
	// copy. A block of 100,000 events held each payload twice.
	if bytes.Equal(sc.out, p) {
		return p[:len(p):len(p)], dedupe(sc.addrs), true
	}
	return bytes.Clone(sc.out), dedupe(sc.addrs), true
}

// maxKeptOutput is the largest output buffer a pooled scanner keeps for
// the next payload; a rare huge payload's buffer goes back to the GC.
const maxKeptOutput = 64 << 10

// reset readies a scanner for the next payload; the stacks and a small
// output buffer keep their capacity.
func (sc *payloadScanner) reset() {
	out := sc.out[:0]
	if cap(out) > maxKeptOutput {
		out = nil
	}
	*sc = payloadScanner{addrs: sc.addrs[:0], keys: sc.keys[:0], out: out}
}

// dedupe returns a new list of the distinct addresses in list, in order,
// or nil.
func dedupe(list []string) []string {
	var out []string
	for i, a := range list {
		if !slices.Contains(list[:i], a) {
			out = append(out, a)
		}
	}
	return out
}

func (sc *payloadScanner) skipSpace() {
	for sc.pos < len(sc.in) {
		switch sc.in[sc.pos] {
		case ' ', '\t', '\n', '\r':
			sc.pos++
		default:
			return
		}
	}
}

// value scans one value. For a string it returns the raw text between the
// quotes when that is exactly the decoded string, else nil.
func (sc *payloadScanner) value() (plain []byte, err error) {
	if sc.pos >= len(sc.in) {
		return nil, errGiveUp
	}
	switch c := sc.in[sc.pos]; {
	case c == '{':
		return nil, sc.object()
	case c == '[':
		return nil, sc.array()
	case c == '"':
		return sc.str()
	case c == '-' || c >= '0' && c <= '9':
		return nil, sc.number()
	case c == 't':
		return nil, sc.literal("true")
	case c == 'f':
		return nil, sc.literal("false")
	case c == 'n':
		return nil, sc.literal("null")
	}
	return nil, errGiveUp
}

func (sc *payloadScanner) literal(word string) error {
	if !bytes.HasPrefix(sc.in[sc.pos:], []byte(word)) {
		return errGiveUp
	}
	sc.out = append(sc.out, word...)
	sc.pos += len(word)
	return nil
}

func (sc *payloadScanner) number() error {
	in, i := sc.in, sc.pos
	digits := func() int {
		n := 0
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if in[i] == '-' {
		i++
	}
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case digits() == 0:
		return errGiveUp
	}
	if i < len(in) && in[i] == '.' {
		i++
		if digits() == 0 {
			return errGiveUp
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if digits() == 0 {
			return errGiveUp
		}
	}
	sc.out = append(sc.out, in[sc.pos:i]...)
	sc.pos = i
	return nil
}

// str scans a string and copies it verbatim. plain is its content when it
// has no escapes and is valid UTF-8 (so the text is the decoded string).
func (sc *payloadScanner) str() (plain []byte, err error) {
	in := sc.in
	i := sc.pos + 1
	simple := true
	for {
		if i >= len(in) {
			return nil, errGiveUp
		}
		c := in[i]
		switch {
		case c == '"':
			raw := in[sc.pos+1 : i]
			sc.out = append(sc.out, in[sc.pos:i+1]...)
			sc.pos = i + 1
			if simple || utf8.Valid(raw) && !bytes.ContainsRune(raw, '\\') {
				return raw, nil
			}
			return nil, nil
		case c == '\\':
			simple = false
			if i+1 >= len(in) {
				return nil, errGiveUp
			}
			switch in[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(in) {
					return nil, errGiveUp
				}
				for _, h := range in[i+2 : i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return nil, errGiveUp
					}
				}
				i += 6
			default:
				return nil, errGiveUp
			}
		case c < 0x20:
			return nil, errGiveUp
		case c >= 0x80:
			simple = false
			i++
		default:
			i++
		}
	}
}

func (sc *payloadScanner) array() error {
	if sc.depth++; sc.depth > maxPayloadDepth {
		return errGiveUp
	}
	sc.out = append(sc.out, '[')
	sc.pos++
	sc.skipSpace()
	if sc.pos < len(sc.in) && sc.in[sc.pos] == ']' {
		sc.out = append(sc.out, ']')
		sc.pos++
		sc.depth--
		return nil
	}
	for {
		sc.skipSpace()
		if _, err := sc.value(); err != nil {
			return err
		}
		sc.skipSpace()
		if sc.pos >= len(sc.in) {
			return errGiveUp
		}
		switch sc.in[sc.pos] {
		case ',':
			sc.out = append(sc.out, ',')
			sc.pos++
		case ']':
			sc.out = append(sc.out, ']')
			sc.pos++
			sc.depth--
			return nil
		default:
			return errGiveUp
		}
	}
}

// object scans an object. Its addresses are {"type":"Address","value":…}'s
// own, or else its members' in key order (as decodePayloadSlow visits them).
func (sc *payloadScanner) object() error {
	if sc.depth++; sc.depth > maxPayloadDepth {
		return errGiveUp
	}
	sc.out = append(sc.out, '{')
	sc.pos++
	first := len(sc.keys)
	defer func() { sc.keys = sc.keys[:first] }()
	segment := len(sc.addrs)
	var (
		typ, val       []byte
		hasTyp, hasVal bool
	)
	sc.skipSpace()
	if sc.pos < len(sc.in) && sc.in[sc.pos] == '}' {
		sc.out = append(sc.out, '}')
		sc.pos++
		sc.depth--
		return nil
	}
	for {
		sc.skipSpace()
		if sc.pos >= len(sc.in) || sc.in[sc.pos] != '"' {
			return errGiveUp
		}
		key, err := sc.str()
		if err != nil || key == nil {
			return errGiveUp // an escaped key: the slow path decodes it
		}
		for _, m := range sc.keys[first:] {
			if bytes.Equal(m.key, key) {
				return errGiveUp // which of two equal keys wins is the slow path's call
			}
		}
		sc.skipSpace()
		if sc.pos >= len(sc.in) || sc.in[sc.pos] != ':' {
			return errGiveUp
		}
		sc.out = append(sc.out, ':')
		sc.pos++
		sc.skipSpace()
		start := len(sc.addrs)
		isStr := sc.pos < len(sc.in) && sc.in[sc.pos] == '"'
		plain, err := sc.value()
		if err != nil {
			return err
		}
		switch string(key) {
		case "type":
			if isStr && plain == nil {
				return errGiveUp
			}
			typ, hasTyp = plain, isStr
		case "value":
			val, hasVal = plain, isStr
		}
		sc.keys = append(sc.keys, memberAddrs{key: key, start: start, end: len(sc.addrs)})
		sc.skipSpace()
		if sc.pos >= len(sc.in) {
			return errGiveUp
		}
		switch sc.in[sc.pos] {
		case ',':
			sc.out = append(sc.out, ',')
			sc.pos++
			continue
		case '}':
			sc.out = append(sc.out, '}')
			sc.pos++
			sc.depth--
		default:
			return errGiveUp
		}
		break
	}
	if hasTyp && string(typ) == "Address" {
		sc.addrs = sc.addrs[:segment]
		if hasVal && val == nil {
			return errGiveUp // an escaped address: the slow path decodes it
		}
		if hasVal {
			if a, ok := normalizeAddress(string(val)); ok {
				sc.addrs = append(sc.addrs, a)
			}
		}
		return nil
	}
	sc.sortSegment(first, segment)
	return nil
}

// sortSegment puts an object's addresses in its members' key order when
// more than one member added some.
func (sc *payloadScanner) sortSegment(first, segment int) {
	members := sc.keys[first:]
	holders := 0
	for _, m := range members {
		if m.end > m.start {
			holders++
		}
	}
	if holders < 2 {
		return
	}
	sorted := slices.Clone(members)
	slices.SortFunc(sorted, func(a, b memberAddrs) int { return bytes.Compare(a.key, b.key) })
	var out []string
	for _, m := range sorted {
		out = append(out, sc.addrs[m.start:m.end]...)
	}
	sc.addrs = append(sc.addrs[:segment], out...)
}

// contractOf returns the contract an event type belongs to: the first three
// parts of "A.<address>.<Contract>.<Event>", or "flow" for protocol events.
func contractOf(typ string) string {
	if rest, ok := strings.CutPrefix(typ, "A."); ok {
		// The first three of four or more dot-separated parts.
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			return ""
		}
		j := strings.IndexByte(rest[i+1:], '.')
		if j < 0 {
			return ""
		}
		return typ[:len("A.")+i+1+j]
	}
	if rest, ok := strings.CutPrefix(typ, "flow."); ok && !strings.Contains(rest, ".") {
		return "flow"
	}
	return ""
}

// normalizeAddress lowercases a Flow address, drops 0x and left-pads it to
// 16 hex digits; false when it is not one.
func normalizeAddress(a string) (string, bool) {
	if len(a) == 18 && a[:2] == "0x" && isLowerHex(a[2:]) {
		return a[2:], true // the usual form: no copy
	}
	a = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(a)), "0x")
	if a == "" || len(a) > 16 {
		return "", false
	}
	for _, r := range a {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return "", false
		}
	}
	return strings.Repeat("0", 16-len(a)) + a, true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

var errUFix64 = errors.New("not a UFix64")

// maxQuoted bounds how much of an upstream value an error quotes. The
// error becomes a rejected record's reason, one per record: a block of
// 100,000 rewards with 300-digit amounts repeated each amount in memory
// and on disk (the stored event keeps the whole value).
const maxQuoted = 64

// quoted is s for an error message: quoted, cut to maxQuoted bytes with
// its full length said when longer.
func quoted(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:maxQuoted], len(s))
}

// parseUFix64 reads a Cadence UFix64 ("12.50000000") into 10^-8 units with
// integer arithmetic: digits, an optional point and at most 8 decimals,
// no sign, no exponent, at most the UFix64 maximum.
func parseUFix64(s string) (uint64, error) {
	whole, frac, hasPoint := strings.Cut(s, ".")
	if whole == "" || (hasPoint && frac == "") || len(frac) > 8 {
		return 0, fmt.Errorf("%w: %s", errUFix64, quoted(s))
	}
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, fmt.Errorf("%w: %s", errUFix64, quoted(s))
			}
		}
	}
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil || w > math.MaxUint64/100_000_000 {
		return 0, fmt.Errorf("%w: %s is out of range", errUFix64, quoted(s))
	}
	var f uint64
	if frac != "" {
		f, _ = strconv.ParseUint(frac+strings.Repeat("0", 8-len(frac)), 10, 64)
	}
	raw := w * 100_000_000
	if raw+f < raw {
		return 0, fmt.Errorf("%w: %s is out of range", errUFix64, quoted(s))
	}
	return raw + f, nil
}

// cdcFieldSet is the fields of a JSON-CDC event by name.
type cdcFieldSet map[string]cdcValue

type cdcValue struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

func cdcFields(payload []byte) (cdcFieldSet, error) {
	var ev struct {
		Type  string `json:"type"`
		Value struct {
			ID     string `json:"id"`
			Fields []struct {
				Name  string   `json:"name"`
				Value cdcValue `json:"value"`
			} `json:"fields"`
		} `json:"value"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if ev.Type != "Event" {
		return nil, fmt.Errorf("payload: a %q value, not an Event", ev.Type)
	}
	out := cdcFieldSet{}
	for _, f := range ev.Value.Fields {
		out[f.Name] = f.Value
	}
	return out, nil
}

// str returns a field's value as text, unwrapping an Optional; Cadence's
// JSON encodes numbers as strings too.
// uint64 reads a UInt64 field.
func (f cdcFieldSet) uint64(name string) (uint64, error) {
	text, err := f.str(name)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(text, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("field %s: %s is not a UInt64", name, quoted(text))
	}
	return v, nil
}

func (f cdcFieldSet) str(name string) (string, error) {
	v, ok := f[name]
	if !ok {
		return "", fmt.Errorf("field %s: missing", name)
	}
	for v.Type == "Optional" {
		var inner cdcValue
		if err := json.Unmarshal(v.Value, &inner); err != nil || inner.Type == "" {
			return "", fmt.Errorf("field %s: empty optional", name)
		}
		v = inner
	}
	var s string
	if err := json.Unmarshal(v.Value, &s); err != nil {
		return "", fmt.Errorf("field %s: a %s value is not text", name, v.Type)
	}
	return s, nil
}
