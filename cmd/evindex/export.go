package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/evindex/evindex/httpapi"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
)

// exportLists maps the export command's LIST argument to its API path.
var exportLists = map[string]string{
	"events":                  "/v1/events",
	"blocks":                  "/v1/blocks",
	"rewards":                 "/v1/rewards",
	"rewards-summary":         "/v1/rewards/summary",
	"nodes":                   "/v1/nodes",
	"rejected":                "/v1/rejected",
	"rewards-missed":          "/v1/rewards/missed",
	"rewards-missed-coverage": "/v1/rewards/missed/coverage",
}

// exportFilters are the API parameters the export command takes as flags
// (with dashes for underscores), each with its help text.
var exportFilters = []struct{ param, help string }{
	{"source", "only this source (events, blocks, rewards, rewards-summary, nodes, rejected)"},
	{"contract", "events of this contract, e.g. A.8624b52f9ddcd04a.FlowIDTableStaking"},
	{"address", "events that name this address"},
	{"tx_id", "events of this transaction"},
	{"kind", "rewards of these kinds, comma-separated: flow_node_reward, flow_delegator_reward, smesher_reward, presearch_period (rewards, rewards-summary)"},
	{"from_height", "first height, inclusive (events, blocks, rewards, rejected)"},
	{"to_height", "last height, inclusive (events, blocks, rewards, rejected)"},
	{"from_time", "first time, inclusive: RFC 3339 or a date such as 2026-01-02 (rewards, rewards-summary)"},
	{"to_time", "end time, exclusive (rewards, rewards-summary)"},
	{"order", "asc or desc (default asc)"},
	{"limit", "stop after this many rows, at most 1000 (default: every matching row)"},
	{"group_by", "rewards-summary buckets: day, week, month or epoch (default day)"},
	{"tz", "rewards-summary time zone for day, week and month buckets, e.g. Europe/Berlin (default UTC)"},
}

// exportRequest is one export command line, parsed.
type exportRequest struct {
	list string
	// query holds the list's filters as API parameters (from_time, not
	// --from-time).
	query             url.Values
	format            string
	data, base, token string
	out               string
	flags             *flag.FlagSet
}

func runExportCmd(ctx context.Context, e env, args []string) error {
	req, err := parseExport(e, args)
	if err != nil {
		return err
	}
	return req.flagError(req.run(ctx, e))
}

// parseExport reads the command line; every error is a usage error.
func parseExport(e env, args []string) (*exportRequest, error) {
	fs := newFlagSet(e, "export", "(--data-dir DIR | --url URL) [flags] events|blocks|rewards|rewards-summary|nodes",
		`Writes every matching row of one list as ndjson (default), csv (with a header row)
or parquet, to -o FILE or stdout. The rows, columns and filters are those of the
list's API endpoint (GET /v1/events, /v1/blocks, /v1/rewards, /v1/rewards/summary,
/v1/nodes; see /openapi.json). Rows are read and written a page of 1000 at a time,
so memory stays small however many there are. On a terminal, stderr shows the
rows and bytes written so far.

  --data-dir DIR  read the database of a stopped evindex (read-only)
  --url URL    ask a running evindex (token from --token or $EVINDEX_TOKEN)

Amounts come twice: amount in whole units as a decimal string, and raw_amount,
the exact integer in base units (also a string: Presearch amounts exceed 64 bits).

Examples:
  evindex export --data-dir ./data --format csv -o rewards.csv rewards
  evindex export --url http://127.0.0.1:8080 --format parquet --source sm-node \
      --from-time 2026-01-01 -o sm-rewards.parquet rewards
  evindex export --data-dir ./data --format csv --group-by month --tz Europe/Berlin \
      --account <node id> rewards-summary`)
	req := &exportRequest{query: url.Values{}, flags: fs}
	fs.StringVar(&req.data, "data-dir", "", "data directory of a stopped evindex")
	aliasFlag(fs, "data", "data-dir")
	fs.StringVar(&req.base, "url", "", "base URL of a running evindex, e.g. http://127.0.0.1:8080")
	fs.StringVar(&req.token, "token", "", "bearer token for --url (default $EVINDEX_TOKEN)")
	fs.StringVar(&req.format, "format", "ndjson", "ndjson, csv or parquet")
	fs.StringVar(&req.out, "o", "-", "output file; - is stdout")
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
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		lists = append(lists, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	// Every filter flag that was given becomes the API parameter of its name.
	fs.Visit(func(fl *flag.Flag) {
		name := strings.ReplaceAll(fl.Name, "-", "_")
		switch name {
		case "type", "account", "data", "data_dir", "url", "token", "format", "o":
			return
		}
		req.query.Set(name, fl.Value.String())
	})
	for _, t := range types {
		req.query.Add("type", t)
	}
	for _, a := range accounts {
		req.query.Add("account", a)
	}
	if len(lists) != 1 {
		return nil, usagef("export: name one list: events, blocks, rewards, rewards-summary or nodes")
	}
	req.list = lists[0]
	if _, ok := exportLists[req.list]; !ok {
		return nil, usagef("export: unknown list %q (events, blocks, rewards, rewards-summary or nodes)", req.list)
	}
	switch req.format {
	case "ndjson", "csv", "parquet":
	default:
		return nil, usagef("export: --format %q: want ndjson, csv or parquet", req.format)
	}
	if (req.data == "") == (req.base == "") {
		return nil, usagef("export: give exactly one of --data-dir and --url")
	}
	if req.token == "" {
		req.token = e.getenv("EVINDEX_TOKEN")
	}
	return req, nil
}

// run writes the export to -o or stdout, with the progress line on a
// terminal. A failed export leaves no partial file behind, and an earlier
// file of the same name stays as it was.
func (r *exportRequest) run(ctx context.Context, e env) error {
	w := e.stdout
	var out *outputFile
	if r.out != "-" {
		var err error
		if out, err = createOutput(r.out); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		defer out.abandon()
		w = out.f
	}
	pw := &progressWriter{w: w}
	switch r.format {
	case "ndjson":
		pw.countRows = true
	case "csv":
		pw.countRows, pw.headerLines = true, 1
	}
	stopProgress := pw.report(e.stderr)
	var err error
	if r.data != "" {
		err = exportFromData(ctx, r.data, r.list, r.query, r.format, pw)
	} else {
		err = exportFromURL(ctx, r.base, r.token, exportLists[r.list], r.query, r.format, pw)
	}
	stopProgress()
	if out != nil && err == nil {
		if err = out.commit(); err != nil {
			err = fmt.Errorf("export: %w", err)
		}
	}
	return err
}

// exportFromData writes the list straight from a read-only store, through
// the same operation the API's list endpoints answer with, so the export
// is byte for byte what the API would send.
func exportFromData(ctx context.Context, dir, list string, q url.Values, format string, w io.Writer) error {
	st, err := bolt.Open(dir, bolt.Options{ReadOnly: true})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("export: %w (a running evindex holds it: export with --url instead)", err)
	}
	if err != nil {
		return dataError(err, dir)
	}
	defer st.Close()
	// Handing back the file's pages read so far after every page of rows
	// keeps the resident set at about one page of rows however big the
	// file is.
	err = httpapi.WriteList(ctx, st, list, q, format, pageReleaser{w, st.ReleaseMapped})
	var (
		pe *httpapi.ParamError
		nf *httpapi.NotFoundError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe):
		return pe
	case errors.As(err, &nf) && nf.Param != "":
		return nf
	case ctx.Err() != nil:
		return fmt.Errorf("export: interrupted: %w", ctx.Err())
	}
	return dataError(err, dir)
}

