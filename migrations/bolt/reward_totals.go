package bolt

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"
)

// backfillRewardDays creates the day-total buckets of version 8 and fills
// them from the stored rewards. Version 9 replaced them with hour totals.
func backfillRewardDays(tx *bbolt.Tx) error {
	return fillRewardTotals(tx, 24*60*60, BucketRewardDays, BucketRewardDaysAlias)
}

// rewardHours drops the day totals of version 8 and fills hour totals
// instead: days in zones whose midnight is not UTC's are whole hours,
// not whole UTC days. The store keeps them from here on.
func rewardHours(tx *bbolt.Tx) error {
	for _, name := range [][]byte{BucketRewardDays, BucketRewardDaysAlias} {
		if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, bberrors.ErrBucketNotFound) {
			return fmt.Errorf("delete bucket %s: %w", name, err)
		}
	}
	return fillRewardTotals(tx, 60*60, BucketRewardHours, BucketRewardHoursAlias)
}

// fillRewardTotals creates the two buckets of reward totals per slot of
// slotSeconds and fills them from the stored rewards, so an existing file
// answers summaries from totals like a new one.
//
// The reward formats it reads and the entry format it writes are frozen
// here as they were at versions 8 and 9 (a migration never follows live
// code):
//
//	rewards  source 0 account 0 time(8) id -> a JSON object (values of
//	         the first format, starting with '{') or the binary form:
//	         2 flags kind time [height] [epoch] [period start, end]
//	         amount (uvarint when flags&4, else text) unit decimals(varint)
//	         alias count, aliases, details
//	         (text: uvarint length and bytes; time: varint Unix
//	         nanoseconds, 0 for the zero time; flags: 1 height, 2 period,
//	         4 uint amount, 8 epoch)
//	self     source 0 account 0 slot(8)          -> parts
//	alias    source 0 alias 0 slot(8) account 0  -> parts
//	parts: uvarint n, n times unit, kind (text), decimals, count
//	       (uvarint), amount (uvarint length, big-endian magnitude), in
//	       (unit, kind, decimals) order
//
// slot is 0 for the zero time, else 1 + slots since 1970-01-01T00:00Z. A
// reward counts under its account and once under each distinct alias
// other than its account.
func fillRewardTotals(tx *bbolt.Tx, slotSeconds int64, self, alias []byte) error {
	slots, err := tx.CreateBucketIfNotExists(self)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", self, err)
	}
	aliases, err := tx.CreateBucketIfNotExists(alias)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", alias, err)
	}
	type part struct {
		unit, kind      string
		decimals, count uint64
		amount          big.Int
	}
	entries := map[string][]*part{} // bucket byte + key
	add := func(id []byte, r *frozenReward, amount *big.Int) {
		parts := entries[string(id)]
		i := slices.IndexFunc(parts, func(p *part) bool {
			return p.unit == r.unit && p.kind == r.kind && p.decimals == r.decimals
		})
		if i < 0 {
			parts = append(parts, &part{unit: r.unit, kind: r.kind, decimals: r.decimals})
			i = len(parts) - 1
			entries[string(id)] = parts
		}
		parts[i].count++
		parts[i].amount.Add(&parts[i].amount, amount)
	}
	rb := tx.Bucket(BucketRewards)
	if rb == nil {
		return fmt.Errorf("bucket %s missing", BucketRewards)
	}
	err = rb.ForEach(func(k, v []byte) error {
		r, err := readFrozenReward(k, v)
		if err != nil {
			return fmt.Errorf("reward %q: %w", k, err)
		}
		amount, ok := new(big.Int).SetString(r.amount, 10)
		if !ok || amount.Sign() < 0 {
			return fmt.Errorf("reward %q: amount %q is not a whole number", k, r.amount)
		}
		slot := uint64(0)
		if !r.time.IsZero() {
			slot = 1 + uint64(max(r.time.Unix(), 0)/slotSeconds)
		}
		key := func(name string) []byte {
			k := append(append([]byte(r.source), 0), name...)
			return binary.BigEndian.AppendUint64(append(k, 0), slot)
		}
		add(append([]byte{'a'}, key(r.account)...), &r, amount)
		for i, a := range r.aliases {
			if a == r.account || slices.Contains(r.aliases[:i], a) {
				continue
			}
			add(append(append([]byte{'l'}, key(a)...), append([]byte(r.account), 0)...), &r, amount)
		}
		return nil
	})
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(entries))
	for id := range entries {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		parts := entries[id]
		slices.SortFunc(parts, func(a, b *part) int {
			return cmp.Or(cmp.Compare(a.unit, b.unit), cmp.Compare(a.kind, b.kind), cmp.Compare(a.decimals, b.decimals))
		})
		v := binary.AppendUvarint(nil, uint64(len(parts)))
		for _, p := range parts {
			v = appendFrozenText(appendFrozenText(v, p.unit), p.kind)
			v = binary.AppendUvarint(binary.AppendUvarint(v, p.decimals), p.count)
			v = appendFrozenText(v, string(p.amount.Bytes()))
		}
		b := slots
		if id[0] == 'l' {
			b = aliases
		}
		if err := b.Put([]byte(id[1:]), v); err != nil {
			return err
		}
	}
	return nil
}

