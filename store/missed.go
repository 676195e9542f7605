package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"time"
)

// Eligibility is an account's announced right to rewards at some heights
// of one epoch, as the node running the account reported it. Its identity
// is (Source, Account, Epoch): a replayed announcement rewrites it.
type Eligibility struct {
	Source  string
	Account string
	Epoch   uint64
	Heights []EligibleHeight // ascending
	// FinalAfter is how many heights the checkpoint must pass a height
	// before its rewards can no longer change (a chain's revert window):
	// only then is a height without a reward a miss.
	FinalAfter uint64
	Time       time.Time // when it was announced
}

// EligibleHeight is one height an account may earn at, and how many
// rewards it may earn there.
type EligibleHeight struct {
	Height uint64
	Count  uint32
}

// Proposal records that an account's node acted on an eligibility at
// Height (it published its proposal). Its identity is (Source, Account,
// Height).
type Proposal struct {
	Source  string
	Account string
	Height  uint64
	ID      string // the upstream's id of what was published, hex
	Time    time.Time
}

// Reasons of a MissedReward.
const (
	// MissedNoProposal: eligible, nothing was published (the node was
	// offline or late).
	MissedNoProposal = "no_proposal"
	// MissedNotIncluded: a proposal was published and earned nothing.
	MissedNotIncluded = "not_included"
	// MissedUnknownReason: no reward, and the node's announcements around
	// the height were not all seen, so why is not proven.
	MissedUnknownReason = "unknown"
)

// MissedReward is an eligible height of an account, final, scanned, and
// without a reward. It is derived from the stored eligibilities,
// proposals, rewards and coverage, never stored itself, so a revert that
// adds or removes a reward changes it at once.
type MissedReward struct {
	Source        string
	Account       string
	PaidTo        string // the account the rewards are paid to, when a reward showed it
	Height        uint64
	Epoch         uint64
	Time          time.Time // the height's start, when the source's epochs are known
	Eligibilities uint32
	Reason        string
}

// MissedQuery selects missed rewards with a RewardQuery's filters, in
// (source, account, height) order or reversed with Desc; Accounts match
// the eligible account and times MissedReward.Time.
type MissedQuery RewardQuery

// EpochCoverage says whether an account's eligibilities for an epoch were
// seen. Misses are claimed only in known epochs.
type EpochCoverage struct {
	Source     string
	Account    string
	Epoch      uint64
	FromHeight uint64
	ToHeight   uint64
	Known      bool
}

// Announcements is a store that keeps what nodes announce about their
// accounts' rewards (Batch.Eligibilities, Proposals, ProposalGaps).
type Announcements interface {
	// Eligibilities returns every stored eligibility of source, in
	// (account, epoch) order.
	Eligibilities(ctx context.Context, source string) ([]Eligibility, error)
	// Proposals returns the stored proposals of (source, account) with
	// heights in [from, to], in height order.
	Proposals(ctx context.Context, source, account string, from, to uint64) ([]Proposal, error)
	// ProposalGaps returns the height ranges of source in which the node's
	// announcements may have been lost (the stream was down longer than
	// the node's replay), ascending and disjoint.
	ProposalGaps(ctx context.Context, source string) ([]Range, error)
}

// MissedReader is what MissedRewards reads; every Store is one.
type MissedReader interface {
	Sources(ctx context.Context) ([]SourceInfo, error)
	Checkpoint(ctx context.Context, source string) (Checkpoint, bool, error)
	Coverage(ctx context.Context, source string) ([]Range, error)
	Rewards(ctx context.Context, q RewardQuery) (Page[Reward], error)
	Announcements
}

var _ MissedReader = Store(nil)

const cursorMissed = 'm'

// missedKey is the key a missed-rewards cursor names: source 0 account 0
// height(8), the bbolt layout of announcements, as every cursor is.
func missedKey(source, account string, height uint64) []byte {
	k := append(append([]byte(source), 0), account...)
	return binary.BigEndian.AppendUint64(append(k, 0), height)
}

