package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/evindex/evindex/store"
)

// A list query is a keyset page: rows after the cursor's key tuple in
// key order (before it with Desc), limit+1 of them, so the page knows
// whether another follows. When a query can be answered from several index
// ranges (several types, one address in every source), each range is its
// own ordered, limited branch and the union is cut to the page: every
// branch is an index range scan that stops after limit+1 rows, as the
// bbolt store merges its cursors.

// args collects a statement's parameters.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

func pageLimit(n int) int {
	if n <= 0 {
		return store.DefaultLimit
	}
	return min(n, store.MaxLimit)
}

// keyset is the condition "after the cursor" on the key columns.
func keyset(a *args, cols []string, vals []any, desc bool) string {
	op := ">"
	if desc {
		op = "<"
	}
	ps := make([]string, len(vals))
	for i, v := range vals {
		ps[i] = a.add(v)
	}
	return "(" + strings.Join(cols, ", ") + ") " + op + " (" + strings.Join(ps, ", ") + ")"
}

// orderBy is the ORDER BY list of the key columns.
func orderBy(cols []string, desc bool) string {
	if !desc {
		return strings.Join(cols, ", ")
	}
	return strings.Join(cols, " DESC, ") + " DESC"
}

func and(conds []string) string {
	if len(conds) == 0 {
		return "true"
	}
	return strings.Join(conds, " AND ")
}

// sourceNames lists every source, by name.
func sourceNames(ctx context.Context, db queryer) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT name FROM sources ORDER BY name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const eventSelect = `e.source, e.height, e.tx_index, e.event_index, e.block_id, e.block_time_ns, e.tx_id, e.type, e.contract, e.addresses, e.payload`

var eventKeys = []string{"source", "height", "tx_index", "event_index"}

func prefixed(p string, cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = p + c
	}
	return out
}

// Events returns one page of events matching q, in identity order
// (source, height, tx index, event index), or reversed with q.Desc. It
// returns store.ErrCursorInvalid for a cursor that is not from this list.
func (s *Store) Events(ctx context.Context, q store.EventQuery) (store.Page[store.Event], error) {
	after, err := decodeCursor(cursorEvents, q.Cursor)
	if err != nil {
		return store.Page[store.Event]{}, err
	}
	var from *eventKey
	if after != nil {
		k, ok := parseEventKey(after)
		if !ok {
			return store.Page[store.Event]{}, store.ErrCursorInvalid
		}
		from = &k
	}
	if !storable(append([]string{q.Source, q.Contract, q.Address, q.TxID}, q.Types...)...) {
		return store.Page[store.Event]{}, nil
	}
	out, err := s.events(ctx, &q, from)
	if err != nil {
		return store.Page[store.Event]{}, s.redact(fmt.Errorf("list events: %w", err))
	}
	return out, nil
}

