package main

import (
	"context"
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

func runExportCmd(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "export", "(--data DIR | --url URL) [flags] events|blocks|rewards|rewards-summary|nodes",
		"Writes every matching row of a list, with the same filters as the API, as ndjson, csv or parquet.\n"+
			"--data reads a stopped database directly; --url asks a running evindex.\n"+
			"Example: evindex export --data ./data --format csv --source sm-node -o rewards.csv rewards")
	data := fs.String("data", "", "data directory of a stopped evindex")
	base := fs.String("url", "", "base URL of a running evindex, e.g. http://127.0.0.1:8080")
	token := fs.String("token", "", "bearer token for --url (default $EVINDEX_TOKEN)")
	format := fs.String("format", "ndjson", "ndjson, csv or parquet")
	out := fs.String("o", "-", "output file; - is stdout")
	for _, name := range []string{"source", "contract", "address", "tx_id", "from_height", "to_height",
		"from_time", "to_time", "order", "limit", "group_by", "tz"} {
		fs.String(strings.ReplaceAll(name, "_", "-"), "", "filter: the API's "+name+" parameter")
	}
	var types, accounts stringList
	fs.Var(&types, "type", "filter: event type (repeatable)")
	fs.Var(&accounts, "account", "filter: reward account (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
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
	if fs.NArg() != 1 {
		return usagef("export: name one list: events, blocks, rewards, rewards-summary or nodes")
	}
	path, ok := exportLists[fs.Arg(0)]
	if !ok {
		return usagef("export: unknown list %q (events, blocks, rewards, rewards-summary or nodes)", fs.Arg(0))
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
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		file, w = f, f
	}
	pw := &progressWriter{w: w}
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
		if cerr := file.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("export: %w", cerr)
		}
		if err != nil {
			os.Remove(*out)
		}
	}
	return err
}

// exportFromData serves the request in-process over a read-only store, so
// the export is byte for byte what the API would send.
func exportFromData(ctx context.Context, dir, path string, q url.Values, w io.Writer) error {
	st, err := store.Open(dir, store.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer st.Close()
	h := httpapi.New(httpapi.Config{Store: st, Logger: zerolog.Nop()}).Handler()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	rw := &fileResponse{w: w, header: http.Header{}}
	h.ServeHTTP(rw, req)
	if rw.status >= 400 {
		return fmt.Errorf("export: %s", strings.TrimSpace(rw.errBody.String()))
	}
	return rw.err
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
		return fmt.Errorf("export: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// fileResponse is an http.ResponseWriter that streams the body to a file
// and keeps an error body for the message.
type fileResponse struct {
	w       io.Writer
	header  http.Header
	status  int
	errBody strings.Builder
	err     error
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
func (f *fileResponse) Flush() {}

// progressWriter counts bytes and, on a terminal, shows them with the rate.
type progressWriter struct {
	w     io.Writer
	bytes atomic.Int64
	lines atomic.Int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.bytes.Add(int64(n))
	p.lines.Add(int64(strings.Count(string(b[:n]), "\n")))
	return n, err
}

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
				fmt.Fprintf(stderr, "\r%s\n", p.line(start))
				return
			case <-t.C:
				fmt.Fprintf(stderr, "\r%s", p.line(start))
			}
		}
	}()
	return func() { close(done); <-finished }
}

func (p *progressWriter) line(start time.Time) string {
	mb := float64(p.bytes.Load()) / 1e6
	el := time.Since(start).Seconds()
	return fmt.Sprintf("exported %d lines, %.1f MB (%.1f MB/s)   ", p.lines.Load(), mb, mb/max(el, 0.001))
}
