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
	"time"

	"github.com/onflow/flow/protobuf/go/flow/entities"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/evindex/evindex/store"
)

// Reward event names in FlowIDTableStaking.
const (
	rewardsPaidEvent          = "FlowIDTableStaking.RewardsPaid"
	delegatorRewardsPaidEvent = "FlowIDTableStaking.DelegatorRewardsPaid"
)

// decoder turns access node messages into store records.
type decoder struct {
	source          string
	rewardsPaid     string // full event types
	delegatorReward string
	// onBadPayload is called for an event whose payload is not JSON.
	onBadPayload func(ev *entities.Event, height uint64)
	// onBadReward is called for a reward event that cannot be read.
	onBadReward func(typ string, height uint64, err error)
}

func newDecoder(source, stakingContract string) *decoder {
	addr, _ := normalizeAddress(stakingContract)
	prefix := "A." + addr + "."
	return &decoder{
		source:          source,
		rewardsPaid:     prefix + rewardsPaidEvent,
		delegatorReward: prefix + delegatorRewardsPaidEvent,
		onBadPayload:    func(*entities.Event, uint64) {},
		onBadReward:     func(string, uint64, error) {},
	}
}

// blockData is one height as the access node reports it.
type blockData struct {
	height uint64
	id     []byte
	time   time.Time
	events []*entities.Event
}

// addHeight appends a height's block, events and rewards to b.
func (d *decoder) addHeight(b *store.Batch, bd blockData) {
	blockID := hex.EncodeToString(bd.id)
	b.Blocks = append(b.Blocks, store.Block{
		Source:     d.source,
		Height:     bd.height,
		BlockID:    blockID,
		BlockTime:  bd.time,
		EventCount: uint32(len(bd.events)),
	})
	for _, ev := range bd.events {
		payload, addrs, ok := decodePayload(ev.Payload)
		if !ok {
			d.onBadPayload(ev, bd.height)
		}
		txID := hex.EncodeToString(ev.TransactionId)
		b.Events = append(b.Events, store.Event{
			Source:     d.source,
			Height:     bd.height,
			BlockID:    blockID,
			BlockTime:  bd.time,
			TxID:       txID,
			TxIndex:    ev.TransactionIndex,
			EventIndex: ev.EventIndex,
			Type:       ev.Type,
			Contract:   contractOf(ev.Type),
			Addresses:  addrs,
			Payload:    payload,
		})
		if ev.Type == d.rewardsPaid || ev.Type == d.delegatorReward {
			r, err := d.reward(ev, bd, txID)
			if err != nil {
				d.onBadReward(ev.Type, bd.height, err)
				continue
			}
			b.Rewards = append(b.Rewards, r)
		}
	}
}

// reward reads a RewardsPaid or DelegatorRewardsPaid event.
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
		Kind:      store.KindFlowNodeReward,
		ID:        fmt.Sprintf("%d/%d/%d", bd.height, ev.TransactionIndex, ev.EventIndex),
		Height:    bd.height,
		HasHeight: true,
		Time:      bd.time,
		RawAmount: strconv.FormatUint(raw, 10),
		Unit:      "FLOW",
		Decimals:  8,
	}
	details := map[string]any{"tx_id": txID, "event_type": ev.Type}
	if ev.Type == d.delegatorReward {
		text, err := f.str("delegatorID")
		if err != nil {
			return store.Reward{}, err
		}
		id, err := strconv.ParseUint(text, 10, 32)
		if err != nil {
			return store.Reward{}, fmt.Errorf("delegatorID: %q is not a UInt32", text)
		}
		r.Kind = store.KindFlowDelegatorReward
		r.Aliases = []string{node + "/" + strconv.FormatUint(id, 10)}
		details["delegator_id"] = id
	}
	r.Details, _ = json.Marshal(details)
	return r, nil
}

func tsTime(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime().UTC()
}

// decodePayload turns a JSON-CDC payload into compact JSON for the API and
// collects every Address value in it. A payload that is not JSON is kept
// verbatim as a JSON string and reported with ok false.
func decodePayload(p []byte) (payload json.RawMessage, addresses []string, ok bool) {
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

// contractOf returns the contract an event type belongs to: the first three
// parts of "A.<address>.<Contract>.<Event>", or "flow" for protocol events.
func contractOf(typ string) string {
	parts := strings.SplitN(typ, ".", 4)
	switch {
	case len(parts) == 4 && parts[0] == "A":
		return strings.Join(parts[:3], ".")
	case len(parts) == 2 && parts[0] == "flow":
		return "flow"
	}
	return ""
}

// normalizeAddress lowercases a Flow address, drops 0x and left-pads it to
// 16 hex digits; false when it is not one.
func normalizeAddress(a string) (string, bool) {
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

var errUFix64 = errors.New("not a UFix64")

// parseUFix64 reads a Cadence UFix64 ("12.50000000") into 10^-8 units with
// integer arithmetic: digits, an optional point and at most 8 decimals,
// no sign, no exponent, at most the UFix64 maximum.
func parseUFix64(s string) (uint64, error) {
	whole, frac, hasPoint := strings.Cut(s, ".")
	if whole == "" || (hasPoint && frac == "") || len(frac) > 8 {
		return 0, fmt.Errorf("%w: %q", errUFix64, s)
	}
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, fmt.Errorf("%w: %q", errUFix64, s)
			}
		}
	}
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil || w > math.MaxUint64/100_000_000 {
		return 0, fmt.Errorf("%w: %q is out of range", errUFix64, s)
	}
	var f uint64
	if frac != "" {
		f, _ = strconv.ParseUint(frac+strings.Repeat("0", 8-len(frac)), 10, 64)
	}
	raw := w * 100_000_000
	if raw+f < raw {
		return 0, fmt.Errorf("%w: %q is out of range", errUFix64, s)
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
