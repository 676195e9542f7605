package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/evindex/evindex/store"
)

var _ store.MissedReader = (*Store)(nil)

var (
	eligibilityTable = recordTable{name: "eligibilities", key: []string{"source", "account", "epoch"},
		cols: []string{"heights", "counts", "final_after", "time_ns"}}
	proposalTable = recordTable{name: "proposals", key: []string{"source", "account", "height"},
		cols: []string{"id", "time_ns"}}
)

// writeAnnouncements writes the transaction's eligibilities, proposals
// and proposal gaps (the last write of an identity wins).
func (p *plan) writeAnnouncements(ctx context.Context, tx pgx.Tx) error {
	if len(p.eligibilities.items) > 0 {
		rows := make([][]any, len(p.eligibilities.items))
		for i, e := range p.eligibilities.items {
			var hs, ns []int64
			if e.Heights != nil {
				hs, ns = make([]int64, len(e.Heights)), make([]int64, len(e.Heights))
				for j, h := range e.Heights {
					hs[j], ns[j] = int64(h.Height), int64(h.Count)
				}
			}
			rows[i] = []any{e.Source, e.Account, int64(e.Epoch), hs, ns, int64(e.FinalAfter), nanos(e.Time)}
		}
		if _, err := eligibilityTable.write(ctx, tx, rows, nil, nil); err != nil {
			return fmt.Errorf("eligibilities: %w", err)
		}
	}
	if len(p.proposals.items) > 0 {
		rows := make([][]any, len(p.proposals.items))
		for i, pr := range p.proposals.items {
			rows[i] = []any{pr.Source, pr.Account, int64(pr.Height), pr.ID, nanos(pr.Time)}
		}
		if _, err := proposalTable.write(ctx, tx, rows, nil, nil); err != nil {
			return fmt.Errorf("proposals: %w", err)
		}
	}
	for _, name := range p.sources {
		for _, g := range joinRanges(p.source[name].gaps) {
			if err := mergeRange(ctx, tx, "proposal_gaps", name, g); err != nil {
				return fmt.Errorf("proposal gaps: %w", err)
			}
		}
	}
	return nil
}

// Eligibilities returns every stored eligibility of source, in (account,
// epoch) order.
func (s *Store) Eligibilities(ctx context.Context, source string) ([]store.Eligibility, error) {
	if !storable(source) {
		return nil, nil
	}
	rows, err := s.read.Query(ctx, `SELECT source, account, epoch, heights, counts, final_after, time_ns
		FROM eligibilities WHERE source = $1 ORDER BY account, epoch`, source)
	if err != nil {
		return nil, s.redact(fmt.Errorf("eligibilities of %s: %w", source, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Eligibility, error) {
		var e store.Eligibility
		var epoch, final, tns int64
		var hs, ns []int64
		if err := row.Scan(&e.Source, &e.Account, &epoch, &hs, &ns, &final, &tns); err != nil {
			return e, err
		}
		if len(hs) != len(ns) {
			return e, fmt.Errorf("eligibility %s/%d: %w: %d heights, %d counts", e.Account, epoch, store.ErrCorrupt, len(hs), len(ns))
		}
		e.Epoch, e.FinalAfter, e.Time = uint64(epoch), uint64(final), fromNanos(tns)
		if hs != nil {
			e.Heights = make([]store.EligibleHeight, len(hs))
			for i := range hs {
				e.Heights[i] = store.EligibleHeight{Height: uint64(hs[i]), Count: uint32(ns[i])}
			}
		}
		return e, nil
	})
	if err != nil {
		return nil, s.redact(fmt.Errorf("eligibilities of %s: %w", source, err))
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// Proposals returns the stored proposals of (source, account) with
// heights in [from, to], in height order.
func (s *Store) Proposals(ctx context.Context, source, account string, from, to uint64) ([]store.Proposal, error) {
	if !storable(source, account) || from > maxHeight || from > to {
		return nil, nil
	}
	to = min(to, maxHeight)
	rows, err := s.read.Query(ctx, `SELECT source, account, height, id, time_ns FROM proposals
		WHERE source = $1 AND account = $2 AND height BETWEEN $3 AND $4 ORDER BY height`, source, account, int64(from), int64(to))
	if err != nil {
		return nil, s.redact(fmt.Errorf("proposals of %s/%s: %w", source, account, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Proposal, error) {
		var p store.Proposal
		var h, tns int64
		err := row.Scan(&p.Source, &p.Account, &h, &p.ID, &tns)
		p.Height, p.Time = uint64(h), fromNanos(tns)
		return p, err
	})
	if err != nil {
		return nil, s.redact(fmt.Errorf("proposals of %s/%s: %w", source, account, err))
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// ProposalGaps returns the height ranges of source in which the node's
// announcements may have been lost, ascending and disjoint.
func (s *Store) ProposalGaps(ctx context.Context, source string) ([]store.Range, error) {
	out, err := s.ranges(ctx, "proposal_gaps", source)
	if err != nil {
		return nil, s.redact(fmt.Errorf("proposal gaps of %s: %w", source, err))
	}
	return out, nil
}
