package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/httpapi"
	"github.com/evindex/evindex/store"
)

// exportLists maps the export command's LIST argument to its API path.
var exportLists = map[string]string{
	"events":          "/v1/events",
	"blocks":          "/v1/blocks",
	"rewards":         "/v1/rewards",
	"rewards-summary": "/v1/rewards/summary",
	"nodes":           "/v1/nodes",
}

// exportFilters are the API parameters the export command takes as flags
// (with dashes for underscores), each with its help text.
var exportFilters = []struct{ param, help string }{
	{"source", "only this source (events, blocks, rewards, rewards-summary, nodes)"},
	{"contract", "events of this contract, e.g. A.8624b52f9ddcd04a.FlowIDTableStaking"},
	{"address", "events that name this address"},
	{"tx_id", "events of this transaction"},
	{"from_height", "first height, inclusive (events, blocks, rewards)"},
	{"to_height", "last height, inclusive (events, blocks, rewards)"},
	{"from_time", "first time, inclusive: RFC 3339 or a date such as 2026-01-02 (rewards, rewards-summary)"},
	{"to_time", "end time, exclusive (rewards, rewards-summary)"},
	{"order", "asc or desc (default asc)"},
	{"limit", "stop after this many rows, at most 1000 (default: every matching row)"},
	{"group_by", "rewards-summary buckets: day, week, month or epoch (default day)"},
	{"tz", "rewards-summary time zone for day, week and month buckets, e.g. Europe/Berlin (default UTC)"},
}

func runExportCmd(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "export", "(--data DIR | --url URL) [flags] events|blocks|rewards|rewards-summary|nodes",
		`Writes every matching row of one list as ndjson (default), csv (with a header row)
or parquet, to -o FILE or stdout. The rows, columns and filters are those of the
list's API endpoint (GET /v1/events, /v1/blocks, /v1/rewards, /v1/rewards/summary,
/v1/nodes; see /openapi.json). Rows are read and written a page of 1000 at a time,
so memory stays small however many there are. On a terminal, stderr shows the
rows and bytes written so far.

  --data DIR   read the database of a stopped evindex (read-only)
  --url URL    ask a running evindex (token from --token or $EVINDEX_TOKEN)

Amounts come twice: amount in whole units as a decimal string, and raw_amount,
the exact integer in base units (also a string: Presearch amounts exceed 64 bits).

Examples:
  evindex export --data ./data --format csv -o rewards.csv rewards
  evindex export --url http://127.0.0.1:8080 --format parquet --source sm-node \
      --from-time 2026-01-01 -o sm-rewards.parquet rewards
  evindex export --data ./data --format csv --group-by month --tz Europe/Berlin \
      --account <node id> rewards-summary`)
	data := fs.String("data", "", "data directory of a stopped evindex")
	base := fs.String("url", "", "base URL of a running evindex, e.g. http://127.0.0.1:8080")
	token := fs.String("token", "", "bearer token for --url (default $EVINDEX_TOKEN)")
	format := fs.String("format", "ndjson", "ndjson, csv or parquet")
	out := fs.String("o", "-", "output file; - is stdout")
	for _, f := range exportFilters {
		fs.String(strings.ReplaceAll(f.param, "_", "-"), "", f.help)
	}
	var types, accounts stringList
	fs.Var(&types, "type", "events of this type (repeatable)")
	fs.Var(&accounts, "account", "rewards of this account: a Flow node id, a Spacemesh coinbase or smesher id, a Presearch node key (repeatable)")
	// Flags may come before or after the list's name.
	var lists []string
	for rest := args; ; {
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		lists = append(lists, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	// Every filter flag that was given becomes the API parameter of its name.
	q := url.Values{}
	fs.Visit(func(fl *flag.Flag) {
		name := strings.ReplaceAll(fl.Name, "-", "_")
		switch name {
		case "type", "account", "data", "url", "token", "format", "o":
			return
		}
		q.Set(name, fl.Value.String())
	})
	for _, t := range types {
		q.Add("type", t)
	}
	for _, a := range accounts {
		q.Add("account", a)
	}
	if len(lists) != 1 {
		return usagef("export: name one list: events, blocks, rewards, rewards-summary or nodes")
	}
	path, ok := exportLists[lists[0]]
	if !ok {
		return usagef("export: unknown list %q (events, blocks, rewards, rewards-summary or nodes)", lists[0])
	}
	switch *format {
	case "ndjson", "csv", "parquet":
	default:
		return usagef("export: --format %q: want ndjson, csv or parquet", *format)
	}
	if (*data == "") == (*base == "") {
		return usagef("export: give exactly one of --data and --url")
	}
	q.Set("format", *format)

	w := e.stdout
	var file *os.File
	if *out != "-" {
		// Exports hold what the data dir keeps private: owner only.
		f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		file, w = f, f
	}
	pw := &progressWriter{w: w}
	switch *format {
	case "ndjson":
		pw.countRows = true
	case "csv":
		pw.countRows, pw.headerLines = true, 1
	}
	stopProgress := pw.report(e.stderr)
	var err error
	if *data != "" {
		err = exportFromData(ctx, *data, path, q, pw)
	} else {
		if *token == "" {
			*token = e.getenv("EVINDEX_TOKEN")
		}
		err = exportFromURL(ctx, *base, *token, path, q, pw)
	}
	stopProgress()
	if file != nil {
		// A failed export leaves no partial file behind; -o may also name a
		// device (/dev/stdout), which is never removed.
		fi, serr := file.Stat()
		if cerr := file.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("export: %w", cerr)
		}
		if err != nil && serr == nil && fi.Mode().IsRegular() {
			os.Remove(*out)
		}
	}
	return apiErrorFlags(err, fs)
}

