package bolt

import (
	"github.com/evindex/evindex/store"

	"bytes"
	"context"
	"fmt"
	"math/big"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	migrations "github.com/evindex/evindex/migrations/bolt"
)

// RewardSummary sums the rewards q selects per time bucket, source, account
// and unit, in integer base units: the sum of the rows equals the sum of the
// rewards exactly. A query whose bounds and buckets fall on whole UTC
// hours reads the hour totals Apply keeps (store.SummaryHours); any other
// sums the rewards themselves, with the same rows as a result. It reads in short transactions, a page at a
// time. It returns ErrInvalid for an unknown grouping, or group_by=epoch
// on a source without epochs.
func (s *Store) RewardSummary(ctx context.Context, q store.SummaryQuery) ([]store.SummaryRow, error) {
	if from, to, ok := store.SummaryHours(q); ok {
		rows, ok, err := s.summaryFromHours(ctx, q, from, to)
		if err != nil || ok {
			return rows, err
		}
	}
	bucket, err := s.summaryBuckets(ctx, q)
	if err != nil {
		return nil, err
	}
	sums := rewardSums{}
	rq := q.RewardQuery
	rq.Desc, rq.Cursor = false, ""
	// A page of rows per read transaction, so a long summary never holds
	// one open for long; only the fields a sum needs are decoded.
	var after []byte
	for {
		var items []rewardAmount
		err := s.view(func(tx *bbolt.Tx) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			var err error
			items, after, err = scan(rewardIters(tx, &rq), false, store.MaxLimit, after, amountMatcher(tx, &rq))
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("summarize rewards: %w", err)
		}
		for i := range items {
			if err := sums.add(bucket, &items[i]); err != nil {
				return nil, err
			}
		}
		if after == nil {
			return sums.rows(), nil
		}
	}
}

// bucketFunc sets the bucket (start, end and, by epoch, the epoch) of the
// summary row that reward r counts in.
type bucketFunc func(r *rewardAmount, row *store.SummaryRow) error

// summaryBuckets returns how q's grouping buckets a reward. It returns
// ErrInvalid for an unknown grouping; the bucket it returns for
// group_by=epoch returns ErrInvalid for a reward of a source without
// epochs.
func (s *Store) summaryBuckets(ctx context.Context, q store.SummaryQuery) (bucketFunc, error) {
	switch q.GroupBy {
	case store.GroupDay, store.GroupWeek, store.GroupMonth:
		loc := q.Location
		if loc == nil {
			loc = time.UTC
		}
		return func(r *rewardAmount, row *store.SummaryRow) error {
			row.BucketStart, row.BucketEnd = store.BucketOf(r.time.In(loc), q.GroupBy)
			return nil
		}, nil
	case store.GroupEpoch:
		infos, err := s.Sources(ctx)
		if err != nil {
			return nil, err
		}
		epochs := map[string]*store.Epochs{}
		for _, in := range infos {
			if in.Epochs != nil && in.Epochs.BlocksPerEpoch > 0 {
				epochs[in.Name] = in.Epochs
			}
		}
		return func(r *rewardAmount, row *store.SummaryRow) error {
			if r.hasEpoch {
				// The upstream named the epoch (Flow's epochCounter):
				// the row spans the payments counted in it.
				n := r.epoch
				row.Epoch = &n
				row.BucketStart, row.BucketEnd = r.time.UTC(), r.time.UTC()
				return nil
			}
			ep := epochs[r.source]
			if ep == nil || !r.hasHeight {
				return fmt.Errorf("%w: group_by=epoch: source %q has no epochs", store.ErrInvalid, r.source)
			}
			n := r.height / ep.BlocksPerEpoch
			span := time.Duration(ep.BlocksPerEpoch) * ep.BlockDuration
			row.Epoch = &n
			row.BucketStart = ep.Genesis.Add(time.Duration(n) * span).UTC()
			row.BucketEnd = row.BucketStart.Add(span)
			return nil
		}, nil
	default:
		return nil, fmt.Errorf("%w: group_by %q: want day, week, month or epoch", store.ErrInvalid, q.GroupBy)
	}
}

// rewardSums are a summary's rows while they are summed, by bucket start,
// source, account and unit.
type rewardSums map[sumKey]*rewardSum

type sumKey struct {
	start                 int64
	epoch                 uint64 // a named epoch (start is then 0)
	source, account, unit string
}

// rewardSum is one summary row being summed: in a uint64 while the sum
// fits, then in row.RawAmount.
type rewardSum struct {
	row store.SummaryRow
	sum uint64
	big bool
}

