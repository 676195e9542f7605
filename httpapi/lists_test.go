package httpapi

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
)

// TestWriteListErrorsAreTyped checks what a caller without HTTP (the
// export command) gets from WriteList for a bad request: the parameter's
// name as a field, not inside a message to take apart, and nothing
// written.
func TestWriteListErrorsAreTyped(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, list, query, format string
		param                     string
	}{
		{"BadTime", ListRewards, "from_time=yesterday", "csv", "from_time"},
		{"ReversedHeights", ListEvents, "from_height=10&to_height=5", "ndjson", "to_height"},
		{"BadCursor", ListBlocks, "cursor=not-a-cursor", "ndjson", "cursor"},
		{"LimitAboveAPage", ListNodes, "limit=5000", "csv", "limit"},
		{"EpochWithoutEpochs", ListRewardSummary, "group_by=epoch&source=flow-main", "csv", "group_by"},
		{"BadZone", ListRewardSummary, "tz=Mars/Olympus", "ndjson", "tz"},
		{"BadFormatArgument", ListRewards, "", "xlsx", "format"},
		{"BadFormatParameter", ListRewards, "format=xlsx", "csv", "format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			err = WriteList(context.Background(), e.st, tt.list, q, tt.format, &out)
			var pe *ParamError
			if !errors.As(err, &pe) || pe.Param != tt.param || pe.Message == "" {
				t.Fatalf("WriteList(%s?%s): %#v, want a ParamError for %s", tt.list, tt.query, err, tt.param)
			}
			if out.Len() != 0 {
				t.Fatalf("a refused list wrote %q", out.String())
			}
		})
	}

	var nf *NotFoundError
	if err := WriteList(context.Background(), e.st, "payouts", nil, "ndjson", &bytes.Buffer{}); !errors.As(err, &nf) || !strings.Contains(err.Error(), "events") {
		t.Fatalf("an unknown list: %v, want a NotFoundError naming the lists", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var ie *InternalError
	if err := WriteList(ctx, e.st, ListEvents, nil, "ndjson", &bytes.Buffer{}); !errors.Is(err, context.Canceled) || errors.As(err, &ie) {
		t.Fatalf("an ended context: %v, want the context's error", err)
	}
}

// pageCounter is an output that counts WriteList's flushes.
type pageCounter struct {
	bytes.Buffer
	flushes int
}

func (p *pageCounter) Flush() { p.flushes++ }

// TestWriteListFlushesEachPage checks that an export hands each page to
// its writer as soon as it is read: the export command releases the
// file's mapped pages there, the API sends the page to the client.
func TestWriteListFlushesEachPage(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		query   string
		rows    int
		flushes int
	}{
		{"", 3000, 3},
		{"limit=7&order=desc", 7, 1},
	} {
		q, _ := url.ParseQuery(tt.query)
		var out pageCounter
		if err := WriteList(context.Background(), e.st, ListEvents, q, "ndjson", &out); err != nil {
			t.Fatal(err)
		}
		if rows := bytes.Count(out.Bytes(), []byte("\n")); rows != tt.rows || out.flushes != tt.flushes {
			t.Fatalf("events?%s: %d rows in %d flushes, want %d in %d", tt.query, rows, out.flushes, tt.rows, tt.flushes)
		}
	}
}

// TestErrorBodyNamesTheParameter checks that a 400 names the rejected
// parameter in a field of its own (what `evindex export --url` turns into
// the flag's name), and that other errors carry none.
func TestErrorBodyNamesTheParameter(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		path   string
		status int
		param  string
	}{
		{"/v1/rewards?from_time=yesterday", 400, "from_time"},
		{"/v1/events?cursor=not-a-cursor&format=csv", 400, "cursor"},
		{"/v1/rewards/summary?group_by=epoch&source=flow-main", 400, "group_by"},
		{"/v1/blocks/flow-main/abc", 400, "height"},
		{"/v1/blocks/flow-main/999999999", 404, ""},
	} {
		r := e.get(tt.path)
		var body struct{ Error errorDetail }
		r.json(t, &body)
		if r.status != tt.status || body.Error.Param != tt.param || !strings.HasPrefix(body.Error.Message, tt.param) {
			t.Errorf("GET %s: %d %s, want %d with param %q", tt.path, r.status, r.body, tt.status, tt.param)
		}
	}
}
