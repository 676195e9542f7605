package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/evindex/evindex/store"
)

// The lists WriteList writes, named as the export command and the
// exports' file names spell them.
const (
	ListEvents        = "events"
	ListBlocks        = "blocks"
	ListRewards       = "rewards"
	ListRewardSummary = "rewards-summary"
	ListNodes         = "nodes"
	ListRejected      = "rejected"
)

// lists reads the API's lists from one store. The list endpoints and the
// export command reach it through WriteList.
type lists struct{ st *store.Store }

// writer is the function that writes the named list, or nil.
func (s lists) writer(list string) func(ctx context.Context, p *params, w io.Writer) error {
	switch list {
	case ListEvents:
		return s.listEvents
	case ListBlocks:
		return s.listBlocks
	case ListRewards:
		return s.listRewards
	case ListRewardSummary:
		return s.listRewardSummary
	case ListNodes:
		return s.listNodes
	case ListRejected:
		return s.listRejected
	}
	return nil
}

// WriteList writes the rows of one list (ListEvents, ListBlocks, ...) that
// match q, the list endpoint's query parameters (API.md), to w: one page
// as JSON, or every matching row page by page in ndjson, csv or parquet,
// each page read in its own short read transaction so memory stays
// constant. format applies when q has no format parameter; empty means
// JSON. When w is an http.Flusher it is flushed after each page.
//
// Nothing is written before the first page has been read. The error is a
// *ParamError for a parameter the list rejects, a *NotFoundError for an
// unknown list, the context's error when ctx ends, and otherwise an
// *InternalError wrapping the cause (a damaged file wraps store.ErrCorrupt).
func WriteList(ctx context.Context, st *store.Store, list string, q url.Values, format string, w io.Writer) error {
	write := lists{st}.writer(list)
	if write == nil {
		return &NotFoundError{Message: fmt.Sprintf("no list %q (%s, %s, %s, %s or %s)", list,
			ListEvents, ListBlocks, ListRewards, ListRewardSummary, ListNodes+", "+ListRejected)}
	}
	p := newParams(q)
	p.defaultFormat = format
	return typed(write(ctx, p, w))
}

// handleList answers GET of a list endpoint with WriteList.
func (s *Server) handleList(list string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return serveStream(w, r, func(w io.Writer) error {
			return WriteList(r.Context(), s.st, list, r.URL.Query(), acceptFormat(r.Header.Get("Accept")), w)
		})
	}
}

// requestParams reads a request's query parameters, with the format its
// Accept header asks for as the default.
func requestParams(r *http.Request) *params {
	p := newParams(r.URL.Query())
	p.defaultFormat = acceptFormat(r.Header.Get("Accept"))
	return p
}