// MissedRewards derives one page of missed rewards from what r holds. It
// returns ErrCursorInvalid for a cursor of another list; an unknown
// source has none.
func MissedRewards(ctx context.Context, r MissedReader, q MissedQuery) (Page[MissedReward], error) {
	after, err := DecodeCursor(cursorMissed, q.Cursor)
	if err != nil {
		return Page[MissedReward]{}, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	infos, err := missedSources(ctx, r, q.Source)
	if err != nil {
		return Page[MissedReward]{}, err
	}
	var out Page[MissedReward]
	for _, info := range infos {
		cands, err := missedCandidates(ctx, r, info, &q, after)
		if err != nil {
			return Page[MissedReward]{}, fmt.Errorf("missed rewards of %s: %w", info.Name, err)
		}
		for len(cands) > 0 && len(out.Items) <= limit {
			// One account's candidates at a time: one reward and one
			// proposal read each.
			n := 1
			for n < len(cands) && cands[n].Account == cands[0].Account && n <= limit {
				n++
			}
			found, err := resolveMissed(ctx, r, info.Name, cands[:n])
			if err != nil {
				return Page[MissedReward]{}, fmt.Errorf("missed rewards of %s: %w", info.Name, err)
			}
			out.Items = append(out.Items, found...)
			cands = cands[n:]
		}
		if len(out.Items) > limit {
			break
		}
	}
	if len(out.Items) > limit {
		out.Items = out.Items[:limit]
		last := out.Items[limit-1]
		out.Next = EncodeCursor(cursorMissed, missedKey(last.Source, last.Account, last.Height))
	}
	return out, nil
}

func missedSources(ctx context.Context, r MissedReader, source string) ([]SourceInfo, error) {
	infos, err := r.Sources(ctx)
	if err != nil {
		return nil, fmt.Errorf("missed rewards: %w", err)
	}
	if source == "" {
		sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
		return infos, nil
	}
	for _, in := range infos {
		if in.Name == source {
			return []SourceInfo{in}, nil
		}
	}
	return nil, nil // as the other lists: an unknown source has no rows
}

// missedCandidates lists the eligible heights of info that are final,
// scanned and selected by q, past the cursor, in list order; whether each
// earned a reward is resolved later.
func missedCandidates(ctx context.Context, r MissedReader, info SourceInfo, q *MissedQuery, after []byte) ([]MissedReward, error) {
	cp, found, err := r.Checkpoint(ctx, info.Name)
	if err != nil || !found {
		return nil, err
	}
	elig, err := r.Eligibilities(ctx, info.Name)
	if err != nil || len(elig) == 0 {
		return nil, err
	}
	cov, err := r.Coverage(ctx, info.Name)
	if err != nil {
		return nil, err
	}
	var out []MissedReward
	for _, e := range elig {
		if len(q.Accounts) > 0 && !slices.Contains(q.Accounts, e.Account) {
			continue
		}
		for _, h := range e.Heights {
			if h.Height > cp.Height || cp.Height-h.Height < e.FinalAfter || !inRanges(cov, h.Height) {
				continue
			}
			if (q.FromHeight != nil && h.Height < *q.FromHeight) || (q.ToHeight != nil && h.Height > *q.ToHeight) {
				continue
			}
			m := MissedReward{Source: info.Name, Account: e.Account, Height: h.Height, Epoch: e.Epoch, Eligibilities: h.Count}
			if ep := info.Epochs; ep != nil {
				m.Time = ep.Genesis.Add(time.Duration(h.Height) * ep.BlockDuration).UTC()
			}
			if (!q.FromTime.IsZero() && m.Time.Before(q.FromTime)) || (!q.ToTime.IsZero() && !m.Time.Before(q.ToTime)) {
				continue
			}
			out = append(out, m)
		}
	}
	// Eligibilities come in (account, epoch) order and heights ascend
	// within one, but two epochs' announcements may overlap.
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Account != out[j].Account {
			return out[i].Account < out[j].Account
		}
		return out[i].Height < out[j].Height
	})
	out = slices.CompactFunc(out, func(a, b MissedReward) bool { return a.Account == b.Account && a.Height == b.Height })
	if q.Desc {
		slices.Reverse(out)
	}
	if after != nil {
		i := 0
		for i < len(out) {
			c := bytes.Compare(missedKey(out[i].Source, out[i].Account, out[i].Height), after)
			if (!q.Desc && c > 0) || (q.Desc && c < 0) {
				break
			}
			i++
		}
		out = out[i:]
	}
	return out, nil
}

