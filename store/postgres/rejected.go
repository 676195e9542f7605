package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/evindex/evindex/store"
)

// Rejected returns one page of quarantined records in (source, height,
// key) order, or reversed with q.Desc. It returns store.ErrCursorInvalid
// for a cursor that is not from this list.
func (s *Store) Rejected(ctx context.Context, q store.RejectedQuery) (store.Page[store.Rejected], error) {
	after, err := decodeCursor(cursorRejected, q.Cursor)
	if err != nil {
		return store.Page[store.Rejected]{}, err
	}
	if !storable(q.Source) {
		return store.Page[store.Rejected]{}, nil
	}
	limit := pageLimit(q.Limit)
	var a args
	var where []string
	keys := []string{"source", "height", "key"}
	if after != nil {
		k, ok := parseRejectedKey(after)
		if !ok {
			return store.Page[store.Rejected]{}, store.ErrCursorInvalid
		}
		where = append(where, keyset(&a, keys, []any{k.source, k.height, k.key}, q.Desc))
	}
	where = append(where, heightFilters(&a, "", q.Source, q.FromHeight, q.ToHeight)...)
	sql := `SELECT source, height, key, kind, field, reason, raw, raw_size, time_ns, counted, last_key FROM rejected WHERE ` + and(where) +
		` ORDER BY ` + orderBy(keys, q.Desc) + ` LIMIT ` + strconv.Itoa(limit+1)
	rows, err := s.read.Query(ctx, sql, a...)
	if err != nil {
		return store.Page[store.Rejected]{}, s.redact(fmt.Errorf("list rejected: %w", err))
	}
	items, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Rejected, error) {
		var r store.Rejected
		var h, size, tns, counted int64
		err := row.Scan(&r.Source, &h, &r.Key, &r.Kind, &r.Field, &r.Reason, &r.Raw, &size, &tns, &counted, &r.LastKey)
		r.Height, r.RawSize, r.Time, r.Counted = uint64(h), int(size), fromNanos(tns), uint64(counted)
		if r.Counted > 0 {
			r.Raw = nil // a counting record keeps no raw bytes, as on bbolt
		}
		return r, err
	})
	if err != nil {
		return store.Page[store.Rejected]{}, s.redact(fmt.Errorf("list rejected: %w", err))
	}
	return pageOf(items, limit, cursorRejected, func(r *store.Rejected) []byte {
		return rejectedKey{r.Source, int64(r.Height), r.Key}.bytes()
	}), nil
}
