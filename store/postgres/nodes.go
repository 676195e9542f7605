package postgres

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/evindex/evindex/store"
)

func scanNode(row pgx.CollectableRow) (store.NodeStatus, error) {
	var n store.NodeStatus
	var tns int64
	var details []byte
	err := row.Scan(&n.Source, &n.Node, &tns, &n.Connected, &n.Synced, &details)
	n.Time = fromNanos(tns)
	if len(details) > 0 {
		n.Details = details
	}
	return n, err
}

// Nodes returns the latest snapshot of every node of source (of every
// source when source is empty), ordered by source and node.
func (s *Store) Nodes(ctx context.Context, source string) ([]store.NodeStatus, error) {
	if !storable(source) {
		return nil, nil
	}
	rows, err := s.read.Query(ctx, `SELECT source, node, time_ns, connected, synced, details FROM node_latest
		WHERE $1 = '' OR source = $1 ORDER BY source, node`, source)
	if err != nil {
		return nil, s.redact(fmt.Errorf("list nodes: %w", err))
	}
	out, err := pgx.CollectRows(rows, scanNode)
	if err != nil {
		return nil, s.redact(fmt.Errorf("list nodes: %w", err))
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// NodeHistory returns one page of a node's snapshots in time order.
func (s *Store) NodeHistory(ctx context.Context, q store.NodeHistoryQuery) (store.Page[store.NodeStatus], error) {
	after, err := decodeCursor(cursorNodes, q.Cursor)
	if err != nil {
		return store.Page[store.NodeStatus]{}, err
	}
	if !storable(q.Source, q.Node) {
		return store.Page[store.NodeStatus]{}, nil
	}
	limit := pageLimit(q.Limit)
	var a args
	where := []string{"source = " + a.add(q.Source), "node = " + a.add(q.Node)}
	if after != nil {
		k, ok := parseNodeKey(after)
		if !ok {
			return store.Page[store.NodeStatus]{}, store.ErrCursorInvalid
		}
		where = append(where, keyset(&a, []string{"source", "node", "time_key"}, []any{k.source, k.node, k.timeKey}, q.Desc))
	}
	if !q.FromTime.IsZero() {
		where = append(where, "time_key >= "+a.add(timeKey(q.FromTime)), "time_ns >= "+a.add(q.FromTime.UnixNano()))
	}
	if !q.ToTime.IsZero() {
		where = append(where, "time_ns < "+a.add(q.ToTime.UnixNano()))
	}
	sql := `SELECT source, node, time_ns, connected, synced, details FROM node_status WHERE ` + and(where) +
		` ORDER BY ` + orderBy([]string{"source", "node", "time_key"}, q.Desc) + ` LIMIT ` + strconv.Itoa(limit+1)
	rows, err := s.read.Query(ctx, sql, a...)
	if err != nil {
		return store.Page[store.NodeStatus]{}, s.redact(fmt.Errorf("node history: %w", err))
	}
	items, err := pgx.CollectRows(rows, scanNode)
	if err != nil {
		return store.Page[store.NodeStatus]{}, s.redact(fmt.Errorf("node history: %w", err))
	}
	return pageOf(items, limit, cursorNodes, func(n *store.NodeStatus) []byte {
		return nodeKey{n.Source, n.Node, timeKey(n.Time)}.bytes()
	}), nil
}
