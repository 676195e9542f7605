package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
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

func encodeEvent(e *Event) []byte {
	x := enc{b: make([]byte, 0, 64+len(e.Payload))}
	x.b = append(x.b, codecV1)
	x.str(e.BlockID)
	x.time(e.BlockTime)
	x.str(e.TxID)
	x.str(e.Type)
	x.str(e.Contract)
	x.uvarint(uint64(len(e.Addresses)))
	for _, a := range e.Addresses {
		x.str(a)
	}
	x.bytes(e.Payload)
	return x.b
}

// decodeEvent fills e from a key and value; it copies everything, so the
// result outlives the transaction.
func decodeEvent(k, v []byte, e *Event) error {
	src, h, tx, ev, ok := parseEventKey(k)
	if !ok || len(v) == 0 || v[0] != codecV1 {
		return ErrCorrupt
	}
	d := dec{b: v[1:]}
	*e = Event{Source: src, Height: h, TxIndex: tx, EventIndex: ev}
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

func encodeBlock(b *Block) []byte {
	x := enc{b: make([]byte, 0, 64)}
	x.b = append(x.b, codecV1)
	x.str(b.BlockID)
	x.time(b.BlockTime)
	x.uvarint(uint64(b.EventCount))
	x.str(b.Status)
	return x.b
}

func decodeBlock(k, v []byte, b *Block) error {
	src, h, ok := parseBlockKey(k)
	if !ok || len(v) == 0 || v[0] != codecV1 {
		return ErrCorrupt
	}
	d := dec{b: v[1:]}
	*b = Block{Source: src, Height: h}
	b.BlockID = d.str()
	b.BlockTime = d.time()
	b.EventCount = uint32(d.uvarint())
	b.Status = d.str()
	return d.err
}

// Rewards and node snapshots are few per height; JSON keeps them readable
// with bbolt's own tools.
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

func encodeReward(r *Reward) ([]byte, error) {
	v := rewardValue{Kind: r.Kind, ID: r.ID, Time: r.Time.UTC(), RawAmount: r.RawAmount, Unit: r.Unit,
		Decimals: r.Decimals, Aliases: r.Aliases, Details: r.Details, Source: r.Source, Account: r.Account}
	if r.HasHeight {
		h := r.Height
		v.Height = &h
	}
	if !r.PeriodStart.IsZero() {
		ps, pe := r.PeriodStart.UTC(), r.PeriodEnd.UTC()
		v.PeriodStart, v.PeriodEnd = &ps, &pe
	}
	return json.Marshal(v)
}

func decodeReward(v []byte, r *Reward) error {
	var x rewardValue
	if err := json.Unmarshal(v, &x); err != nil {
		return ErrCorrupt
	}
	*r = Reward{Source: x.Source, Account: x.Account, Kind: x.Kind, ID: x.ID, Time: x.Time,
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

func encodeNode(n *NodeStatus) ([]byte, error) {
	return json.Marshal(nodeValue{n.Source, n.Node, n.Time.UTC(), n.Connected, n.Synced, n.Details})
}

func decodeNode(v []byte, n *NodeStatus) error {
	var x nodeValue
	if err := json.Unmarshal(v, &x); err != nil {
		return ErrCorrupt
	}
	*n = NodeStatus{x.Source, x.Node, x.Time, x.Connected, x.Synced, x.Details}
	return nil
}
