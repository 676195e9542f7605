package postgres

import (
	"context"
	"fmt"
	"math/big"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/evindex/evindex/store"
)

var _ store.EpochTotalReader = (*Store)(nil)

var epochTotalTable = recordTable{name: "epoch_totals", key: []string{"source", "epoch"},
	cols: []string{"height", "time_ns", "total", "from_fees", "minted", "burned", "unit", "decimals"}}

// numeric is an amount ValidateBatch checked (canonical digits) as a
// NUMERIC parameter.
func numeric(s string) pgtype.Numeric {
	v, _ := new(big.Int).SetString(s, 10)
	return pgtype.Numeric{Int: v, Valid: true}
}

// writeEpochTotals writes the transaction's network payouts.
func (p *plan) writeEpochTotals(ctx context.Context, tx pgx.Tx) error {
	if len(p.epochTotals.items) == 0 {
		return nil
	}
	rows := make([][]any, len(p.epochTotals.items))
	for i, e := range p.epochTotals.items {
		rows[i] = []any{e.Source, int64(e.Epoch), int64(e.Height), nanos(e.Time), numeric(e.RawTotal), numeric(e.RawFromFees),
			numeric(e.RawMinted), numeric(e.RawBurned), e.Unit, int64(e.Decimals)}
	}
	_, err := epochTotalTable.write(ctx, tx, rows, nil, nil)
	return err
}

// EpochTotals returns the payouts q selects in (source, epoch) order.
func (s *Store) EpochTotals(ctx context.Context, q store.EpochTotalQuery) ([]store.EpochTotal, error) {
	if !storable(q.Source) || q.FromEpoch > maxHeight {
		return nil, nil
	}
	var a args
	where := []string{"epoch >= " + a.add(int64(q.FromEpoch))}
	if q.Source != "" {
		where = append(where, "source = "+a.add(q.Source))
	}
	if q.ToEpoch > 0 && q.ToEpoch <= maxHeight {
		where = append(where, "epoch <= "+a.add(int64(q.ToEpoch)))
	}
	rows, err := s.read.Query(ctx, `SELECT source, epoch, height, time_ns, total, from_fees, minted, burned, unit, decimals
		FROM epoch_totals WHERE `+and(where)+` ORDER BY source, epoch`, a...)
	if err != nil {
		return nil, s.redact(fmt.Errorf("epoch totals: %w", err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.EpochTotal, error) {
		var e store.EpochTotal
		var epoch, h, tns, dec int64
		var amounts [4]pgtype.Numeric
		if err := row.Scan(&e.Source, &epoch, &h, &tns, &amounts[0], &amounts[1], &amounts[2], &amounts[3], &e.Unit, &dec); err != nil {
			return e, err
		}
		e.Epoch, e.Height, e.Time, e.Decimals = uint64(epoch), uint64(h), fromNanos(tns), int(dec)
		var err error
		for i, dst := range []*string{&e.RawTotal, &e.RawFromFees, &e.RawMinted, &e.RawBurned} {
			if *dst, err = integerText(amounts[i]); err != nil {
				return e, err
			}
		}
		return e, nil
	})
	if err != nil {
		return nil, s.redact(fmt.Errorf("epoch totals: %w", err))
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
