package httpapi

import (
	"context"
	"encoding/base64"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/evindex/evindex/store"
)

// listRejected writes the upstream records the sources quarantined (see
// the README's "Untrusted upstreams") for GET /v1/rejected, with the list
// conventions of every other list: filters, keyset cursors, formats.
func (s lists) listRejected(ctx context.Context, p *params, w io.Writer) error {
	q := store.RejectedQuery{Source: p.str("source"), Desc: p.desc()}
	q.FromHeight, q.ToHeight = p.heights()
	lr := p.listRequest()
	if err := p.check(); err != nil {
		return err
	}
	if err := s.sourceExists(ctx, q.Source); err != nil {
		return err
	}
	return writeList(ctx, w, listing[store.Rejected]{
		name:  "rejected",
		query: q,
		fetch: func(ctx context.Context, cursor string, limit int) (store.Page[store.Rejected], error) {
			q.Cursor, q.Limit = cursor, limit
			return s.st.Rejected(ctx, q)
		},
		item:    rejectedItem,
		header:  rejectedHeader,
		row:     rejectedRow,
		parquet: rejectedParquet,
	}, lr)
}

// rejectedJSON is one quarantined record, or a counting record that
// stands for count of them (counted). raw is base64 (the bytes may be
// anything); raw_text repeats it as text when it is valid UTF-8.
type rejectedJSON struct {
	Source  string   `json:"source"`
	Height  uint64   `json:"height"`
	Key     string   `json:"key"`
	Kind    string   `json:"kind"`
	Field   string   `json:"field"`
	Reason  string   `json:"reason"`
	Raw     string   `json:"raw"`
	RawText *string  `json:"raw_text"`
	RawSize int      `json:"raw_size"`
	Time    *apiTime `json:"time"`
	Count   uint64   `json:"count"`
	Counted bool     `json:"counted"`
	LastKey string   `json:"last_key"`
}

func rawText(raw []byte) *string {
	if !utf8.Valid(raw) {
		return nil
	}
	s := string(raw)
	return &s
}

func rejectedItem(r *store.Rejected) any {
	return rejectedJSON{r.Source, r.Height, r.Key, r.Kind, r.Field, r.Reason,
		base64.StdEncoding.EncodeToString(r.Raw), rawText(r.Raw), r.RawSize, jsonTime(r.Time),
		r.Records(), r.Counted > 0, r.LastRecord()}
}

var rejectedHeader = []string{"source", "height", "key", "kind", "field", "reason", "raw", "raw_size", "time", "count", "counted", "last_key"}

func rejectedRow(r *store.Rejected) []string {
	return []string{r.Source, u64(r.Height), r.Key, r.Kind, r.Field, r.Reason,
		base64.StdEncoding.EncodeToString(r.Raw), strconv.Itoa(r.RawSize), csvTime(r.Time),
		u64(r.Records()), strconv.FormatBool(r.Counted > 0), r.LastRecord()}
}

type rejectedPq struct {
	Source  string `parquet:"source,dict"`
	Height  int64  `parquet:"height"`
	Key     string `parquet:"key"`
	Kind    string `parquet:"kind,dict"`
	Field   string `parquet:"field,dict"`
	Reason  string `parquet:"reason"`
	Raw     []byte `parquet:"raw"`
	RawSize int64  `parquet:"raw_size"`
	Time    int64  `parquet:"time,timestamp(microsecond)"`
	Count   int64  `parquet:"count"`
	Counted bool   `parquet:"counted"`
	LastKey string `parquet:"last_key"`
}

func rejectedParquet(w io.Writer) rowWriter[store.Rejected] {
	return newParquetWriter(w, func(r *store.Rejected) rejectedPq {
		return rejectedPq{r.Source, int64(r.Height), r.Key, r.Kind, r.Field, r.Reason, r.Raw, int64(r.RawSize), micros(r.Time),
			int64(r.Records()), r.Counted > 0, r.LastRecord()}
	})
}
