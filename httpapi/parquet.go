package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/evindex/evindex/store"
)

// rowGroupRows is how many rows a Parquet export buffers before it writes
// them out as one row group: the export's memory bound.
const rowGroupRows = 10_000

// parquetWriter writes rows of T as a Parquet file of R rows (R's struct
// tags are the schema), a row group at a time as pages arrive.
type parquetWriter[T, R any] struct {
	w       *parquet.GenericWriter[R]
	conv    func(*T) (R, error)
	buf     []R
	pending int
}

func newParquetWriter[T, R any](out io.Writer, conv func(*T) R) rowWriter[T] {
	return newCheckedParquetWriter(out, func(t *T) (R, error) { return conv(t), nil })
}

// newCheckedParquetWriter is newParquetWriter for rows that may not fit
// their columns (an amount too large for its DECIMAL): conv's error ends
// the export.
func newCheckedParquetWriter[T, R any](out io.Writer, conv func(*T) (R, error)) rowWriter[T] {
	return &parquetWriter[T, R]{
		w:    parquet.NewGenericWriter[R](out, parquet.Compression(&parquet.Snappy)),
		conv: conv,
	}
}

func (p *parquetWriter[T, R]) write(rows []T) error {
	p.buf = p.buf[:0]
	for i := range rows {
		r, err := p.conv(&rows[i])
		if err != nil {
			return err
		}
		p.buf = append(p.buf, r)
	}
	if _, err := p.w.Write(p.buf); err != nil {
		return fmt.Errorf("write parquet rows: %w", err)
	}
	if p.pending += len(rows); p.pending >= rowGroupRows {
		p.pending = 0
		if err := p.w.Flush(); err != nil {
			return fmt.Errorf("write parquet row group: %w", err)
		}
	}
	return nil
}

func (p *parquetWriter[T, R]) close() error {
	if err := p.w.Close(); err != nil {
		return fmt.Errorf("close parquet file: %w", err)
	}
	return nil
}

// micros is a Parquet TIMESTAMP(MICROS) value; 0 (the zero time) is
// written as null in optional columns.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

type eventPq struct {
	Source     string `parquet:"source,dict"`
	Height     int64  `parquet:"height"`
	BlockID    string `parquet:"block_id"`
	BlockTime  int64  `parquet:"block_time,optional,timestamp(microsecond)"`
	TxID       string `parquet:"tx_id"`
	TxIndex    int64  `parquet:"tx_index"`
	EventIndex int64  `parquet:"event_index"`
	Type       string `parquet:"type,dict"`
	Payload    string `parquet:"payload,optional,json"`
}

func eventParquet(w io.Writer) rowWriter[store.Event] {
	return newParquetWriter(w, func(e *store.Event) eventPq {
		return eventPq{e.Source, int64(e.Height), e.BlockID, micros(e.BlockTime), e.TxID,
			int64(e.TxIndex), int64(e.EventIndex), e.Type, string(e.Payload)}
	})
}

type blockPq struct {
	Source     string `parquet:"source,dict"`
	Height     int64  `parquet:"height"`
	BlockID    string `parquet:"block_id"`
	BlockTime  int64  `parquet:"block_time,optional,timestamp(microsecond)"`
	EventCount int64  `parquet:"event_count"`
}

func blockParquet(w io.Writer) rowWriter[store.Block] {
	return newParquetWriter(w, func(b *store.Block) blockPq {
		return blockPq{b.Source, int64(b.Height), b.BlockID, micros(b.BlockTime), int64(b.EventCount)}
	})
}

// Amounts are Parquet DECIMALs, which pandas (as decimal.Decimal) and
// DuckDB read exactly without a cast: raw_amount, the integer in base
// units, is DECIMAL(38, 0), and amount, in whole units, DECIMAL(38, 18).
// A column has one scale, and one export holds FLOW (8 decimals), SMH (9)
// and PRE (18) side by side, so amount takes the largest; its value is
// still exact for every unit, with 20 digits before the point. Both are
// 16-byte big-endian two's complement integers (FIXED_LEN_BYTE_ARRAY).
const (
	amountScale  = 18
	decimalWidth = 38
)

// decimalLimit is 10^38, the first value a DECIMAL(38, s) cannot hold.
var decimalLimit = new(big.Int).Exp(big.NewInt(10), big.NewInt(decimalWidth), nil)

// pow10 are 10^0 .. 10^amountScale, the factors that scale an amount.
var pow10 = func() []*big.Int {
	out := make([]*big.Int, amountScale+1)
	for i := range out {
		out[i] = new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(i)), nil)
	}
	return out
}()