// exportFromData serves the request in-process over a read-only store, so
// the export is byte for byte what the API would send.
func exportFromData(ctx context.Context, dir, path string, q url.Values, w io.Writer) error {
	st, err := store.Open(dir, store.Options{ReadOnly: true})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("export: %w (a running evindex holds it: export with --url instead)", err)
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer st.Close()
	// The API logs why it cut a response short; that becomes the error.
	var apiLog bytes.Buffer
	h := httpapi.New(httpapi.Config{Store: st, Logger: zerolog.New(&apiLog).Level(zerolog.WarnLevel)}).Handler()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	// The API flushes after every page of rows it reads; handing back the
	// file's pages read so far at each flush keeps the resident set at
	// about one page of rows however big the file is.
	rw := &fileResponse{w: w, header: http.Header{}, flushed: st.ReleaseMapped}
	if cut := serveInProcess(h, rw, req); cut {
		if rw.err != nil {
			return fmt.Errorf("export: %w", rw.err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("export: interrupted: %w", ctx.Err())
		}
		return fmt.Errorf("export: stopped part way: %s", lastLoggedError(apiLog.Bytes()))
	}
	if rw.status >= 400 {
		return apiError(rw.status, []byte(rw.errBody.String()))
	}
	if rw.err != nil {
		return fmt.Errorf("export: %w", rw.err)
	}
	return nil
}

// serveInProcess runs the handler and reports whether it cut the response
// short: a streaming handler that fails after its first row panics with
// http.ErrAbortHandler so that an HTTP client sees a broken transfer; here
// that becomes an error instead of a crash.
func serveInProcess(h http.Handler, w http.ResponseWriter, r *http.Request) (cut bool) {
	defer func() {
		if v := recover(); v != nil {
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				cut = true
				return
			}
			panic(v)
		}
	}()
	h.ServeHTTP(w, r)
	return false
}

// lastLoggedError is the error field of the last JSON log line.
func lastLoggedError(log []byte) string {
	msg := "the database read failed"
	for line := range bytes.Lines(log) {
		var entry struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(line, &entry) == nil && entry.Error != "" {
			msg = entry.Error
		}
	}
	return msg
}

func exportFromURL(ctx context.Context, base, token, path string, q url.Values, w io.Writer) error {
	u, err := url.Parse(strings.TrimRight(base, "/") + path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return usagef("export: --url %q: want http://host:port", base)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("export: %s: give the API token with --token or EVINDEX_TOKEN", resp.Status)
		}
		return apiError(resp.StatusCode, body)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("export: interrupted: %w", ctx.Err())
		}
		return fmt.Errorf("export: stopped part way: %w", err)
	}
	return nil
}

