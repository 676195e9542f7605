package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

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
	ListMissed        = "rewards-missed"
	ListMissedCover   = "rewards-missed-coverage"
	ListEpochTotals   = "rewards-epochs"
	ListAlerts        = "alerts"
)

// lists reads the API's lists from one store. The list endpoints and the
// export command reach it through WriteList.
type lists struct {
	st store.Store
	// configured are the sources the running daemon ingests (nil: none,
	// as for an export from a data directory). They exist before their
	// first record is stored.
	configured func() []store.SourceStatus
}

// sourceExists is nil when name is empty (no source filter), a stored
// source or a configured one, and otherwise a NotFoundError naming the
// sources there are: a misspelt source must not read as an empty list.
func (s lists) sourceExists(ctx context.Context, name string) error {
	return s.knownSource(ctx, "source", name)
}

// pathSourceExists is sourceExists for a source named in the path.
func (s lists) pathSourceExists(ctx context.Context, name string) error {
	return s.knownSource(ctx, "", name)
}

func (s lists) knownSource(ctx context.Context, param, name string) error {
	if name == "" {
		return nil
	}
	infos, err := s.st.Sources(ctx)
	if err != nil {
		return err
	}
	var names []string
	for i := range infos {
		names = append(names, infos[i].Name)
	}
	if s.configured != nil {
		for _, c := range s.configured() {
			if !slices.Contains(names, c.Name) {
				names = append(names, c.Name)
			}
		}
	}
	if slices.Contains(names, name) {
		return nil
	}
	slices.Sort(names)
	there := "there are no sources yet"
	if len(names) > 0 {
		there = "the sources are " + strings.Join(names, ", ")
	}
	return &NotFoundError{Param: param, Message: fmt.Sprintf("no source named %q%s; %s", name, suggest(name, names), there)}
}

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
	case ListMissed:
		return s.listMissed
	case ListMissedCover:
		return s.listMissedCoverage
	case ListEpochTotals:
		return s.listEpochTotals
	case ListAlerts:
		return s.listAlerts
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
func WriteList(ctx context.Context, st store.Store, list string, q url.Values, format string, w io.Writer) error {
	return lists{st: st}.write(ctx, list, q, format, w)
}

func (s lists) write(ctx context.Context, list string, q url.Values, format string, w io.Writer) error {
	write := s.writer(list)
	if write == nil {
		return &NotFoundError{Message: fmt.Sprintf("no list %q (%s, %s, %s, %s or %s)", list,
			ListEvents, ListBlocks, ListRewards, ListRewardSummary, ListNodes+", "+ListRejected+", "+ListMissed+", "+ListMissedCover+", "+ListEpochTotals+", "+ListAlerts)}
	}
	p := newParams(q)
	p.defaultFormat = format
	p.name = list
	return typed(write(ctx, p, w))
}

// lists is the server's lists: its store and configured sources.
func (s *Server) lists() lists { return lists{st: s.st, configured: s.sources} }

// handleList answers GET of a list endpoint with the list WriteList writes.
func (s *Server) handleList(list string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		q, err := parseQuery(r.URL.RawQuery)
		if err != nil {
			return err
		}
		return serveStream(w, r, func(w io.Writer) error {
			return s.lists().write(r.Context(), list, q, acceptFormat(r.Header.Get("Accept")), w)
		})
	}
}

// requestParams reads a request's query parameters, with the format its
// Accept header asks for as the default; name is what they select, for
// messages. A malformed query string is the params' first error.
func requestParams(r *http.Request, name string) *params {
	q, err := parseQuery(r.URL.RawQuery)
	p := newParams(q)
	if err != nil {
		p.fail(err)
	}
	p.name = name
	p.defaultFormat = acceptFormat(r.Header.Get("Accept"))
	return p
}
