package httpapi

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/evindex/evindex/store"
)

// Response formats of the list endpoints.
const (
	formatJSON    = "json"
	formatNDJSON  = "ndjson"
	formatCSV     = "csv"
	formatParquet = "parquet"
)

var formatTypes = map[string]string{
	formatJSON:    "application/json",
	formatNDJSON:  "application/x-ndjson",
	formatCSV:     "text/csv; charset=utf-8",
	formatParquet: "application/vnd.apache.parquet",
}

// format picks the response format: the format parameter wins, then the
// first Accept media type that names an export format, else JSON.
func (p *params) format(accept string) string {
	if v := strings.ToLower(p.str("format")); v != "" {
		if _, ok := formatTypes[v]; !ok {
			p.fail(invalidParam("format", "must be one of json, ndjson, csv, parquet"))
			return formatJSON
		}
		return v
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/json":
			return formatJSON
		case "application/x-ndjson":
			return formatNDJSON
		case "text/csv":
			return formatCSV
		case "application/vnd.apache.parquet":
			return formatParquet
		}
	}
	return formatJSON
}

// pageSize is how many rows an export reads per store call: each call is
// its own short read transaction, so writers are never held up by a slow
// client and memory stays constant.
const pageSize = store.MaxLimit

// listing describes one list endpoint's rows and how to encode them.
type listing[T any] struct {
	name string // file name stem of exports
	// fetch reads one page starting at cursor.
	fetch func(ctx context.Context, cursor string, limit int) (store.Page[T], error)
	// item is the JSON and NDJSON shape of a row.
	item func(*T) any
	// header and row are the CSV columns: one flat column per field,
	// nested JSON as a JSON string.
	header []string
	row    func(*T) []string
	// parquet starts a Parquet file on w.
	parquet func(w io.Writer) rowWriter[T]
	// unpaged lists answer JSON without next_cursor.
	unpaged bool
}

// rowWriter writes rows of an export format that needs more than one line
// per row (Parquet).
type rowWriter[T any] interface {
	write(rows []T) error
	close() error
}

// listRequest is what every list endpoint reads besides its filters.
type listRequest struct {
	format     string
	cursor     string
	limit      int
	limitGiven bool
}

func (p *params) listRequest(r *http.Request) listRequest {
	lr := listRequest{format: p.format(r.Header.Get("Accept")), cursor: p.str("cursor")}
	lr.limit, lr.limitGiven = p.limit()
	return lr
}

// serveList answers a list request: one page for JSON, or every matching
// row (up to limit when given) streamed page by page for the exports.
func serveList[T any](w http.ResponseWriter, r *http.Request, l listing[T], lr listRequest) error {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	if lr.format == formatJSON {
		p, err := l.fetch(ctx, lr.cursor, lr.limit)
		if err != nil {
			return err
		}
		// The server's write deadline runs from the request; a slow read
		// (a summary over years of rewards) still gets time to answer.
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		items := make([]any, len(p.Items))
		for i := range p.Items {
			items[i] = l.item(&p.Items[i])
		}
		if l.unpaged {
			writeJSON(w, http.StatusOK, struct {
				Items []any `json:"items"`
			}{items})
			return nil
		}
		writeJSON(w, http.StatusOK, struct {
			Items      []any  `json:"items"`
			NextCursor string `json:"next_cursor"`
		}{items, p.Next})
		return nil
	}

	// Read the first page before answering, so a bad cursor or filter is
	// still a proper error response rather than a cut stream.
	remaining := -1
	if lr.limitGiven {
		remaining = lr.limit
	}
	size := pageSize
	if remaining >= 0 {
		size = min(size, remaining)
	}
	p, err := l.fetch(ctx, lr.cursor, size)
	if err != nil {
		return err
	}

	h := w.Header()
	h.Set("Content-Type", formatTypes[lr.format])
	h.Set("Cache-Control", "no-store")
	if lr.format == formatCSV || lr.format == formatParquet {
		h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", l.name+"."+lr.format))
	}
	w.WriteHeader(http.StatusOK)

	bw := bufio.NewWriterSize(w, 64<<10)
	var enc pageEncoder[T]
	switch lr.format {
	case formatNDJSON:
		enc = &ndjsonEncoder[T]{enc: json.NewEncoder(bw), item: l.item}
	case formatCSV:
		enc = &csvEncoder[T]{w: csv.NewWriter(bw), header: l.header, row: l.row}
	case formatParquet:
		enc = &parquetEncoder[T]{rw: l.parquet(bw)}
	}
	for {
		// A long export keeps pushing its write deadline forward; a
		// client that stops reading still times out.
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		items := p.Items
		if remaining >= 0 && len(items) > remaining {
			items = items[:remaining]
		}
		if err := enc.encode(items); err != nil {
			return fmt.Errorf("encode %s: %w", lr.format, err)
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write response: %w", err)
		}
		_ = rc.Flush()
		if remaining >= 0 {
			remaining -= len(items)
		}
		if p.Next == "" || remaining == 0 {
			break
		}
		size := pageSize
		if remaining >= 0 {
			size = min(size, remaining)
		}
		if p, err = l.fetch(ctx, p.Next, size); err != nil {
			return err
		}
	}
	if err := enc.close(); err != nil {
		return fmt.Errorf("encode %s: %w", lr.format, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write response: %w", err)
	}
	return nil
}

// pageEncoder writes an export's rows a page at a time.
type pageEncoder[T any] interface {
	encode(items []T) error
	close() error
}

type ndjsonEncoder[T any] struct {
	enc  *json.Encoder
	item func(*T) any
}

func (e *ndjsonEncoder[T]) encode(items []T) error {
	for i := range items {
		if err := e.enc.Encode(e.item(&items[i])); err != nil {
			return err
		}
	}
	return nil
}

func (e *ndjsonEncoder[T]) close() error { return nil }

type csvEncoder[T any] struct {
	w         *csv.Writer
	header    []string
	row       func(*T) []string
	wroteHead bool
}

func (e *csvEncoder[T]) encode(items []T) error {
	if !e.wroteHead {
		e.wroteHead = true
		if err := e.w.Write(e.header); err != nil {
			return err
		}
	}
	for i := range items {
		if err := e.w.Write(e.row(&items[i])); err != nil {
			return err
		}
	}
	e.w.Flush()
	return e.w.Error()
}

func (e *csvEncoder[T]) close() error {
	if !e.wroteHead {
		return e.encode(nil)
	}
	return nil
}

type parquetEncoder[T any] struct{ rw rowWriter[T] }

func (e *parquetEncoder[T]) encode(items []T) error { return e.rw.write(items) }
func (e *parquetEncoder[T]) close() error           { return e.rw.close() }