func inRanges(rs []Range, h uint64) bool {
	for _, r := range rs {
		if h >= r.From && h <= r.To {
			return true
		}
	}
	return false
}

// resolveMissed keeps the candidates of one account without a reward and
// gives each its reason and the account it would have been paid to.
func resolveMissed(ctx context.Context, r MissedReader, source string, cands []MissedReward) ([]MissedReward, error) {
	lo, hi := cands[0].Height, cands[0].Height
	for _, c := range cands {
		lo, hi = min(lo, c.Height), max(hi, c.Height)
	}
	account := cands[0].Account
	earned := map[uint64]bool{}
	paidTo := ""
	q := RewardQuery{Source: source, Accounts: []string{account}, FromHeight: &lo, ToHeight: &hi, Limit: MaxLimit}
	for {
		p, err := r.Rewards(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, rw := range p.Items {
			if rw.HasHeight {
				earned[rw.Height] = true
			}
			if rw.Account != account {
				paidTo = rw.Account
			}
		}
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	if paidTo == "" {
		// The newest reward names where the account is paid.
		p, err := r.Rewards(ctx, RewardQuery{Source: source, Accounts: []string{account}, Desc: true, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(p.Items) > 0 && p.Items[0].Account != account {
			paidTo = p.Items[0].Account
		}
	}
	props, err := r.Proposals(ctx, source, account, lo, hi)
	if err != nil {
		return nil, err
	}
	proposed := map[uint64]bool{}
	for _, p := range props {
		proposed[p.Height] = true
	}
	gaps, err := r.ProposalGaps(ctx, source)
	if err != nil {
		return nil, err
	}
	var out []MissedReward
	for _, c := range cands {
		if earned[c.Height] {
			continue
		}
		c.PaidTo = paidTo
		switch {
		case proposed[c.Height]:
			c.Reason = MissedNotIncluded
		case inRanges(gaps, c.Height):
			c.Reason = MissedUnknownReason
		default:
			c.Reason = MissedNoProposal
		}
		out = append(out, c)
	}
	return out, nil
}

// MissedCoverage lists, for every account with stored eligibilities, each
// epoch from the first scanned one to the last one with a final height,
// and whether its eligibilities were seen: an unknown epoch is one where
// misses cannot be claimed (the node's announcement was lost).
func MissedCoverage(ctx context.Context, r MissedReader, source string, accounts []string) ([]EpochCoverage, error) {
	infos, err := missedSources(ctx, r, source)
	if err != nil {
		return nil, err
	}
	var out []EpochCoverage
	for _, info := range infos {
		ep := info.Epochs
		if ep == nil || ep.BlocksPerEpoch == 0 {
			continue
		}
		cp, found, err := r.Checkpoint(ctx, info.Name)
		if err != nil {
			return nil, fmt.Errorf("missed coverage of %s: %w", info.Name, err)
		}
		elig, err := r.Eligibilities(ctx, info.Name)
		if err != nil {
			return nil, fmt.Errorf("missed coverage of %s: %w", info.Name, err)
		}
		cov, err := r.Coverage(ctx, info.Name)
		if err != nil {
			return nil, fmt.Errorf("missed coverage of %s: %w", info.Name, err)
		}
		if !found || len(elig) == 0 || len(cov) == 0 {
			continue
		}
		seen := map[string]map[uint64]bool{}
		var names []string
		window := uint64(0)
		for _, e := range elig {
			if len(accounts) > 0 && !slices.Contains(accounts, e.Account) {
				continue
			}
			if seen[e.Account] == nil {
				seen[e.Account] = map[uint64]bool{}
				names = append(names, e.Account)
			}
			seen[e.Account][e.Epoch] = true
			window = max(window, e.FinalAfter)
		}
		if cp.Height < window {
			continue
		}
		first, last := cov[0].From/ep.BlocksPerEpoch, (cp.Height-window)/ep.BlocksPerEpoch
		for _, a := range names {
			for e := first; e <= last; e++ {
				out = append(out, EpochCoverage{
					Source: info.Name, Account: a, Epoch: e,
					FromHeight: e * ep.BlocksPerEpoch, ToHeight: (e+1)*ep.BlocksPerEpoch - 1,
					Known: seen[a][e],
				})
			}
		}
	}
	return out, nil
}

// CheckEligibility and CheckProposal report the first field no backend
// may store; ValidateBatch calls them.
func CheckEligibility(e *Eligibility) *FieldError {
	if err := checkText("account", e.Account, false); err != nil {
		return err
	}
	for i := 1; i < len(e.Heights); i++ {
		if e.Heights[i].Height <= e.Heights[i-1].Height {
			return fieldErr("heights", nil, "height %d does not ascend", e.Heights[i].Height)
		}
	}
	return checkTime("time", e.Time)
}

func CheckProposal(p *Proposal) *FieldError {
	if err := checkText("account", p.Account, false); err != nil {
		return err
	}
	if err := checkText("id", p.ID, true); err != nil {
		return err
	}
	return checkTime("time", p.Time)
}

// CountMissed adds to a summary's rows (RewardSummary of q) the missed
// rewards q selects, each counted in the row of its bucket, source and
// the account its reward would have been paid to (the paying account when known,
// else the eligible account); a bucket with misses and no rewards gets a
// row of amount 0. The rows stay in bucket, source, account, unit order.
func CountMissed(ctx context.Context, r MissedReader, q SummaryQuery, rows []SummaryRow) ([]SummaryRow, error) {
	infos, err := missedSources(ctx, r, q.Source)
	if err != nil {
		return nil, err
	}
	epochs := map[string]*Epochs{}
	for _, in := range infos {
		epochs[in.Name] = in.Epochs
	}
	loc := q.Location
	if loc == nil {
		loc = time.UTC
	}
	at := map[missedBucket]int{}
	for i, row := range rows {
		at[missedBucket{row.BucketStart.UnixNano(), row.Source, row.Account}] = i
	}
	mq := MissedQuery{Source: q.Source, Accounts: q.Accounts, FromTime: q.FromTime, ToTime: q.ToTime, Limit: MaxLimit}
	for {
		p, err := MissedRewards(ctx, r, mq)
		if err != nil {
			return nil, err
		}
		for _, m := range p.Items {
			acct := cmp.Or(m.PaidTo, m.Account)
			row := SummaryRow{Source: m.Source, Account: acct, RawAmount: new(big.Int)}
			ep := epochs[m.Source]
			switch {
			case q.GroupBy == GroupEpoch && ep != nil && ep.BlocksPerEpoch > 0:
				n := m.Epoch
				span := time.Duration(ep.BlocksPerEpoch) * ep.BlockDuration
				row.Epoch = &n
				row.BucketStart = ep.Genesis.Add(time.Duration(n) * span).UTC()
				row.BucketEnd = row.BucketStart.Add(span)
			case q.GroupBy == GroupEpoch:
				continue // rewards of such a source fail the summary already
			default:
				row.BucketStart, row.BucketEnd = BucketOf(m.Time.In(loc), q.GroupBy)
			}
			k := missedBucket{row.BucketStart.UnixNano(), row.Source, row.Account}
			i, ok := at[k]
			if !ok {
				if row.Unit, row.Decimals, err = unitOf(ctx, r, rows, m.Source); err != nil {
					return nil, err
				}
				i = len(rows)
				at[k] = i
				rows = append(rows, row)
			}
			rows[i].Missed++
		}
		if p.Next == "" {
			break
		}
		mq.Cursor = p.Next
	}
	slices.SortStableFunc(rows, func(a, b SummaryRow) int {
		return cmp.Or(a.BucketStart.Compare(b.BucketStart), cmp.Compare(a.Source, b.Source), cmp.Compare(a.Account, b.Account))
	})
	return rows, nil
}

// missedBucket is a summary row's identity, but for its unit.
type missedBucket struct {
	start           int64
	source, account string
}

// unitOf is the unit a source's rewards are in, for a row of misses
// only: a summary row's, else a stored reward's.
func unitOf(ctx context.Context, r MissedReader, rows []SummaryRow, source string) (string, int, error) {
	for _, row := range rows {
		if row.Source == source && row.Unit != "" {
			return row.Unit, row.Decimals, nil
		}
	}
	p, err := r.Rewards(ctx, RewardQuery{Source: source, Limit: 1})
	if err != nil || len(p.Items) == 0 {
		return "", 0, err
	}
	return p.Items[0].Unit, p.Items[0].Decimals, nil
}
