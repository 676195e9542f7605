package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds on what a record may hold. Every value a record carries came from
// an upstream that may be buggy or hostile, and every backend stores and
// indexes it, so the bounds are part of the contract: a record outside
// them is refused by Apply and quarantined by Quarantine.
const (
	// MaxTextLen bounds a record's text fields (types, contracts, ids,
	// accounts, addresses, node keys), in bytes. Text fields are indexed,
	// and bbolt refuses keys over 32 KiB: a 64 KB event type used to stop
	// its source for good.
	MaxTextLen = 1024
	// MaxAddresses bounds the indexed addresses of one event.
	MaxAddresses = 256
	// MaxJSONLen bounds an event payload, a reward's or a node's details.
	MaxJSONLen = 1 << 20
	// MaxJSONDepth bounds the nesting of payloads and details. Python's
	// json module, a common reader of our exports, fails on documents
	// nested about a thousand deep; real payloads nest a few dozen.
	MaxJSONDepth = 300
	// MaxAmountDigits bounds the raw amount of an ingested reward: what
	// DECIMAL(38,..) and HUGEINT, the README's analytics recipes, hold
	// exactly. It is a plausibility bound (Quarantine), not a storage
	// one: files written before it may hold longer amounts.
	MaxAmountDigits = 38
	// MaxClockSkew is how far past the ingesting clock an upstream time
	// may lie before Quarantine calls it implausible.
	MaxClockSkew = 24 * time.Hour
	// MaxRejectedRaw bounds the raw bytes kept of a rejected record.
	MaxRejectedRaw = 64 << 10
)

// MinTime and MaxTime bound every stored time. Times are kept as
// nanoseconds since 1970 in one int64, which cannot represent anything
// outside them exactly: a year-9999 block time read back as 1816.
// Times before 1970 sort as 1970 in time-ordered keys.
var (
	MinTime = time.Unix(0, 0).UTC()
	MaxTime = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
	// PlausibleSince is the earliest upstream time Quarantine accepts: no
	// chain or network evindex reads is older (the oldest mainnet among
	// its sources began in 2020).
	PlausibleSince = time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
)