func (s *Store) events(ctx context.Context, q *store.EventQuery, after *eventKey) (store.Page[store.Event], error) {
	limit := pageLimit(q.Limit)
	var a args
	// The filters every branch applies (the bbolt store's matches).
	var filters []string
	filters = heightFilters(&a, "e.", q.Source, q.FromHeight, q.ToHeight)
	types := slices.Compact(slices.Sorted(slices.Values(q.Types)))
	if len(types) > 0 {
		filters = append(filters, "e.type = ANY ("+a.add(types)+"::text[])")
	}
	if q.Contract != "" {
		filters = append(filters, "e.contract = "+a.add(q.Contract))
	}
	if q.Address != "" {
		filters = append(filters, a.add(q.Address)+" = ANY (e.addresses)")
	}
	if q.TxID != "" {
		// The hash finds the rows through events_by_tx_hash.
		p := a.add(q.TxID)
		filters = append(filters, "e.tx_id = "+p, "e.tx_id <> ''", "hashtext(e.tx_id) = hashtext("+p+")")
	}
	// The cursor's tuple, compared with the columns of the table whose
	// index the branch walks.
	afterOn := func(alias string) string {
		if after == nil {
			return "true"
		}
		return keyset(&a, prefixed(alias, eventKeys), []any{after.source, after.height, after.tx, after.ev}, q.Desc)
	}
	// Index ranges read per source when heights bound them, as in bbolt.
	sources := []string{q.Source}
	if q.Source == "" && (q.FromHeight != nil || q.ToHeight != nil) {
		var err error
		if sources, err = sourceNames(ctx, s.read); err != nil {
			return store.Page[store.Event]{}, err
		}
	}
	perSource := func(src string) string {
		if src == "" || q.Source != "" {
			return ""
		}
		return " AND e.source = " + a.add(src)
	}
	order := orderBy(prefixed("e.", eventKeys), q.Desc)
	lim := strconv.Itoa(limit + 1)
	branch := func(from, where string) string {
		return "(SELECT " + eventSelect + " FROM " + from + " WHERE " + where + " AND " + afterOn("e.") + " AND " + and(filters) +
			" ORDER BY " + order + " LIMIT " + lim + ")"
	}
	var branches []string
	switch {
	case q.TxID != "":
		branches = append(branches, branch("events e", "true"))
	case q.Contract != "" && len(types) == 0:
		// Events whose contract is not a prefix of their type are in
		// events_by_contract; the others are found under each type that
		// starts with the contract (the migration 4 split).
		typed, err := typesUnder(ctx, s.read, q.Contract)
		if err != nil {
			return store.Page[store.Event]{}, err
		}
		for _, src := range sources {
			branches = append(branches, branch("events e", contractIndexed+perSource(src)))
			for _, t := range typed {
				branches = append(branches, branch("events e", "e.type = "+a.add(t)+perSource(src)))
			}
		}
	case q.Address != "":
		addr := a.add(q.Address)
		for _, src := range sources {
			// Ordered by the address table's key, which is the events'.
			// The heights bound the address table's range too: on the
			// events alone they filter after the join, and a page at a
			// high from_height walked every entry of the address below it
			// (p50 8.6 ms, p99 24 ms at 2M events in evbench).
			where := "a.address = " + addr + strings.ReplaceAll(perSource(src), "e.source", "a.source")
			if hf := heightFilters(&a, "a.", q.Source, q.FromHeight, q.ToHeight); len(hf) > 0 {
				where += " AND " + and(hf)
			}
			from := "event_addresses a JOIN events e ON (e.source, e.height, e.tx_index, e.event_index) = (a.source, a.height, a.tx_index, a.event_index)"
			br := "(SELECT " + eventSelect + " FROM " + from + " WHERE " + where + " AND " + afterOn("a.") + " AND " + and(filters) +
				" ORDER BY " + orderBy(prefixed("a.", eventKeys), q.Desc) + " LIMIT " + lim + ")"
			branches = append(branches, br)
		}
	case len(types) > 0:
		for _, t := range types {
			for _, src := range sources {
				branches = append(branches, branch("events e", "e.type = "+a.add(t)+perSource(src)))
			}
		}
	default:
		for _, src := range sources {
			branches = append(branches, branch("events e", "true"+perSource(src)))
		}
	}
	sql := branches[0]
	if len(branches) > 1 {
		sql = "SELECT * FROM (" + strings.Join(branches, " UNION ALL ") + ") e ORDER BY " + order + " LIMIT " + lim
	}
	rows, err := s.read.Query(ctx, sql, a...)
	if err != nil {
		return store.Page[store.Event]{}, err
	}
	items, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return store.Page[store.Event]{}, err
	}
	return pageOf(items, limit, cursorEvents, func(e *store.Event) []byte {
		return eventKey{e.Source, int64(e.Height), int64(e.TxIndex), int64(e.EventIndex)}.bytes()
	}), nil
}

// contractIndexed is the predicate of the partial index events_by_contract
// (migration 4), spelled as it is there so the planner uses the index.
const contractIndexed = `e.contract <> '' AND NOT (starts_with(e.type, e.contract) AND e.type <> e.contract)`