// paramError is an API parameter the server rejected (invalid_argument).
type paramError struct{ param, msg string }

func (e *paramError) Error() string { return "export: " + e.param + ": " + e.msg }

// apiError turns an API error answer into the command's error. A rejected
// parameter becomes a paramError, which apiErrorFlags names as its flag.
func apiError(status int, body []byte) error {
	var answer struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &answer) != nil || answer.Error.Message == "" {
		return fmt.Errorf("export: %d %s: %s", status, http.StatusText(status), strings.TrimSpace(string(body)))
	}
	msg := answer.Error.Message
	if answer.Error.Code == "invalid_argument" {
		if param, rest, ok := strings.Cut(msg, ": "); ok && !strings.Contains(param, " ") {
			return &paramError{param, rest}
		}
		return usagef("export: %s", msg)
	}
	return fmt.Errorf("export: %s (%d %s)", msg, status, http.StatusText(status))
}

// apiErrorFlags makes a rejected API parameter a usage error (exit 2)
// naming the flag that set it: --from-time, not from_time.
func apiErrorFlags(err error, fs *flag.FlagSet) error {
	var pe *paramError
	if !errors.As(err, &pe) {
		return err
	}
	name := strings.ReplaceAll(pe.param, "_", "-")
	if fs.Lookup(name) == nil {
		return usagef("export: %s: %s", pe.param, pe.msg)
	}
	return usagef("export: --%s: %s", name, pe.msg)
}

// fileResponse is an http.ResponseWriter that streams the body to a file
// and keeps an error body for the message.
type fileResponse struct {
	w       io.Writer
	header  http.Header
	status  int
	errBody strings.Builder
	err     error
	// flushed runs at every flush: after each page of rows.
	flushed func()
}

func (f *fileResponse) Header() http.Header { return f.header }
func (f *fileResponse) WriteHeader(code int) {
	if f.status == 0 {
		f.status = code
	}
}
func (f *fileResponse) Write(p []byte) (int, error) {
	if f.status == 0 {
		f.status = http.StatusOK
	}
	if f.status >= 400 {
		return f.errBody.Write(p)
	}
	n, err := f.w.Write(p)
	if err != nil && f.err == nil {
		f.err = err
	}
	return n, err
}
func (f *fileResponse) Flush() {
	if f.flushed != nil {
		f.flushed()
	}
}

// progressWriter counts what an export writes and, on a terminal, shows
// it on one line of stderr.
type progressWriter struct {
	w io.Writer
	// countRows counts lines as rows (ndjson, csv) after headerLines.
	countRows   bool
	headerLines int64
	bytes       atomic.Int64
	lines       atomic.Int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.bytes.Add(int64(n))
	if p.countRows {
		p.lines.Add(int64(bytes.Count(b[:n], []byte{'\n'})))
	}
	return n, err
}

// report redraws the progress line every 200 ms until stop, which draws
// it a last time and ends the line. Off a terminal it does nothing, so
// scripts and logs see only what the command was asked for.
func (p *progressWriter) report(stderr io.Writer) (stop func()) {
	if !isTerminal(stderr) {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintf(stderr, "\r%s\n", p.line(time.Since(start)))
				return
			case <-t.C:
				fmt.Fprintf(stderr, "\r%s", p.line(time.Since(start)))
			}
		}
	}()
	return func() { close(done); <-finished }
}

func (p *progressWriter) line(elapsed time.Duration) string {
	mb := float64(p.bytes.Load()) / 1e6
	rate := mb / max(elapsed.Seconds(), 0.001)
	took := elapsed.Round(100 * time.Millisecond)
	if p.countRows {
		rows := max(p.lines.Load()-p.headerLines, 0)
		return fmt.Sprintf("exported %d rows, %.1f MB in %v (%.1f MB/s)   ", rows, mb, took, rate)
	}
	return fmt.Sprintf("exported %.1f MB in %v (%.1f MB/s)   ", mb, took, rate)
}
