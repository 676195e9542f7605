package bolt

import (
	"github.com/evindex/evindex/store"

	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"

	bbolt "go.etcd.io/bbolt"

	migrations "github.com/evindex/evindex/migrations/bolt"
)

// Hour totals (see store.RewardHour) are the rewards' counts and exact
// sums per UTC hour, kept by Apply in the transaction that writes the
// rewards:
//
//	reward_hours           source 0 account 0 hour(8)           -> parts
//	reward_hours_by_alias  source 0 alias 0 hour(8) account 0   -> parts
//
// parts: a uvarint n, then n times unit (str), kind (str), decimals
// (uvarint), count (uvarint), amount (bytes: big-endian magnitude), in
// (unit, kind, decimals) order. A reward counts once under its account
// and once under each distinct alias other than its account, so a summary
// of one account reads both buckets and counts every reward it finds once.

// hourPart is one (unit, kind, decimals) total of an hour entry.
type hourPart struct {
	unit, kind string
	decimals   int
	count      int64
	amount     big.Int
}

func comparePart(a, b *hourPart) int {
	return cmp.Or(cmp.Compare(a.unit, b.unit), cmp.Compare(a.kind, b.kind), cmp.Compare(a.decimals, b.decimals))
}

// hourEntry is one hour entry's parts, or the changes a transaction makes
// to them.
type hourEntry struct {
	alias bool // reward_hours_by_alias, else reward_hours
	key   []byte
	parts []*hourPart
}

// hourTotals gathers hour entries by bucket and key.
type hourTotals map[string]*hourEntry

// hourID names an entry in hourTotals: its bucket and key.
func hourID(alias bool, key []byte) string {
	return string(hourBucketName(alias)) + "\x00" + string(key)
}

func hourKey(source, name string, hour uint64) []byte {
	return appendU64(appendText(appendText(make([]byte, 0, len(source)+len(name)+18), source), name), hour)
}

// count adds sign times r's contribution (its amount, and one reward)
// to the totals: under its account and each distinct alias.
func (t hourTotals) count(r *store.Reward, sign int64) error {
	amount, ok := new(big.Int).SetString(r.RawAmount, 10)
	if !ok || amount.Sign() < 0 {
		return fmt.Errorf("reward %s/%s: %w: amount %q", r.Account, r.ID, store.ErrCorrupt, r.RawAmount)
	}
	if sign < 0 {
		amount.Neg(amount)
	}
	hour := store.RewardHour(r.Time)
	t.add(false, hourKey(r.Source, r.Account, hour), r, sign, amount)
	for i, a := range r.Aliases {
		if a == r.Account || slices.Contains(r.Aliases[:i], a) {
			continue
		}
		t.add(true, appendText(hourKey(r.Source, a, hour), r.Account), r, sign, amount)
	}
	return nil
}

func (t hourTotals) add(alias bool, key []byte, r *store.Reward, count int64, amount *big.Int) {
	id := hourID(alias, key)
	e := t[id]
	if e == nil {
		e = &hourEntry{alias: alias, key: key}
		t[id] = e
	}
	want := hourPart{unit: r.Unit, kind: r.Kind, decimals: r.Decimals}
	i := slices.IndexFunc(e.parts, func(p *hourPart) bool { return comparePart(p, &want) == 0 })
	if i < 0 {
		e.parts = append(e.parts, &hourPart{unit: r.Unit, kind: r.Kind, decimals: r.Decimals})
		i = len(e.parts) - 1
	}
	e.parts[i].count += count
	e.parts[i].amount.Add(&e.parts[i].amount, amount)
}

// sorted returns the entries in bucket and key order.
func (t hourTotals) sorted() []*hourEntry {
	out := make([]*hourEntry, 0, len(t))
	for _, e := range t {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *hourEntry) int {
		return cmp.Or(bytes.Compare(hourBucketName(a.alias), hourBucketName(b.alias)), bytes.Compare(a.key, b.key))
	})
	return out
}

func hourBucket(tx *bbolt.Tx, alias bool) *bbolt.Bucket {
	if alias {
		return tx.Bucket(migrations.BucketRewardHoursAlias)
	}
	return tx.Bucket(migrations.BucketRewardHours)
}

