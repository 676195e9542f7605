package httpapi

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
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

// FormatType is the Content-Type the API answers a list in format with
// ("" for an unknown format); clients check it before trusting a body.
func FormatType(format string) string { return formatTypes[format] }

// format reads the format parameter: it wins over p.defaultFormat (what
// the Accept header asked for), and JSON is the default of both.
func (p *params) format() string {
	v := strings.ToLower(p.str("format"))
	if v == "" {
		v = p.defaultFormat
	}
	if v == "" {
		return formatJSON
	}
	if _, ok := formatTypes[v]; !ok {
		p.fail(invalidParam("format", "must be one of json, ndjson, csv, parquet"))
		return formatJSON
	}
	return v
}

// acceptFormat is the first media type of an Accept header that names a
// list format, or "" when none does.
func acceptFormat(accept string) string {
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
	return ""
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
	// query is the store query the list pages (Cursor and Limit unset);
	// next_cursor is sealed to it, so a cursor only resumes the query
	// that handed it out.
	query any
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

func (p *params) listRequest() listRequest {
	lr := listRequest{format: p.format(), cursor: p.str("cursor")}
	lr.limit, lr.limitGiven = p.limit()
	return lr
}

// contentNamer is told a list's name and format before the first byte is
// written: the HTTP response sets its headers from them.
type contentNamer interface{ nameContent(name, format string) }

// serveList answers a list request with writeList over the response.
func serveList[T any](w http.ResponseWriter, r *http.Request, l listing[T], lr listRequest) error {
	return serveStream(w, r, func(w io.Writer) error { return writeList(r.Context(), w, l, lr) })
}

// serveStream runs write over a responseStream of w. A list with no rows
// writes no byte, so the headers go out at the end.
func serveStream(w http.ResponseWriter, r *http.Request, write func(io.Writer) error) error {
	rs := &responseStream{w: w, rc: http.NewResponseController(w), head: r.Method == http.MethodHead}
	if err := write(rs); err != nil && !errors.Is(err, errHeadAnswered) {
		return err
	}
	rs.start()
	return nil
}

// writeList writes one page as JSON, or every matching row (up to limit
// when given) page by page for the exports: each page is one store call,
// one short read transaction, so memory stays constant however many rows
// match. After each page it flushes to w and, when w is an http.Flusher,
// flushes w. Nothing is written before the first page has been read, so a
// bad cursor or filter is still an error and not a cut stream.
func writeList[T any](ctx context.Context, w io.Writer, l listing[T], lr listRequest) error {
	if !l.unpaged {
		seal, fetch := sealFor(l.name, l.query), l.fetch
		l.fetch = func(ctx context.Context, cursor string, limit int) (store.Page[T], error) {
			inner, err := seal.open(cursor)
			if err != nil {
				return store.Page[T]{}, err
			}
			p, err := fetch(ctx, inner, limit)
			p.Next = seal.seal(p.Next)
			return p, err
		}
	}
	named := func() {
		if cn, ok := w.(contentNamer); ok {
			cn.nameContent(l.name, lr.format)
		}
	}
	if lr.format == formatJSON {
		p, err := l.fetch(ctx, lr.cursor, lr.limit)
		if err != nil {
			return err
		}
		items := make([]any, len(p.Items))
		for i := range p.Items {
			items[i] = l.item(&p.Items[i])
		}
		var body any = struct {
			Items      []any  `json:"items"`
			NextCursor string `json:"next_cursor"`
		}{items, p.Next}
		if l.unpaged {
			body = struct {
				Items []any `json:"items"`
			}{items}
		}
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode json: %w", err)
		}
		named()
		if _, err := w.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("write json: %w", err)
		}
		return nil
	}

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
	named()

	bw := bufio.NewWriterSize(w, 64<<10)
	var enc pageEncoder[T]
	switch lr.format {
	case formatNDJSON:
		enc = &ndjsonEncoder[T]{enc: json.NewEncoder(bw), item: l.item}
	case formatCSV:
		enc = &csvEncoder[T]{w: csv.NewWriter(bw), header: l.header, row: l.row, text: textColumns(l.header)}
	case formatParquet:
		enc = &parquetEncoder[T]{rw: l.parquet(bw)}
	}
	for {
		items := p.Items
		if remaining >= 0 && len(items) > remaining {
			items = items[:remaining]
		}
		if err := enc.encode(items); err != nil {
			return fmt.Errorf("encode %s: %w", lr.format, err)
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write %s: %w", lr.format, err)
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
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
		return fmt.Errorf("write %s: %w", lr.format, err)
	}
	return nil
}

// responseStream is the writer a list is written through onto an HTTP
// response. The status line and headers go out with the first byte, so an
// error before it is still a proper JSON error answer; every write pushes
// the write deadline forward, so a long export keeps going while a client
// that stops reading still times out (and a slow read, such as a summary
// over years of rewards, still gets time to answer).
type responseStream struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	name, format string
	started      bool
	// head is set for a HEAD request: the headers are the whole answer,
	// so the first write ends the listing instead of reading every row
	// for nothing.
	head bool
}

// errHeadAnswered stops a listing written for a HEAD request.
var errHeadAnswered = errors.New("head request answered")

func (rs *responseStream) nameContent(name, format string) { rs.name, rs.format = name, format }

// start sends the status line and headers, once.
func (rs *responseStream) start() {
	if rs.started {
		return
	}
	rs.started = true
	h := rs.w.Header()
	h.Set("Content-Type", formatTypes[rs.format])
	h.Set("Cache-Control", "no-store")
	if rs.format != formatJSON { // a download: the browser saves it under its list's name
		h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", rs.name+"."+rs.format))
	}
	rs.w.WriteHeader(http.StatusOK)
}

func (rs *responseStream) Write(p []byte) (int, error) {
	rs.start()
	if rs.head {
		return 0, errHeadAnswered
	}
	_ = rs.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	return rs.w.Write(p)
}

// Flush sends what was written so far: a page of rows.
func (rs *responseStream) Flush() {
	rs.start()
	_ = rs.rc.Flush()
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
	text      []bool // per column: the injection rule applies (csvcell.go)
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
		row := e.row(&items[i])
		for c := range row {
			if c < len(e.text) && e.text[c] {
				row[c] = neutralizeCell(row[c])
			}
		}
		if err := e.w.Write(row); err != nil {
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
