package httpapi

import (
	"fmt"
	"io"
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
	conv    func(*T) R
	buf     []R
	pending int
}

func newParquetWriter[T, R any](out io.Writer, conv func(*T) R) rowWriter[T] {
	return &parquetWriter[T, R]{
		w:    parquet.NewGenericWriter[R](out, parquet.Compression(&parquet.Snappy)),
		conv: conv,
	}
}

func (p *parquetWriter[T, R]) write(rows []T) error {
	p.buf = p.buf[:0]
	for i := range rows {
		p.buf = append(p.buf, p.conv(&rows[i]))
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

// rewardPq keeps amounts as decimal strings (exact at any precision) next
// to their unit; raw_amount is the integer in base units, also a string
// because Presearch's 18-decimal amounts overflow 64 bits.
type rewardPq struct {
	Source      string `parquet:"source,dict"`
	Account     string `parquet:"account,dict"`
	Kind        string `parquet:"kind,dict"`
	Height      *int64 `parquet:"height,optional"`
	Time        int64  `parquet:"time,timestamp(microsecond)"`
	PeriodStart int64  `parquet:"period_start,optional,timestamp(microsecond)"`
	PeriodEnd   int64  `parquet:"period_end,optional,timestamp(microsecond)"`
	Amount      string `parquet:"amount"`
	RawAmount   string `parquet:"raw_amount"`
	Unit        string `parquet:"unit,dict"`
	Details     string `parquet:"details,optional,json"`
}

func rewardParquet(w io.Writer) rowWriter[reward] {
	return newParquetWriter(w, func(r *reward) rewardPq {
		var h *int64
		if r.HasHeight {
			v := int64(r.Height)
			h = &v
		}
		return rewardPq{r.Source, r.Account, r.Kind, h, micros(r.Time), micros(r.PeriodStart), micros(r.PeriodEnd),
			r.amount, r.RawAmount, r.Unit, string(r.Details)}
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
	BucketStart int64  `parquet:"bucket_start,timestamp(microsecond)"`
	BucketEnd   int64  `parquet:"bucket_end,timestamp(microsecond)"`
	Epoch       *int64 `parquet:"epoch,optional"`
	Source      string `parquet:"source,dict"`
	Account     string `parquet:"account,dict"`
	Unit        string `parquet:"unit,dict"`
	Amount      string `parquet:"amount"`
	RawAmount   string `parquet:"raw_amount"`
	Count       int64  `parquet:"count"`
}

func summaryParquet(w io.Writer) rowWriter[summary] {
	return newParquetWriter(w, func(s *summary) summaryPq {
		var e *int64
		if s.Epoch != nil {
			v := int64(*s.Epoch)
			e = &v
		}
		return summaryPq{micros(s.BucketStart), micros(s.BucketEnd), e, s.Source, s.Account, s.Unit, s.amount, s.raw, int64(s.Count)}
	})
}
