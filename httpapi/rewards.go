package httpapi

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/evindex/evindex/store"
)

// rewardKinds are the reward kinds of API.md, what the kind filter takes.
var rewardKinds = []string{"flow_node_reward", "flow_delegator_reward", "smesher_reward", "presearch_period"}

// listRewards writes the rewards of GET /v1/rewards.
func (s lists) listRewards(ctx context.Context, p *params, w io.Writer) error {
	q := rewardQuery(p)
	q.Kinds = p.oneOf("kind", rewardKinds)
	lr := p.listRequest()
	if err := p.check(); err != nil {
		return err
	}
	if err := s.sourceExists(ctx, q.Source); err != nil {
		return err
	}
	return writeList(ctx, w, listing[reward]{
		name:  "rewards",
		query: q,
		fetch: func(ctx context.Context, cursor string, limit int) (store.Page[reward], error) {
			q.Cursor, q.Limit = cursor, limit
			page, err := s.st.Rewards(ctx, q)
			if err != nil {
				return store.Page[reward]{}, err
			}
			return rewardsOf(page)
		},
		item:    rewardItem,
		header:  rewardHeader,
		row:     rewardRow,
		parquet: rewardParquet,
	}, lr)
}

// rewardQuery reads the filters of GET /v1/rewards, which the lists of
// rewards (earned or missed) share.
func rewardQuery(p *params) store.RewardQuery {
	q := store.RewardQuery{Source: p.str("source"), Accounts: p.ids("account"), Desc: p.desc()}
	q.FromTime, q.ToTime = p.times()
	q.FromHeight, q.ToHeight = p.heights()
	return q
}

// listRewardSummary writes the buckets of GET /v1/rewards/summary.
func (s lists) listRewardSummary(ctx context.Context, p *params, w io.Writer) error {
	q := store.SummaryQuery{RewardQuery: store.RewardQuery{Source: p.str("source"), Accounts: p.ids("account"), Kinds: p.oneOf("kind", rewardKinds)}}
	q.FromTime, q.ToTime = p.times()
	q.Location = p.location()
	switch q.GroupBy = strings.ToLower(p.str("group_by")); q.GroupBy {
	case "":
		q.GroupBy = store.GroupDay
	case store.GroupDay, store.GroupWeek, store.GroupMonth, store.GroupEpoch:
	default:
		p.fail(invalidParam("group_by", "must be one of day, week, month, epoch"))
	}
	format := p.format()
	if err := p.check(); err != nil {
		return err
	}
	if err := s.sourceExists(ctx, q.Source); err != nil {
		return err
	}
	if q.GroupBy == store.GroupEpoch && q.Source != "" {
		in, err := s.st.Source(ctx, q.Source)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err == nil && (in.Epochs == nil || in.Epochs.BlocksPerEpoch == 0 && !in.Epochs.Named) {
			return invalidParam("group_by", "epoch needs a source with epochs (Spacemesh, Flow); %q has none", q.Source)
		}
	}
	l := listing[summary]{
		name: "rewards-summary",
		fetch: func(ctx context.Context, _ string, _ int) (store.Page[summary], error) {
			rows, err := s.st.RewardSummary(ctx, q)
			if errors.Is(err, store.ErrInvalid) && q.GroupBy == store.GroupEpoch {
				return store.Page[summary]{}, invalidParam("group_by",
					"epoch covers only sources with epochs (Spacemesh, Flow); choose one with source=")
			}
			if err != nil {
				return store.Page[summary]{}, err
			}
			if len(q.Kinds) == 0 || slices.Contains(q.Kinds, "smesher_reward") {
				// Only Spacemesh smeshers miss rewards they were eligible for.
				if rows, err = store.CountMissed(ctx, s.st, q, rows); err != nil {
					return store.Page[summary]{}, err
				}
			}
			out := store.Page[summary]{Items: make([]summary, len(rows))}
			for i := range rows {
				out.Items[i] = summary{rows[i], formatBig(rows[i].RawAmount, rows[i].Decimals), rows[i].RawAmount.String()}
			}
			return out, nil
		},
		item:    summaryItem,
		header:  summaryHeader,
		row:     summaryRow,
		parquet: summaryParquet,
		unpaged: true,
	}
	if q.GroupBy == store.GroupEpoch {
		l.header, l.row = summaryEpochHeader, summaryEpochRow
	}
	return writeList(ctx, w, l, listRequest{format: format})
}
