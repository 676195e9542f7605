package httpapi

import (
	"context"
	"io"
	"time"

	"github.com/evindex/evindex/store"
)

// epochTotalJSON is a network's payout of one epoch: what the whole
// network earned, next to which an account's epoch summary is its share.
type epochTotalJSON struct {
	Source      string  `json:"source"`
	Epoch       uint64  `json:"epoch"`
	Height      uint64  `json:"height"`
	Time        apiTime `json:"time"`
	Unit        string  `json:"unit"`
	Total       string  `json:"total"`
	RawTotal    string  `json:"raw_total"`
	FromFees    string  `json:"from_fees"`
	RawFromFees string  `json:"raw_from_fees"`
	Minted      string  `json:"minted"`
	RawMinted   string  `json:"raw_minted"`
	Burned      string  `json:"burned"`
	RawBurned   string  `json:"raw_burned"`
}

func epochTotalOf(e *store.EpochTotal) (epochTotalJSON, error) {
	o := epochTotalJSON{Source: e.Source, Epoch: e.Epoch, Height: e.Height, Time: apiTime(e.Time.UTC()), Unit: e.Unit,
		RawTotal: e.RawTotal, RawFromFees: e.RawFromFees, RawMinted: e.RawMinted, RawBurned: e.RawBurned}
	for _, a := range []struct {
		raw string
		dst *string
	}{{e.RawTotal, &o.Total}, {e.RawFromFees, &o.FromFees}, {e.RawMinted, &o.Minted}, {e.RawBurned, &o.Burned}} {
		v, err := formatAmount(a.raw, e.Decimals)
		if err != nil {
			return epochTotalJSON{}, err
		}
		*a.dst = v
	}
	return o, nil
}

// listEpochTotals writes GET /v1/rewards/epochs: the network payouts per
// epoch of sources that report them (Flow's EpochTotalRewardsPaid), with
// source, from_epoch and to_epoch. A backend that does not keep them
// answers unavailable.
func (s lists) listEpochTotals(ctx context.Context, p *params, w io.Writer) error {
	q := store.EpochTotalQuery{Source: p.str("source")}
	from, to := p.uint64("from_epoch"), p.uint64("to_epoch")
	if from != nil {
		q.FromEpoch = *from
	}
	if to != nil {
		q.ToEpoch = *to
		if from != nil && *to < *from {
			p.fail(invalidParam("to_epoch", "must not be below from_epoch"))
		}
	}
	format := p.format()
	if err := p.check(); err != nil {
		return err
	}
	if err := s.sourceExists(ctx, q.Source); err != nil {
		return err
	}
	rd, ok := s.st.(store.EpochTotalReader)
	if !ok {
		return &NotFoundError{Message: "this store backend does not keep network payouts per epoch"}
	}
	l := listing[epochTotalJSON]{
		name: ListEpochTotals,
		fetch: func(ctx context.Context, _ string, _ int) (store.Page[epochTotalJSON], error) {
			totals, err := rd.EpochTotals(ctx, q)
			if err != nil {
				return store.Page[epochTotalJSON]{}, err
			}
			out := store.Page[epochTotalJSON]{Items: make([]epochTotalJSON, 0, len(totals))}
			for i := range totals {
				o, err := epochTotalOf(&totals[i])
				if err != nil {
					return store.Page[epochTotalJSON]{}, err
				}
				out.Items = append(out.Items, o)
			}
			return out, nil
		},
		item:   func(o *epochTotalJSON) any { return o },
		header: epochTotalHeader,
		row: func(o *epochTotalJSON) []string {
			return []string{o.Source, u64(o.Epoch), u64(o.Height), csvTime(time.Time(o.Time)), o.Unit, o.Total, o.RawTotal,
				o.FromFees, o.RawFromFees, o.Minted, o.RawMinted, o.Burned, o.RawBurned}
		},
		parquet: func(w io.Writer) rowWriter[epochTotalJSON] {
			return newParquetWriter(w, func(o *epochTotalJSON) epochTotalPq {
				return epochTotalPq{o.Source, int64(o.Epoch), int64(o.Height), micros(time.Time(o.Time)), o.Unit, o.Total, o.RawTotal,
					o.FromFees, o.RawFromFees, o.Minted, o.RawMinted, o.Burned, o.RawBurned}
			})
		},
		unpaged: true,
	}
	return writeList(ctx, w, l, listRequest{format: format})
}

var epochTotalHeader = []string{"source", "epoch", "height", "time", "unit", "total", "raw_total",
	"from_fees", "raw_from_fees", "minted", "raw_minted", "burned", "raw_burned"}

type epochTotalPq struct {
	Source      string `parquet:"source,dict"`
	Epoch       int64  `parquet:"epoch"`
	Height      int64  `parquet:"height"`
	Time        int64  `parquet:"time,timestamp(microsecond)"`
	Unit        string `parquet:"unit,dict"`
	Total       string `parquet:"total"`
	RawTotal    string `parquet:"raw_total"`
	FromFees    string `parquet:"from_fees"`
	RawFromFees string `parquet:"raw_from_fees"`
	Minted      string `parquet:"minted"`
	RawMinted   string `parquet:"raw_minted"`
	Burned      string `parquet:"burned"`
	RawBurned   string `parquet:"raw_burned"`
}