// decimal38 is v as the 16 bytes of a DECIMAL(38, s) column, or false
// when it has more than 38 digits (or is negative, which no amount is).
func decimal38(v *big.Int) ([16]byte, bool) {
	var out [16]byte
	if v.Sign() < 0 || v.Cmp(decimalLimit) >= 0 {
		return out, false
	}
	v.FillBytes(out[:])
	return out, true
}

// amountDecimals are a row's amount and raw_amount columns for raw base
// units of a unit with decimals decimals. An amount too large for them
// ends the export with an error that says so; no real amount comes near.
func amountDecimals(raw *big.Int, decimals int) (amount, rawAmount [16]byte, err error) {
	scaled := raw
	if decimals >= 0 && decimals < amountScale {
		scaled = new(big.Int).Mul(raw, pow10[amountScale-decimals])
	}
	var okRaw, okAmount bool
	rawAmount, okRaw = decimal38(raw)
	amount, okAmount = decimal38(scaled)
	if !okRaw || !okAmount || decimals > amountScale {
		return amount, rawAmount, invalidParam("format", "amount %s with %d decimals does not fit Parquet's DECIMAL(38, %d); export it as csv or ndjson", raw, decimals, amountScale)
	}
	return amount, rawAmount, nil
}

// rewardPq is one reward row; amounts are DECIMALs (see amountScale).
type rewardPq struct {
	Source      string   `parquet:"source,dict"`
	Account     string   `parquet:"account,dict"`
	Kind        string   `parquet:"kind,dict"`
	Height      *int64   `parquet:"height,optional"`
	Time        int64    `parquet:"time,timestamp(microsecond)"`
	PeriodStart int64    `parquet:"period_start,optional,timestamp(microsecond)"`
	PeriodEnd   int64    `parquet:"period_end,optional,timestamp(microsecond)"`
	Amount      [16]byte `parquet:"amount,decimal(18:38)"`
	RawAmount   [16]byte `parquet:"raw_amount,decimal(0:38)"`
	Unit        string   `parquet:"unit,dict"`
	Details     string   `parquet:"details,optional,json"`
}

func rewardParquet(w io.Writer) rowWriter[reward] {
	return newCheckedParquetWriter(w, func(r *reward) (rewardPq, error) {
		var h *int64
		if r.HasHeight {
			v := int64(r.Height)
			h = &v
		}
		raw, ok := new(big.Int).SetString(r.RawAmount, 10)
		if !ok {
			return rewardPq{}, fmt.Errorf("reward raw_amount %q is not an integer", r.RawAmount)
		}
		amount, rawAmount, err := amountDecimals(raw, r.Decimals)
		if err != nil {
			return rewardPq{}, fmt.Errorf("reward of %s at %s: %w", r.Account, r.Time.Format(timeLayout), err)
		}
		return rewardPq{r.Source, r.Account, r.Kind, h, micros(r.Time), micros(r.PeriodStart), micros(r.PeriodEnd),
			amount, rawAmount, r.Unit, string(r.Details)}, nil
	})
}

type nodePq struct {
	Source    string `parquet:"source,dict"`
	Node      string `parquet:"node,dict"`
	Time      int64  `parquet:"time,timestamp(microsecond)"`
	Connected *bool  `parquet:"connected,optional"`
	Synced    *bool  `parquet:"synced,optional"`
	Details   string `parquet:"details,optional,json"`
}

func nodeParquet(w io.Writer) rowWriter[store.NodeStatus] {
	return newParquetWriter(w, func(n *store.NodeStatus) nodePq {
		return nodePq{n.Source, n.Node, micros(n.Time), n.Connected, n.Synced, string(n.Details)}
	})
}

type summaryPq struct {
	BucketStart int64    `parquet:"bucket_start,timestamp(microsecond)"`
	BucketEnd   int64    `parquet:"bucket_end,timestamp(microsecond)"`
	Epoch       *int64   `parquet:"epoch,optional"`
	Source      string   `parquet:"source,dict"`
	Account     string   `parquet:"account,dict"`
	Unit        string   `parquet:"unit,dict"`
	Amount      [16]byte `parquet:"amount,decimal(18:38)"`
	RawAmount   [16]byte `parquet:"raw_amount,decimal(0:38)"`
	Count       int64    `parquet:"count"`
	Missed      int64    `parquet:"missed"`
}