// flushHourTotals adds the transaction's changes to the stored entries; an
// entry whose rewards are all gone is deleted.
func (w *writer) flushHourTotals() error {
	for _, ch := range w.hours.sorted() {
		b := hourBucket(w.tx, ch.alias)
		old := b.Get(ch.key)
		parts, err := decodeHourParts(old)
		if err != nil {
			return fmt.Errorf("%s entry %q: %w", hourBucketName(ch.alias), ch.key, err)
		}
		for _, d := range ch.parts {
			i := slices.IndexFunc(parts, func(p *hourPart) bool { return comparePart(p, d) == 0 })
			if i < 0 {
				parts = append(parts, &hourPart{unit: d.unit, kind: d.kind, decimals: d.decimals})
				i = len(parts) - 1
			}
			p := parts[i]
			p.count += d.count
			p.amount.Add(&p.amount, &d.amount)
			if p.count < 0 || p.amount.Sign() < 0 || p.count == 0 && p.amount.Sign() != 0 {
				return fmt.Errorf("%s entry %q: %w: the totals do not match the rewards", hourBucketName(ch.alias), ch.key, store.ErrCorrupt)
			}
		}
		parts = slices.DeleteFunc(parts, func(p *hourPart) bool { return p.count == 0 })
		switch v := encodeHourParts(parts); {
		case len(parts) == 0 && old != nil:
			err = w.del(b, ch.key)
		case len(parts) > 0 && !bytes.Equal(v, old):
			err = w.put(b, ch.key, v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func hourBucketName(alias bool) []byte {
	if alias {
		return migrations.BucketRewardHoursAlias
	}
	return migrations.BucketRewardHours
}

func encodeHourParts(parts []*hourPart) []byte {
	slices.SortFunc(parts, comparePart)
	x := enc{}
	x.uvarint(uint64(len(parts)))
	for _, p := range parts {
		x.str(p.unit)
		x.str(p.kind)
		x.uvarint(uint64(p.decimals))
		x.uvarint(uint64(p.count))
		x.bytes(p.amount.Bytes())
	}
	return x.b
}

func decodeHourParts(v []byte) ([]*hourPart, error) {
	if v == nil {
		return nil, nil
	}
	d := dec{b: v}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		return nil, store.ErrCorrupt
	}
	parts := make([]*hourPart, n)
	for i := range parts {
		p := &hourPart{unit: d.str(), kind: d.str(), decimals: int(d.uvarint()), count: int64(d.uvarint())}
		p.amount.SetBytes(d.bytes())
		parts[i] = p
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, store.ErrCorrupt
	}
	return parts, nil
}

// hourPage bounds the entries a summary reads in one read transaction.
const hourPage = 4096

// summaryFromHours answers q, whose hour slots [from, to) store.SummaryHours
// accepted, from the hour totals. It reports false when the totals cannot
// give the rows a scan would (store.HourSummer.Add).
func (s *Store) summaryFromHours(ctx context.Context, q store.SummaryQuery, from, to uint64) ([]store.SummaryRow, bool, error) {
	sum := store.NewHourSummer(q)
	var ranges []hourRange
	err := s.view(func(tx *bbolt.Tx) error {
		sources := []string{q.Source}
		if q.Source == "" {
			sources = sourceNames(tx)
		}
		for _, src := range sources {
			if len(q.Accounts) == 0 {
				ranges = append(ranges, hourRange{prefix: appendText(nil, src), source: src})
				continue
			}
			p := appendText(appendText(nil, src), q.Accounts[0])
			ranges = append(ranges, hourRange{prefix: p, source: src, account: q.Accounts[0]},
				hourRange{prefix: p, source: src, account: q.Accounts[0], alias: true})
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("summarize rewards: %w", err)
	}
	rd := hourReader{sum: sum, from: from, to: to, strs: map[string]string{}}
	for i := range ranges {
		r := &ranges[i]
		for !r.done {
			err := s.view(func(tx *bbolt.Tx) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				return rd.read(hourBucket(tx, r.alias).Cursor(), r)
			})
			if err != nil {
				return nil, false, fmt.Errorf("summarize rewards: %w", err)
			}
			if rd.cannot {
				return nil, false, nil
			}
		}
	}
	return sum.Rows(), true, nil
}

// hourRange is the entries of one source (and account) a summary reads,
// and how far it got.
type hourRange struct {
	prefix          []byte // source 0, or source 0 account 0
	source, account string // account: when the prefix names one
	alias           bool
	after           []byte // the last key read
	done            bool
}

// hourReader feeds hour entries to an HourSummer.
type hourReader struct {
	sum      *store.HourSummer
	from, to uint64
	strs     map[string]string // unit, kind and account strings, shared
	amount   big.Int
	cannot   bool // the totals cannot answer the query
}

func (rd *hourReader) str(b []byte) string {
	if s, ok := rd.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	rd.strs[s] = s
	return s
}

// read reads up to hourPage entries of r, from where it stopped.
func (rd *hourReader) read(c *bbolt.Cursor, r *hourRange) error {
	var k, v []byte
	switch {
	case r.after != nil:
		if k, v = c.Seek(r.after); bytes.Equal(k, r.after) {
			k, v = c.Next()
		}
	case r.account != "":
		k, v = c.Seek(appendU64(bytes.Clone(r.prefix), rd.from))
	default:
		k, v = c.Seek(r.prefix)
	}
	r.after = nil
	for n := 0; k != nil && bytes.HasPrefix(k, r.prefix); n++ {
		if n == hourPage {
			r.after = bytes.Clone(k)
			return nil
		}
		account := r.account
		rest := k[len(r.prefix):]
		if account == "" { // the self entries of every account of a source
			i := bytes.IndexByte(rest, sep)
			if i < 0 {
				return fmt.Errorf("%s key %q: %w", migrations.BucketRewardHours, k, store.ErrCorrupt)
			}
			account, rest = rd.str(rest[:i]), rest[i+1:]
		}
		if len(rest) < 8 {
			return fmt.Errorf("%s key %q: %w", hourBucketName(r.alias), k, store.ErrCorrupt)
		}
		hour := binary.BigEndian.Uint64(rest)
		switch {
		case hour < rd.from:
			k, v = c.Seek(appendU64(bytes.Clone(k[:len(k)-len(rest)]), rd.from))
			continue
		case hour >= rd.to:
			if r.account != "" {
				k = nil // one account's hours end here
				continue
			}
			k, v = c.Seek(prefixEnd(k[:len(k)-len(rest)])) // the next account
			continue
		}
		if r.alias {
			if len(rest) < 10 || rest[len(rest)-1] != sep {
				return fmt.Errorf("%s key %q: %w", migrations.BucketRewardHoursAlias, k, store.ErrCorrupt)
			}
			account = rd.str(rest[8 : len(rest)-1])
		}
		if err := rd.entry(r.source, account, hour, v); err != nil {
			return fmt.Errorf("%s entry %q: %w", hourBucketName(r.alias), k, err)
		}
		if rd.cannot {
			return nil
		}
		k, v = c.Next()
	}
	r.done = true
	return nil
}

// entry adds one hour entry's parts.
func (rd *hourReader) entry(source, account string, hour uint64, v []byte) error {
	d := dec{b: v}
	n := d.uvarint()
	for range n {
		unit, kind, decimals, count := d.bytes(), d.bytes(), d.uvarint(), d.uvarint()
		amount := d.bytes()
		if d.err != nil {
			break
		}
		rd.amount.SetBytes(amount)
		if !rd.sum.Add(source, account, rd.str(unit), rd.str(kind), int(decimals), hour, count, &rd.amount) {
			rd.cannot = true
			return nil
		}
	}
	if d.err != nil || len(d.b) != 0 {
		return store.ErrCorrupt
	}
	return nil
}

// checkHourTotals verifies that the hour totals are what the stored rewards
// sum to, entry by entry.
func checkHourTotals(ctx context.Context, tx *bbolt.Tx) []error {
	want := hourTotals{}
	err := tx.Bucket(migrations.BucketRewards).ForEach(func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var r store.Reward
		if err := decodeReward(k, v, &r); err != nil {
			return fmt.Errorf("reward %q: %w", k, err)
		}
		return want.count(&r, 1)
	})
	if err != nil {
		return []error{fmt.Errorf("hour totals: %w", err)}
	}
	var errs []error
	report := func(err error) {
		if len(errs) < 3 {
			errs = append(errs, err)
		}
	}
	for _, e := range want.sorted() {
		if got := hourBucket(tx, e.alias).Get(e.key); !bytes.Equal(got, encodeHourParts(e.parts)) {
			report(fmt.Errorf("%s entry %q is not what its rewards sum to", hourBucketName(e.alias), e.key))
		}
	}
	for _, alias := range []bool{false, true} {
		_ = hourBucket(tx, alias).ForEach(func(k, _ []byte) error {
			if want[hourID(alias, k)] == nil {
				report(fmt.Errorf("%s entry %q counts rewards that are not stored", hourBucketName(alias), k))
			}
			return nil
		})
	}
	return errs
}