// FieldError says which field of a record is invalid and holds its value.
// It wraps ErrInvalid.
type FieldError struct {
	Field string // e.g. "type", "raw_amount", "payload"
	Value []byte // the value as the record held it
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap makes FieldError match ErrInvalid and the cause.
func (e *FieldError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

func fieldErr(field string, value []byte, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Value: value, Err: fmt.Errorf(format, args...)}
}

// checkText checks a text field: required unless optional, at most
// MaxTextLen bytes of valid UTF-8 without NUL (the key separator).
func checkText(field, s string, optional bool) *FieldError {
	switch {
	case s == "" && optional:
		return nil
	case s == "":
		return fieldErr(field, nil, "empty")
	case len(s) > MaxTextLen:
		return fieldErr(field, []byte(s), "%d bytes, longer than %d", len(s), MaxTextLen)
	case strings.IndexByte(s, 0) >= 0:
		return fieldErr(field, []byte(s), "contains a NUL byte")
	case !utf8.ValidString(s):
		return fieldErr(field, []byte(s), "not valid UTF-8")
	}
	return nil
}

// CheckText reports whether s can be a record's text field (an account,
// a node key, a type): non-empty, at most MaxTextLen bytes of valid UTF-8
// without NUL.
func CheckText(s string) error {
	if err := checkText("text", s, false); err != nil {
		return err.Err
	}
	return nil
}

// checkTime accepts the zero time (unknown) and times a round trip keeps.
func checkTime(field string, t time.Time) *FieldError {
	if t.IsZero() || !t.Before(MinTime) && t.Before(MaxTime) {
		return nil
	}
	return fieldErr(field, []byte(t.UTC().Format(time.RFC3339Nano)), "outside %d..%d", MinTime.Year(), MaxTime.Year()-1)
}

// checkJSON checks a payload or details document: valid UTF-8, valid JSON,
// at most MaxJSONLen bytes and MaxJSONDepth levels. Empty means none.
func checkJSON(field string, p []byte) *FieldError {
	switch {
	case len(p) == 0:
		return nil
	case len(p) > MaxJSONLen:
		return fieldErr(field, p, "%d bytes, longer than %d", len(p), MaxJSONLen)
	case !utf8.Valid(p):
		// encoding/json accepts invalid UTF-8 inside strings, and clients
		// then get bytes they cannot decode.
		return fieldErr(field, p, "not valid UTF-8")
	}
	switch valid, depth := scanJSON(p); {
	case !valid:
		return fieldErr(field, p, "not valid JSON")
	case depth > MaxJSONDepth:
		return fieldErr(field, p, "nested deeper than %d", MaxJSONDepth)
	}
	return nil
}

// jsonDepth is the nesting depth of a valid JSON document.
func jsonDepth(p []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			if depth++; depth > deepest {
				deepest = depth
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// CheckAmount reports whether s is a raw amount every reader holds
// exactly: a non-negative decimal integer without sign or leading zeros,
// of at most MaxAmountDigits digits.
func CheckAmount(s string) error {
	if err := checkAmountSyntax(s); err != nil {
		return err
	}
	if len(s) > MaxAmountDigits {
		return fmt.Errorf("%d digits, more than %d", len(s), MaxAmountDigits)
	}
	return nil
}

// checkAmountSyntax is what Apply requires of a raw amount: a decimal
// integer without sign or leading zeros.
func checkAmountSyntax(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return fmt.Errorf("%q is not a non-negative integer", s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return fmt.Errorf("%q has a leading zero", s)
	}
	return nil
}

// CheckEvent reports the first field of e that no backend may store.
func CheckEvent(e *Event) *FieldError {
	if err := checkText("type", e.Type, false); err != nil {
		return err
	}
	for _, f := range []struct {
		name, v string
	}{{"tx_id", e.TxID}, {"block_id", e.BlockID}, {"contract", e.Contract}} {
		if err := checkText(f.name, f.v, true); err != nil {
			return err
		}
	}
	if len(e.Addresses) > MaxAddresses {
		return fieldErr("addresses", nil, "%d addresses, more than %d", len(e.Addresses), MaxAddresses)
	}
	for _, a := range e.Addresses {
		if err := checkText("addresses", a, true); err != nil {
			return err
		}
	}
	if err := checkTime("block_time", e.BlockTime); err != nil {
		return err
	}
	return checkJSON("payload", e.Payload)
}

// CheckBlock reports the first field of b that no backend may store.
func CheckBlock(b *Block) *FieldError {
	if err := checkText("block_id", b.BlockID, true); err != nil {
		return err
	}
	if err := checkText("status", b.Status, true); err != nil {
		return err
	}
	return checkTime("block_time", b.BlockTime)
}

// CheckReward reports the first field of r that no backend may store.
func CheckReward(r *Reward) *FieldError {
	for _, f := range []struct {
		name, v  string
		optional bool
	}{{"account", r.Account, false}, {"id", r.ID, false}, {"kind", r.Kind, true}, {"unit", r.Unit, true}} {
		if err := checkText(f.name, f.v, f.optional); err != nil {
			return err
		}
	}
	if err := checkAmountSyntax(r.RawAmount); err != nil {
		return &FieldError{Field: "raw_amount", Value: []byte(r.RawAmount), Err: err}
	}
	if r.Decimals < 0 || r.Decimals > 64 {
		return fieldErr("decimals", []byte(strconv.Itoa(r.Decimals)), "outside 0..64")
	}
	for _, t := range []struct {
		name string
		v    time.Time
	}{{"time", r.Time}, {"period_start", r.PeriodStart}, {"period_end", r.PeriodEnd}} {
		if err := checkTime(t.name, t.v); err != nil {
			return err
		}
	}
	if len(r.Aliases) > MaxAddresses {
		return fieldErr("aliases", nil, "%d aliases, more than %d", len(r.Aliases), MaxAddresses)
	}
	for _, a := range r.Aliases {
		if err := checkText("aliases", a, false); err != nil {
			return err
		}
	}
	return checkJSON("details", r.Details)
}

// CheckNode reports the first field of n that no backend may store.
func CheckNode(n *NodeStatus) *FieldError {
	if err := checkText("node", n.Node, false); err != nil {
		return err
	}
	if err := checkTime("time", n.Time); err != nil {
		return err
	}
	return checkJSON("details", n.Details)
}

// validName checks a name that keys are built from: indexes end it with
// a NUL byte, so it must hold none.
func validName(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty name", ErrInvalid)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: %q contains a NUL byte", ErrInvalid, s)
	}
	return nil
}

// CheckEpochTotal checks a network payout the way Apply does: amounts
// every reader holds exactly, a time of this world, a unit as text.
func CheckEpochTotal(e *EpochTotal) *FieldError {
	for _, a := range []struct{ field, v string }{{"raw_total", e.RawTotal}, {"raw_from_fees", e.RawFromFees}, {"raw_minted", e.RawMinted}, {"raw_burned", e.RawBurned}} {
		if err := CheckAmount(a.v); err != nil {
			return fieldErr(a.field, []byte(a.v), "%v", err)
		}
	}
	if err := checkText("unit", e.Unit, false); err != nil {
		return err
	}
	return checkTime("time", e.Time)
}

// ValidateBatch checks a batch the way every backend's Apply does before
// writing anything: records of the batch's source only (an empty Source
// takes the batch's), each passing CheckEvent, CheckBlock, CheckReward or
// CheckNode, well-formed rejected records, coverage and meta. It returns
// ErrInvalid, wrapped and naming the record and field.
func ValidateBatch(b *Batch) error {
	if err := validName(b.Source); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	for i := range b.Events {
		e := &b.Events[i]
		if e.Source == "" {
			e.Source = b.Source
		}
		if e.Source != b.Source {
			return fmt.Errorf("%w: events[%d]: source %q in a batch of %q", ErrInvalid, i, e.Source, b.Source)
		}
		if err := CheckEvent(e); err != nil {
			return fmt.Errorf("events[%d].%w", i, err)
		}
	}
	for i := range b.Blocks {
		if b.Blocks[i].Source == "" {
			b.Blocks[i].Source = b.Source
		}
		if b.Blocks[i].Source != b.Source {
			return fmt.Errorf("%w: blocks[%d]: source %q in a batch of %q", ErrInvalid, i, b.Blocks[i].Source, b.Source)
		}
		if err := CheckBlock(&b.Blocks[i]); err != nil {
			return fmt.Errorf("blocks[%d].%w", i, err)
		}
	}
	for i := range b.Rewards {
		r := &b.Rewards[i]
		if r.Source == "" {
			r.Source = b.Source
		}
		if r.Source != b.Source {
			return fmt.Errorf("%w: rewards[%d]: source %q in a batch of %q", ErrInvalid, i, r.Source, b.Source)
		}
		if err := CheckReward(r); err != nil {
			return fmt.Errorf("rewards[%d].%w", i, err)
		}
	}
	for i := range b.EpochTotals {
		e := &b.EpochTotals[i]
		if e.Source == "" {
			e.Source = b.Source
		}
		if e.Source != b.Source {
			return fmt.Errorf("%w: epoch_totals[%d]: source %q in a batch of %q", ErrInvalid, i, e.Source, b.Source)
		}
		if err := CheckEpochTotal(e); err != nil {
			return fmt.Errorf("epoch_totals[%d].%w", i, err)
		}
	}
	for i := range b.Nodes {
		n := &b.Nodes[i]
		if n.Source == "" {
			n.Source = b.Source
		}
		if n.Source != b.Source {
			return fmt.Errorf("%w: nodes[%d]: source %q in a batch of %q", ErrInvalid, i, n.Source, b.Source)
		}
		if err := CheckNode(n); err != nil {
			return fmt.Errorf("nodes[%d].%w", i, err)
		}
	}
	for i := range b.Rejected {
		r := &b.Rejected[i]
		if r.Source == "" {
			r.Source = b.Source
		}
		if r.Source != b.Source {
			return fmt.Errorf("%w: rejected[%d]: source %q in a batch of %q", ErrInvalid, i, r.Source, b.Source)
		}
		if err := checkRejected(r); err != nil {
			return fmt.Errorf("rejected[%d].%w", i, err)
		}
	}
	for i := range b.Eligibilities {
		e := &b.Eligibilities[i]
		if e.Source == "" {
			e.Source = b.Source
		}
		if e.Source != b.Source {
			return fmt.Errorf("%w: eligibilities[%d]: source %q in a batch of %q", ErrInvalid, i, e.Source, b.Source)
		}
		if err := CheckEligibility(e); err != nil {
			return fmt.Errorf("eligibilities[%d].%w", i, err)
		}
	}
	for i := range b.Proposals {
		p := &b.Proposals[i]
		if p.Source == "" {
			p.Source = b.Source
		}
		if p.Source != b.Source {
			return fmt.Errorf("%w: proposals[%d]: source %q in a batch of %q", ErrInvalid, i, p.Source, b.Source)
		}
		if err := CheckProposal(p); err != nil {
			return fmt.Errorf("proposals[%d].%w", i, err)
		}
	}
	for i, g := range b.ProposalGaps {
		if g.From > g.To {
			return fmt.Errorf("%w: proposal_gaps[%d]: %d..%d is reversed", ErrInvalid, i, g.From, g.To)
		}
	}
	if err := validateAlerts(b); err != nil {
		return err
	}
	if b.Coverage != nil && b.Coverage.From > b.Coverage.To {
		return fmt.Errorf("%w: coverage %d..%d is reversed", ErrInvalid, b.Coverage.From, b.Coverage.To)
	}
	if len(b.Meta) > 0 && !json.Valid(b.Meta) {
		return fmt.Errorf("%w: meta: not valid JSON", ErrInvalid)
	}
	return nil
}

// Record kinds of a Rejected record.
const (
	RecordEvent  = "event"
	RecordBlock  = "block"
	RecordReward = "reward"
	RecordNode   = "node"
	// RecordEpochTotal is a network payout of an epoch.
	RecordEpochTotal = "epoch_total"
)

// NewRejected builds a rejected record, bounding what it keeps: the key
// is made printable and cut to MaxTextLen, raw to MaxRejectedRaw bytes
// (RawSize keeps the full length).
func NewRejected(kind string, height uint64, key, field, reason string, raw []byte) Rejected {
	return Rejected{
		Kind: kind, Height: height, Key: boundedText(key), Field: boundedText(field), Reason: boundedText(reason),
		Raw: append([]byte(nil), raw[:min(len(raw), MaxRejectedRaw)]...), RawSize: len(raw),
	}
}

// boundedText makes s storable as rejected-record text: valid UTF-8, no
// NUL, at most MaxTextLen bytes (cut at a rune boundary).
func boundedText(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\\x00"), "\uFFFD")
	if len(s) <= MaxTextLen {
		return s
	}
	cut := MaxTextLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// checkRejected checks a rejected record the way NewRejected builds one.
func checkRejected(r *Rejected) error {
	for _, f := range []struct{ name, v string }{{"kind", r.Kind}, {"key", r.Key}, {"reason", r.Reason}} {
		if err := checkText(f.name, f.v, false); err != nil {
			return err
		}
	}
	if err := checkText("field", r.Field, true); err != nil {
		return err
	}
	if err := checkText("last_key", r.LastKey, true); err != nil {
		return err
	}
	if r.Counted > 0 && len(r.Raw) > 0 {
		return fieldErr("raw", nil, "a counting record keeps no raw bytes")
	}
	if len(r.Raw) > MaxRejectedRaw {
		return fieldErr("raw", nil, "%d bytes, more than %d", len(r.Raw), MaxRejectedRaw)
	}
	return nil
}

// plausibleTime refuses a time no upstream should send: before
// PlausibleSince or more than MaxClockSkew after now.
func plausibleTime(field string, t, now time.Time) *FieldError {
	if t.IsZero() || !t.Before(PlausibleSince) && !t.After(now.Add(MaxClockSkew)) {
		return nil
	}
	return fieldErr(field, []byte(t.UTC().Format(time.RFC3339Nano)), "implausible: before %d or more than %s after the ingesting clock", PlausibleSince.Year(), MaxClockSkew)
}

// PlausibleTime reports whether an upstream time can be stored as it is
// and is one an upstream should send: zero (unknown), or after
// PlausibleSince and at most MaxClockSkew past now.
func PlausibleTime(t, now time.Time) error {
	if err := checkTime("time", t); err != nil {
		return err.Err
	}
	if err := plausibleTime("time", t, now); err != nil {
		return err.Err
	}
	return nil
}

func plausibleEvent(e *Event, now time.Time) *FieldError {
	if err := CheckEvent(e); err != nil {
		return err
	}
	return plausibleTime("block_time", e.BlockTime, now)
}

func plausibleBlock(b *Block, now time.Time) *FieldError {
	if err := CheckBlock(b); err != nil {
		return err
	}
	return plausibleTime("block_time", b.BlockTime, now)
}

func plausibleReward(r *Reward, now time.Time) *FieldError {
	if err := CheckReward(r); err != nil {
		return err
	}
	if err := CheckAmount(r.RawAmount); err != nil {
		return &FieldError{Field: "raw_amount", Value: []byte(r.RawAmount), Err: err}
	}
	for _, t := range []struct {
		name string
		v    time.Time
	}{{"time", r.Time}, {"period_start", r.PeriodStart}, {"period_end", r.PeriodEnd}} {
		if err := plausibleTime(t.name, t.v, now); err != nil {
			return err
		}
	}
	return nil
}

func plausibleNode(n *NodeStatus, now time.Time) *FieldError {
	if err := CheckNode(n); err != nil {
		return err
	}
	return plausibleTime("time", n.Time, now)
}

// Quarantine moves every record of b that Apply would refuse, or that no
// upstream should send (a time before PlausibleSince or more than
// MaxClockSkew after now, an amount of more than MaxAmountDigits digits),
// into b.Rejected with the field and reason, so the rest of the batch and
// its checkpoint commit. It returns how many records it moved. Callers
// that ingest upstream data call it before Apply: one bad record then
// costs a rejected record, never a stalled source. Every rejected record
// of b, those a source added itself included, ends under the quarantine's
// bound (Reject).
func (b *Batch) Quarantine(now time.Time) int {
	b.boundRejected()
	before := b.rejectedRecords()
	b.Events = quarantine(b, b.Events, func(e *Event) (Rejected, bool) {
		err := plausibleEvent(e, now)
		return rejectedBy(RecordEvent, e.Height, fmt.Sprintf("tx %d event %d", e.TxIndex, e.EventIndex), err, "payload", e.Payload), err != nil
	})
	b.Blocks = quarantine(b, b.Blocks, func(k *Block) (Rejected, bool) {
		err := plausibleBlock(k, now)
		return rejectedBy(RecordBlock, k.Height, "block", err, "", nil), err != nil
	})
	b.Rewards = quarantine(b, b.Rewards, func(r *Reward) (Rejected, bool) {
		err := plausibleReward(r, now)
		at := r.Height
		if !r.HasHeight {
			at = timeHeight(r.Time)
		}
		return rejectedBy(RecordReward, at, "reward "+r.Account+" "+r.ID, err, "details", r.Details), err != nil
	})
	b.Nodes = quarantine(b, b.Nodes, func(n *NodeStatus) (Rejected, bool) {
		err := plausibleNode(n, now)
		return rejectedBy(RecordNode, timeHeight(n.Time), "node "+n.Node, err, "details", n.Details), err != nil
	})
	return int(b.rejectedRecords() - before)
}

// rejectedRecords is how many rejected records b.Rejected stands for.
func (b *Batch) rejectedRecords() uint64 {
	n := uint64(0)
	for i := range b.Rejected {
		n += b.Rejected[i].Records()
	}
	return n
}

// quarantine keeps the records check passes, in place, and rejects each
// of the others (Reject).
func quarantine[T any](b *Batch, recs []T, check func(*T) (Rejected, bool)) []T {
	kept := recs[:0]
	for i := range recs {
		if r, bad := check(&recs[i]); bad {
			b.Reject(r)
			continue
		}
		kept = append(kept, recs[i])
	}
	clear(recs[len(kept):])
	return kept
}

// rejectedBy is the rejected record of a record that failed with err. Its
// raw bytes are the record's document (wholeField: an event's payload, a
// reward's details) unless that is what failed, so a record rejected for
// its type keeps its payload; the failing value then starts the reason.
func rejectedBy(kind string, height uint64, key string, err *FieldError, wholeField string, whole []byte) Rejected {
	if err == nil {
		return Rejected{}
	}
	if len(whole) == 0 || err.Field == wholeField {
		return NewRejected(kind, height, key, err.Field, err.Err.Error(), err.Value)
	}
	reason := err.Err.Error()
	if len(err.Value) > 0 {
		reason = fmt.Sprintf("%s: %.120q", reason, err.Value)
	}
	return NewRejected(kind, height, key, err.Field, reason, whole)
}

// timeHeight is the position of a record that has a time but no height
// (a node snapshot): its Unix second, or 0 when the time is unusable.
func timeHeight(t time.Time) uint64 {
	if t.Before(MinTime) || !t.Before(MaxTime) {
		return 0
	}
	return uint64(t.Unix())
}