func summaryParquet(w io.Writer) rowWriter[summary] {
	return newCheckedParquetWriter(w, func(s *summary) (summaryPq, error) {
		var e *int64
		if s.Epoch != nil {
			v := int64(*s.Epoch)
			e = &v
		}
		amount, rawAmount, err := amountDecimals(s.RawAmount, s.Decimals)
		if err != nil {
			return summaryPq{}, fmt.Errorf("summary of %s from %s: %w", s.Account, s.BucketStart.Format(timeLayout), err)
		}
		return summaryPq{micros(s.BucketStart), micros(s.BucketEnd), e, s.Source, s.Account, s.Unit, amount, rawAmount, int64(s.Count), int64(s.Missed)}, nil
	})
}

type sourcePq struct {
	Name                string   `parquet:"name"`
	Kind                string   `parquet:"kind"`
	Endpoint            string   `parquet:"endpoint"`
	State               string   `parquet:"state"`
	CheckpointHeight    *int64   `parquet:"checkpoint_height,optional"`
	CheckpointBlockID   string   `parquet:"checkpoint_block_id,optional"`
	CheckpointTime      int64    `parquet:"checkpoint_time,optional,timestamp(microsecond)"`
	CheckpointUpdatedAt int64    `parquet:"checkpoint_updated_at,optional,timestamp(microsecond)"`
	HeadHeight          int64    `parquet:"head_height"`
	Lag                 int64    `parquet:"lag"`
	LagThreshold        int64    `parquet:"lag_threshold"`
	EventsIndexed       int64    `parquet:"events_indexed"`
	BlocksIndexed       int64    `parquet:"blocks_indexed"`
	RewardsIndexed      int64    `parquet:"rewards_indexed"`
	LastError           string   `parquet:"last_error"`
	Reconnects          int64    `parquet:"reconnects"`
	LiveSince           int64    `parquet:"live_since,optional,timestamp(microsecond)"`
	ProgressDone        *int64   `parquet:"progress_done,optional"`
	ProgressTotal       *int64   `parquet:"progress_total,optional"`
	ProgressRate        *float64 `parquet:"progress_rate,optional"`
	ProgressETASeconds  *float64 `parquet:"progress_eta_seconds,optional"`
	Meta                string   `parquet:"meta,optional,json"`
	Epochs              string   `parquet:"epochs,optional,json"`
	Rejected            int64    `parquet:"rejected"`
	Warnings            int64    `parquet:"warnings"`
	LastErrorAt         int64    `parquet:"last_error_at,optional,timestamp(microsecond)"`
	Endpoints           string   `parquet:"endpoints,optional,json"`
	Gaps                string   `parquet:"gaps,optional,json"`
	Owner               string   `parquet:"owner,optional"`
	StalledSince        int64    `parquet:"stalled_since,optional,timestamp(microsecond)"`
	StallThreshold      float64  `parquet:"stall_threshold"`
}

func microsPtr(t *apiTime) int64 {
	if t == nil {
		return 0
	}
	return micros(time.Time(*t))
}

func sourceParquet(w io.Writer) rowWriter[sourceJSON] {
	return newParquetWriter(w, func(o *sourceJSON) sourcePq {
		r := sourcePq{Name: o.Name, Kind: o.Kind, Endpoint: o.Endpoint, State: o.State,
			HeadHeight: int64(o.HeadHeight), Lag: int64(o.Lag), LagThreshold: int64(o.LagThreshold),
			EventsIndexed: int64(o.EventsIndexed), BlocksIndexed: int64(o.BlocksIndexed), RewardsIndexed: int64(o.RewardsIndexed),
			LastError: o.LastError, Reconnects: int64(o.Reconnects), LiveSince: microsPtr(o.LiveSince), Meta: string(o.Meta),
			Rejected: int64(o.Rejected), Warnings: int64(o.Warnings), LastErrorAt: microsPtr(o.LastErrorAt), Owner: o.Owner,
			StalledSince: microsPtr(o.StalledSince), StallThreshold: o.StallThreshold}
		if cp := o.Checkpoint; cp != nil {
			h := int64(cp.Height)
			r.CheckpointHeight, r.CheckpointBlockID = &h, cp.BlockID
			r.CheckpointTime, r.CheckpointUpdatedAt = microsPtr(cp.Time), microsPtr(cp.UpdatedAt)
		}
		if o.Epochs != nil {
			b, _ := json.Marshal(o.Epochs)
			r.Epochs = string(b)
		}
		if p := o.Progress; p != nil {
			done, total, rate, eta := int64(p.Done), int64(p.Total), p.Rate, p.ETASeconds
			r.ProgressDone, r.ProgressTotal, r.ProgressRate, r.ProgressETASeconds = &done, &total, &rate, &eta
		}
		return r
	})
}
