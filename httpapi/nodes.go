package httpapi

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"

	"github.com/go-chi/chi/v5"

	"github.com/evindex/evindex/store"
)

// listNodes writes the latest status of each node, GET /v1/nodes.
func (s lists) listNodes(ctx context.Context, p *params, w io.Writer) error {
	source := p.str("source")
	// The latest snapshot per node is a short list: one read, no cursor;
	// limit keeps the first nodes.
	lr := listRequest{format: p.format()}
	lr.limit, lr.limitGiven = p.limit()
	if err := p.check(); err != nil {
		return err
	}
	if err := s.sourceExists(ctx, source); err != nil {
		return err
	}
	limit, limitGiven := lr.limit, lr.limitGiven
	lr.limitGiven = false
	return writeList(ctx, w, listing[store.NodeStatus]{
		name: "nodes",
		fetch: func(ctx context.Context, _ string, _ int) (store.Page[store.NodeStatus], error) {
			nodes, err := s.st.Nodes(ctx, source)
			if limitGiven && len(nodes) > limit {
				nodes = nodes[:limit]
			}
			return store.Page[store.NodeStatus]{Items: nodes}, err
		},
		item:    nodeItem,
		header:  nodeHeader,
		row:     nodeRow,
		parquet: nodeParquet,
	}, lr)
}

func (s *Server) handleNodeHistory(w http.ResponseWriter, r *http.Request) error {
	p := requestParams(r, "node history")
	q := store.NodeHistoryQuery{Source: pathParam(r, "source"), Node: pathParam(r, "node"), Desc: p.desc()}
	q.FromTime, q.ToTime = p.times()
	lr := p.listRequest()
	if err := p.check(); err != nil {
		return err
	}
	node, err := s.findNode(r.Context(), q.Source, q.Node)
	if err != nil {
		return err
	}
	q.Node = node
	return serveList(w, r, listing[store.NodeStatus]{
		name:  "node-history",
		query: q,
		fetch: func(ctx context.Context, cursor string, limit int) (store.Page[store.NodeStatus], error) {
			q.Cursor, q.Limit = cursor, limit
			return s.st.NodeHistory(ctx, q)
		},
		item:    nodeItem,
		header:  nodeHeader,
		row:     nodeRow,
		parquet: nodeParquet,
	}, lr)
}

// pathParam is a path parameter, unescaped: the router matches the raw
// path when it holds escapes, so a node id with a slash (%2F) arrives
// escaped.
func pathParam(r *http.Request, name string) string {
	v := chi.URLParam(r, name)
	if r.URL.RawPath == "" {
		return v
	}
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

// findNode is the stored id of a node given in any of the forms idForms
// accepts, or a 404 for a node the store has never seen, so a typo in a
// node id is not mistaken for an empty history.
func (s *Server) findNode(ctx context.Context, source, node string) (string, error) {
	if err := s.lists().pathSourceExists(ctx, source); err != nil {
		return "", err
	}
	nodes, err := s.st.Nodes(ctx, source)
	if err != nil {
		return "", err
	}
	forms := idForms(node)
	for i := range nodes {
		if slices.Contains(forms, nodes[i].Node) {
			return nodes[i].Node, nil
		}
	}
	return "", notFound("no node %q of source %q", node, source)
}