// add counts r in the row of its bucket.
func (sums rewardSums) add(bucket bucketFunc, r *rewardAmount) error {
	row := store.SummaryRow{Source: r.source, Account: r.account, Unit: r.unit, Decimals: r.decimals}
	if err := bucket(r, &row); err != nil {
		return err
	}
	k := sumKey{start: row.BucketStart.UnixNano(), source: r.source, account: r.account, unit: r.unit}
	if r.hasEpoch && row.Epoch != nil {
		k.start, k.epoch = 0, *row.Epoch
	}
	g := sums[k]
	if g == nil {
		g = &rewardSum{row: row}
		sums[k] = g
	}
	if g.row.BucketStart.After(row.BucketStart) {
		g.row.BucketStart = row.BucketStart
	}
	if g.row.BucketEnd.Before(row.BucketEnd) {
		g.row.BucketEnd = row.BucketEnd
	}
	return g.add(r)
}

// add counts r's amount in the row.
func (g *rewardSum) add(r *rewardAmount) error {
	g.row.Count++
	if r.isUint && !g.big {
		if s := g.sum + r.amount; s >= g.sum {
			g.sum = s
			return nil
		}
	}
	if !g.big {
		g.big = true
		g.row.RawAmount = new(big.Int).SetUint64(g.sum)
	}
	if r.isUint {
		g.row.RawAmount.Add(g.row.RawAmount, new(big.Int).SetUint64(r.amount))
		return nil
	}
	amt, ok := new(big.Int).SetString(r.text, 10)
	if !ok {
		return fmt.Errorf("reward %s: %w: amount %q", r.account, store.ErrCorrupt, r.text)
	}
	g.row.RawAmount.Add(g.row.RawAmount, amt)
	return nil
}

// rows returns the summed rows in bucket, source, account and unit order.
func (sums rewardSums) rows() []store.SummaryRow {
	out := make([]store.SummaryRow, 0, len(sums))
	for _, g := range sums {
		if !g.big {
			g.row.RawAmount = new(big.Int).SetUint64(g.sum)
		}
		out = append(out, g.row)
	}
	slices.SortFunc(out, func(a, b store.SummaryRow) int { return store.CompareSummaryRows(&a, &b) })
	return out
}

// rewardAmount is what a summary reads of a reward.
type rewardAmount struct {
	source, account string
	time            time.Time
	height          uint64
	hasHeight       bool
	epoch           uint64
	hasEpoch        bool
	unit            string
	decimals        int
	amount          uint64 // when isUint
	isUint          bool
	text            string // the amount otherwise
}

// amountMatcher decodes the summary's fields of the rewards q selects;
// unit strings are shared between rows.
func amountMatcher(tx *bbolt.Tx, q *store.RewardQuery) func(pk, val []byte) (rewardAmount, bool, error) {
	rb := tx.Bucket(migrations.BucketRewards)
	units := map[string]string{}
	var last rewardAmount // source and account strings are reused while they repeat
	return func(pk, val []byte) (rewardAmount, bool, error) {
		if val == nil {
			if val = rb.Get(pk); val == nil {
				return rewardAmount{}, false, nil
			}
		}
		if len(val) > 0 && val[0] == '{' {
			var r store.Reward
			if err := decodeReward(pk, val, &r); err != nil {
				return rewardAmount{}, false, fmt.Errorf("reward %q: %w", pk, err)
			}
			a := rewardAmount{source: r.Source, account: r.Account, time: r.Time, height: r.Height, hasHeight: r.HasHeight,
				unit: r.Unit, decimals: r.Decimals, text: r.RawAmount}
			return a, rewardMatches(q, &r), nil
		}
		i := bytes.IndexByte(pk, sep)
		j := -1
		if i >= 0 {
			j = bytes.IndexByte(pk[i+1:], sep)
		}
		var h rewardHead
		if j < 0 || decodeRewardHead(val, &h) != nil {
			return rewardAmount{}, false, fmt.Errorf("reward %q: %w", pk, store.ErrCorrupt)
		}
		src, acct := pk[:i], pk[i+1:i+1+j]
		if string(src) != last.source {
			last.source = string(src)
		}
		if string(acct) != last.account {
			last.account = string(acct)
		}
		unit, ok := units[string(h.unit)]
		if !ok {
			unit = string(h.unit)
			units[unit] = unit
		}
		a := rewardAmount{source: last.source, account: last.account, time: h.time, height: h.height,
			hasHeight: h.flags&rwHeight != 0, epoch: h.epoch, hasEpoch: h.flags&rwEpoch != 0, unit: unit, decimals: h.decimals, amount: h.amount, isUint: h.flags&rwAmountUint != 0}
		if !a.isUint {
			a.text = string(h.rawAmount)
		}
		r := store.Reward{Source: a.source, Account: a.account, Time: a.time, Height: a.height, HasHeight: a.hasHeight}
		if len(q.Kinds) > 0 {
			r.Kind = string(h.kind)
		}
		if len(q.Accounts) > 0 && !slices.Contains(q.Accounts, a.account) {
			r.Aliases = make([]string, h.aliases)
			for k := range r.Aliases {
				r.Aliases[k] = h.rest.str()
			}
		}
		return a, rewardMatches(q, &r), nil
	}
}
