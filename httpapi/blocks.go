package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/evindex/evindex/store"
)

// listBlocks writes the blocks of GET /v1/blocks.
func (s lists) listBlocks(ctx context.Context, p *params, w io.Writer) error {
	q := store.BlockQuery{Source: p.str("source"), Desc: p.desc()}
	q.FromHeight, q.ToHeight = p.heights()
	lr := p.listRequest()
	if err := p.check(); err != nil {
		return err
	}
	if err := s.sourceExists(ctx, q.Source); err != nil {
		return err
	}
	return writeList(ctx, w, listing[store.Block]{
		name:  "blocks",
		query: q,
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
	if err := noParams(r, "a block"); err != nil {
		return err
	}
	source := pathParam(r, "source")
	height, err := strconv.ParseUint(pathParam(r, "height"), 10, 64)
	if err != nil {
		return invalidParam("height", "must be a non-negative integer")
	}
	if err := s.lists().pathSourceExists(r.Context(), source); err != nil {
		return err
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
