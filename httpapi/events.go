package httpapi

import (
	"context"
	"io"

	"github.com/evindex/evindex/store"
)

// listEvents writes the events of GET /v1/events.
func (s lists) listEvents(ctx context.Context, p *params, w io.Writer) error {
	q := store.EventQuery{
		Source:   p.str("source"),
		Types:    p.eventTypes("type"),
		Contract: normalType(p.str("contract")),
		Address:  p.id("address"),
		TxID:     p.hexID("tx_id"),
		Desc:     p.desc(),
	}
	q.FromHeight, q.ToHeight = p.heights()
	lr := p.listRequest()
	if err := p.check(); err != nil {
		return err
	}
	if err := s.sourceExists(ctx, q.Source); err != nil {
		return err
	}
	return writeList(ctx, w, listing[store.Event]{
		name:  "events",
		query: q,
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
