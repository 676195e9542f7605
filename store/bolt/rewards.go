package bolt

import (
	"github.com/evindex/evindex/store"

	"context"
	"fmt"
	"slices"

	bbolt "go.etcd.io/bbolt"

	migrations "github.com/evindex/evindex/migrations/bolt"
)

const cursorRewards = 'r'

// Rewards returns one page of rewards in (source, account, time) order, or
// reversed with q.Desc. With accounts, only those accounts' key ranges are
// read (plus the alias index), never other accounts' rows.
func (s *Store) Rewards(ctx context.Context, q store.RewardQuery) (store.Page[store.Reward], error) {
	after, err := store.DecodeCursor(cursorRewards, q.Cursor)
	if err != nil {
		return store.Page[store.Reward]{}, err
	}
	var out store.Page[store.Reward]
	err = s.view(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		its := rewardIters(tx, &q)
		out, err = page(its, q.Desc, cursorRewards, q.Limit, after, rewardMatcher(tx, &q))
		return err
	})
	if err != nil {
		return store.Page[store.Reward]{}, fmt.Errorf("list rewards: %w", err)
	}
	return out, nil
}

func rewardIters(tx *bbolt.Tx, q *store.RewardQuery) []*keyIter {
	rb := tx.Bucket(migrations.BucketRewards)
	if len(q.Accounts) == 0 {
		var lo, hi []byte
		if q.Source != "" {
			lo = appendText(nil, q.Source)
			hi = lo
		}
		return []*keyIter{{c: rb.Cursor(), lo: lo, hi: hi, desc: q.Desc, primary: true}}
	}
	sources := []string{q.Source}
	if q.Source == "" {
		sources = sourceNames(tx)
	}
	var its []*keyIter
	for _, acct := range q.Accounts {
		for _, src := range sources {
			p := appendText(appendText(nil, src), acct)
			lo, hi := p, p
			if !q.FromTime.IsZero() {
				lo = appendU64(appendText(appendText(nil, src), acct), timeKey(q.FromTime))
			}
			if !q.ToTime.IsZero() {
				if t := timeKey(q.ToTime); t > 0 {
					hi = appendU64(appendText(appendText(nil, src), acct), t-1)
				}
			}
			its = append(its, &keyIter{c: rb.Cursor(), lo: lo, hi: hi, desc: q.Desc, primary: true})
		}
		var lo []byte
		if q.Source != "" {
			lo = appendText(nil, q.Source)
		}
		its = append(its, &keyIter{c: tx.Bucket(migrations.BucketRewardsAlias).Cursor(), prefix: appendText(nil, acct), lo: lo, hi: lo, desc: q.Desc})
	}
	return its
}

func rewardMatcher(tx *bbolt.Tx, q *store.RewardQuery) func(pk, val []byte) (store.Reward, bool, error) {
	rb := tx.Bucket(migrations.BucketRewards)
	return func(pk, val []byte) (store.Reward, bool, error) {
		if val == nil {
			if val = rb.Get(pk); val == nil {
				return store.Reward{}, false, nil
			}
		}
		var r store.Reward
		if err := decodeReward(pk, val, &r); err != nil {
			return r, false, fmt.Errorf("reward %q: %w", pk, err)
		}
		return r, rewardMatches(q, &r), nil
	}
}

// rewardMatches reports whether r is one of the rewards q lists.
func rewardMatches(q *store.RewardQuery, r *store.Reward) bool {
	if q.Source != "" && r.Source != q.Source {
		return false
	}
	if len(q.Kinds) > 0 && !slices.Contains(q.Kinds, r.Kind) {
		return false
	}
	if len(q.Accounts) > 0 && !slices.Contains(q.Accounts, r.Account) &&
		!slices.ContainsFunc(r.Aliases, func(a string) bool { return slices.Contains(q.Accounts, a) }) {
		return false
	}
	if !q.FromTime.IsZero() && r.Time.Before(q.FromTime) {
		return false
	}
	if !q.ToTime.IsZero() && !r.Time.Before(q.ToTime) {
		return false
	}
	if q.FromHeight != nil && (!r.HasHeight || r.Height < *q.FromHeight) {
		return false
	}
	if q.ToHeight != nil && (!r.HasHeight || r.Height > *q.ToHeight) {
		return false
	}
	return true
}
