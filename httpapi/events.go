package httpapi

import (
	"context"
	"net/http"

	"github.com/evindex/evindex/store"
)

func (s *Server) handleListEvents(w http.ResponseWriter, r *http.Request) error {
	p := newParams(r.URL.Query())
	q := store.EventQuery{
		Source:   p.str("source"),
		Types:    p.list("type"),
		Contract: p.str("contract"),
		Address:  p.str("address"),
		TxID:     p.hexID("tx_id"),
		Desc:     p.desc(),
	}
	q.FromHeight, q.ToHeight = p.heights()
	lr := p.listRequest(r)
	if p.err != nil {
		return p.err
	}
	return serveList(w, r, listing[store.Event]{
		name: "events",
		fetch: func(ctx context.Context, cursor string, limit int) (store.Page[store.Event], error) {
			q.Cursor, q.Limit = cursor, limit
			return s.st.Events(ctx, q)
		},
		item:    eventItem,
		header:  eventHeader,
		row:     eventRow,
		parquet: eventParquet,
	}, lr)
}