// dataError is the command's one line for a failure reading dir: a
// damaged file is named (the store's error does) and the whole-file check
// suggested.
func dataError(err error, dir string) error {
	if errors.Is(err, store.ErrCorrupt) {
		return fmt.Errorf("export: %w (evindex check --data-dir %s examines the whole file)", err, dir)
	}
	return fmt.Errorf("export: %w", err)
}

// pageReleaser is the export's output; WriteList flushes it after each
// page of rows, and release runs there.
type pageReleaser struct {
	io.Writer
	release func()
}

func (p pageReleaser) Flush() { p.release() }

// exportFromURL asks a running evindex for the list at path.
func exportFromURL(ctx context.Context, base, token, path string, q url.Values, format string, w io.Writer) error {
	u, err := apiURL("export", base, path)
	if err != nil {
		return err
	}
	q = maps.Clone(q)
	q.Set("format", format)
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
	if err := expectType("export", u, resp, httpapi.FormatType(format)); err != nil {
		return err
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("export: interrupted: %w", ctx.Err())
		}
		return fmt.Errorf("export: stopped part way: %w", err)
	}
	return nil
}

// apiError turns an API error answer into the command's error. A rejected
// parameter becomes an httpapi.ParamError, which flagError names as its
// flag.
func apiError(status int, body []byte) error {
	var answer struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Param   string `json:"param"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &answer) != nil || answer.Error.Message == "" {
		return fmt.Errorf("export: %d %s: %s", status, http.StatusText(status), strings.TrimSpace(string(body)))
	}
	msg := answer.Error.Message
	if answer.Error.Code == "invalid_argument" {
		// The message names the parameter first ("from_time: must be ..."):
		// what follows it is the message of the flag.
		if p := answer.Error.Param; p != "" {
			return &httpapi.ParamError{Param: p, Message: strings.TrimPrefix(msg, p+": ")}
		}
		return usagef("export: %s", msg)
	}
	if answer.Error.Code == "not_found" && answer.Error.Param != "" {
		return &httpapi.NotFoundError{Param: answer.Error.Param, Message: strings.TrimPrefix(msg, answer.Error.Param+": ")}
	}
	return fmt.Errorf("export: %s (%d %s)", msg, status, http.StatusText(status))
}

// flagError makes a rejected list parameter a usage error (exit 2) naming
// the flag that set it: --from-time, not from_time. A source that does not
// exist is a runtime failure (exit 1) naming --source, from --data and
// --url alike.
func (r *exportRequest) flagError(err error) error {
	var (
		pe *httpapi.ParamError
		nf *httpapi.NotFoundError
	)
	if errors.As(err, &nf) && nf.Param != "" {
		return fmt.Errorf("export: --%s: %s", strings.ReplaceAll(nf.Param, "_", "-"), nf.Message)
	}
	if !errors.As(err, &pe) {
		return err
	}
	name := strings.ReplaceAll(pe.Param, "_", "-")
	if pe.Param == "" || r.flags.Lookup(name) == nil {
		return usagef("export: %v", pe)
	}
	return usagef("export: --%s: %s", name, pe.Message)
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
