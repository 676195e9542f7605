package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/evindex/evindex/store"
)

func (s *Server) handleListBlocks(w http.ResponseWriter, r *http.Request) error {
	p := newParams(r.URL.Query())
	q := store.BlockQuery{Source: p.str("source"), Desc: p.desc()}
	q.FromHeight, q.ToHeight = p.heights()
	lr := p.listRequest(r)
	if p.err != nil {
		return p.err
	}
	return serveList(w, r, listing[store.Block]{
		name: "blocks",
		fetch: func(ctx context.Context, cursor string, limit int) (store.Page[store.Block], error) {
			q.Cursor, q.Limit = cursor, limit
			return s.st.Blocks(ctx, q)
		},
		item:    blockItem,
		header:  blockHeader,
		row:     blockRow,
		parquet: blockParquet,
	}, lr)
}

func (s *Server) handleGetBlock(w http.ResponseWriter, r *http.Request) error {
	source := pathParam(r, "source")
	height, err := strconv.ParseUint(pathParam(r, "height"), 10, 64)
	if err != nil {
		return invalidParam("height", "must be a non-negative integer")
	}
	b, err := s.st.Block(r.Context(), source, height)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("no block %d of source %q", height, source)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, blockItem(&b))
	return nil
}