// typesUnder lists the event types that extend prefix (start with it and
// are longer), seeking from one to the next through events_by_type.
func typesUnder(ctx context.Context, db queryer, prefix string) ([]string, error) {
	hi, bounded := textAfterPrefix(prefix)
	var a args
	p := a.add(prefix)
	upper := "starts_with(type, " + p + ")"
	if bounded {
		upper = "type < " + a.add(hi) // a bound the index can stop at
	}
	rows, err := db.Query(ctx, `WITH RECURSIVE t(type) AS (
			SELECT min(type) FROM events WHERE type > `+p+` AND `+upper+`
			UNION ALL
			SELECT (SELECT min(e.type) FROM events e WHERE e.type > t.type AND `+strings.ReplaceAll(upper, "type", "e.type")+`)
			FROM t WHERE t.type IS NOT NULL)
		SELECT type FROM t WHERE type IS NOT NULL`, a...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// textAfterPrefix returns the least text greater than every text that
// starts with prefix (its last code point incremented; UTF-8 byte order
// is code point order), and false when there is none.
func textAfterPrefix(prefix string) (string, bool) {
	rs := []rune(prefix)
	for i := len(rs) - 1; i >= 0; i-- {
		switch r := rs[i]; {
		case r == utf8.MaxRune:
			continue
		case r == 0xD7FF: // the surrogates are not text
			rs[i] = 0xE000
		default:
			rs[i] = r + 1
		}
		return string(rs[:i+1]), true
	}
	return "", false
}

// heightFilters are the conditions on a source and an inclusive height
// range, on columns of table alias p ("e." or "").
func heightFilters(a *args, p, source string, from, to *uint64) []string {
	var f []string
	if source != "" {
		f = append(f, p+"source = "+a.add(source))
	}
	if from != nil {
		if *from > maxHeight {
			return append(f, "false")
		}
		f = append(f, p+"height >= "+a.add(int64(*from)))
	}
	if to != nil && *to <= maxHeight {
		f = append(f, p+"height <= "+a.add(int64(*to)))
	}
	return f
}

// maxHeight is the largest height the store holds (int8).
const maxHeight = 1<<63 - 1

// pageOf cuts the limit+1 rows of a query to a page with the cursor of
// its last row when more follow.
func pageOf[T any](items []T, limit int, kind byte, key func(*T) []byte) store.Page[T] {
	var p store.Page[T]
	if len(items) > limit {
		items = items[:limit]
		p.Next = encodeCursor(kind, key(&items[limit-1]))
	}
	p.Items = items
	return p
}

func scanEvent(row pgx.CollectableRow) (store.Event, error) {
	var e store.Event
	var h, tx, ev, bt int64
	var payload []byte
	err := row.Scan(&e.Source, &h, &tx, &ev, &e.BlockID, &bt, &e.TxID, &e.Type, &e.Contract, &e.Addresses, &payload)
	e.Height, e.TxIndex, e.EventIndex, e.BlockTime = uint64(h), uint32(tx), uint32(ev), fromNanos(bt)
	if len(e.Addresses) == 0 {
		e.Addresses = nil
	}
	if len(payload) > 0 {
		e.Payload = payload
	}
	return e, err
}

const blockSelect = `source, height, block_id, block_time_ns, event_count, status`

func scanBlock(row pgx.CollectableRow) (store.Block, error) {
	var b store.Block
	var h, bt, n int64
	err := row.Scan(&b.Source, &h, &b.BlockID, &bt, &n, &b.Status)
	b.Height, b.BlockTime, b.EventCount = uint64(h), fromNanos(bt), uint32(n)
	return b, err
}

// Blocks returns one page of blocks in (source, height) order.
func (s *Store) Blocks(ctx context.Context, q store.BlockQuery) (store.Page[store.Block], error) {
	after, err := decodeCursor(cursorBlocks, q.Cursor)
	if err != nil {
		return store.Page[store.Block]{}, err
	}
	if !storable(q.Source) {
		return store.Page[store.Block]{}, nil
	}
	limit := pageLimit(q.Limit)
	var a args
	var where []string
	if after != nil {
		k, ok := parseBlockKey(after)
		if !ok {
			return store.Page[store.Block]{}, store.ErrCursorInvalid
		}
		where = append(where, keyset(&a, []string{"source", "height"}, []any{k.source, k.height}, q.Desc))
	}
	where = append(where, heightFilters(&a, "", q.Source, q.FromHeight, q.ToHeight)...)
	sql := `SELECT ` + blockSelect + ` FROM blocks WHERE ` + and(where) +
		` ORDER BY ` + orderBy([]string{"source", "height"}, q.Desc) + ` LIMIT ` + strconv.Itoa(limit+1)
	rows, err := s.read.Query(ctx, sql, a...)
	if err != nil {
		return store.Page[store.Block]{}, s.redact(fmt.Errorf("list blocks: %w", err))
	}
	items, err := pgx.CollectRows(rows, scanBlock)
	if err != nil {
		return store.Page[store.Block]{}, s.redact(fmt.Errorf("list blocks: %w", err))
	}
	return pageOf(items, limit, cursorBlocks, func(b *store.Block) []byte { return blockKey{b.Source, int64(b.Height)}.bytes() }), nil
}

// Block returns one block, or store.ErrNotFound.
func (s *Store) Block(ctx context.Context, source string, height uint64) (store.Block, error) {
	if height > maxHeight || !storable(source) {
		return store.Block{}, fmt.Errorf("block %s/%d: %w", source, height, store.ErrNotFound)
	}
	rows, err := s.read.Query(ctx, `SELECT `+blockSelect+` FROM blocks WHERE source = $1 AND height = $2`, source, int64(height))
	if err != nil {
		return store.Block{}, s.redact(fmt.Errorf("block %s/%d: %w", source, height, err))
	}
	b, err := pgx.CollectExactlyOneRow(rows, scanBlock)
	if err == pgx.ErrNoRows {
		return store.Block{}, fmt.Errorf("block %s/%d: %w", source, height, store.ErrNotFound)
	}
	if err != nil {
		return store.Block{}, s.redact(fmt.Errorf("block %s/%d: %w", source, height, err))
	}
	return b, nil
}