func appendFrozenText(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// frozenReward is what a reward total needs of a stored reward.
type frozenReward struct {
	source, account, kind, unit, amount string
	time                                time.Time
	decimals                            uint64
	aliases                             []string
}

var errBadReward = errors.New("unreadable reward value")

// readFrozenReward reads a reward key and value of either format.
func readFrozenReward(k, v []byte) (frozenReward, error) {
	if len(v) > 0 && v[0] == '{' {
		var x struct {
			Source   string    `json:"s"`
			Account  string    `json:"acc"`
			Kind     string    `json:"k"`
			Time     time.Time `json:"t"`
			Amount   string    `json:"a"`
			Unit     string    `json:"u"`
			Decimals uint64    `json:"d"`
			Aliases  []string  `json:"al"`
		}
		if err := json.Unmarshal(v, &x); err != nil {
			return frozenReward{}, fmt.Errorf("%w: %w", errBadReward, err)
		}
		return frozenReward{source: x.Source, account: x.Account, kind: x.Kind, unit: x.Unit, amount: x.Amount,
			time: x.Time, decimals: x.Decimals, aliases: x.Aliases}, nil
	}
	var r frozenReward
	i := bytes.IndexByte(k, 0)
	if i < 0 {
		return r, errBadReward
	}
	j := bytes.IndexByte(k[i+1:], 0)
	if j < 0 {
		return r, errBadReward
	}
	r.source, r.account = string(k[:i]), string(k[i+1:i+1+j])
	if len(v) < 2 || v[0] != 2 {
		return r, errBadReward
	}
	flags := v[1]
	d := frozenReader{b: v[2:]}
	r.kind = d.text()
	if ns := d.varint(); ns != 0 {
		r.time = time.Unix(0, ns).UTC()
	}
	if flags&1 != 0 {
		d.uvarint() // height
	}
	if flags&8 != 0 {
		d.uvarint() // epoch
	}
	if flags&2 != 0 {
		d.varint() // period start and end
		d.varint()
	}
	if flags&4 != 0 {
		r.amount = fmt.Sprint(d.uvarint())
	} else {
		r.amount = d.text()
	}
	r.unit = d.text()
	r.decimals = uint64(d.varint())
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		return r, errBadReward
	}
	for range n {
		r.aliases = append(r.aliases, d.text())
	}
	if d.bad {
		return r, errBadReward
	}
	return r, nil
}

type frozenReader struct {
	b   []byte
	bad bool
}

func (d *frozenReader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *frozenReader) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *frozenReader) text() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
