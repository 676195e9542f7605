package main

import (
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sqliteServer answers the benchmark's queries from the SQLite peer with
// the same parameters and the same JSON shapes as evindex's /v1/events and
// /v1/rewards/summary, so both are timed doing the same work over HTTP.
type sqliteServer struct {
	db *sql.DB

	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func newSQLiteServer(db *sql.DB) *sqliteServer {
	return &sqliteServer{db: db, stmts: map[string]*sql.Stmt{}}
}

func (s *sqliteServer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/events", s.handleEvents)
	mux.HandleFunc("GET /v1/rewards/summary", s.handleSummary)
	return mux
}

func (s *sqliteServer) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.stmts {
		st.Close()
	}
}

// stmt prepares a query once and reuses it.
func (s *sqliteServer) stmt(q string) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.stmts[q]; ok {
		return st, nil
	}
	st, err := s.db.Prepare(q)
	if err != nil {
		return nil, err
	}
	s.stmts[q] = st
	return st, nil
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": "error", "message": msg}})
	_, _ = w.Write(append(b, '\n'))
}

func writeItems(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
}

// eventItem is evindex's /v1/events item.
type eventItem struct {
	Source     string          `json:"source"`
	Height     uint64          `json:"height"`
	BlockID    string          `json:"block_id"`
	BlockTime  *time.Time      `json:"block_time"`
	TxID       string          `json:"tx_id"`
	TxIndex    uint32          `json:"tx_index"`
	EventIndex uint32          `json:"event_index"`
	Type       string          `json:"type"`
	Payload    json.RawMessage `json:"payload"`
}

func (s *sqliteServer) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit: must be between 1 and 1000")
			return
		}
		limit = n
	}
	var (
		from   string
		where  []string
		args   []any
		order  string
		prefix = "e."
	)
	if a := q.Get("address"); a != "" {
		from = "event_addresses a JOIN events e ON e.source = a.source AND e.height = a.height AND e.tx_index = a.tx_index AND e.event_index = a.event_index"
		where, args = append(where, "a.address = ?"), append(args, a)
		prefix = "a."
	} else {
		from = "events e"
	}
	if t := q.Get("type"); t != "" {
		where, args = append(where, "e.type = ?"), append(args, t)
	}
	if src := q.Get("source"); src != "" {
		where, args = append(where, prefix+"source = ?"), append(args, src)
	}
	for _, p := range []struct{ name, op string }{{"from_height", ">="}, {"to_height", "<="}} {
		if v := q.Get(p.name); v != "" {
			h, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				writeError(w, http.StatusBadRequest, p.name+": must be a non-negative integer")
				return
			}
			where, args = append(where, prefix+"height "+p.op+" ?"), append(args, h)
		}
	}
	order = prefix + "source, " + prefix + "height, " + prefix + "tx_index, " + prefix + "event_index"
	query := "SELECT e.source, e.height, e.tx_index, e.event_index, e.block_id, e.block_time, e.tx_id, e.type, e.payload FROM " + from
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY " + order + " LIMIT ?"
	args = append(args, limit)
	st, err := s.stmt(query)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	rows, err := st.QueryContext(r.Context(), args...)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer rows.Close()
	items := make([]eventItem, 0, limit)
	for rows.Next() {
		var (
			it   eventItem
			nano int64
			pl   []byte
		)
		if err := rows.Scan(&it.Source, &it.Height, &it.TxIndex, &it.EventIndex, &it.BlockID, &nano, &it.TxID, &it.Type, &pl); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		t := time.Unix(0, nano).UTC()
		it.BlockTime = &t
		it.Payload = pl
		if len(pl) == 0 {
			it.Payload = json.RawMessage("null")
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	next := ""
	if len(items) == limit {
		last := items[len(items)-1]
		next = base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s|%d|%d|%d", last.Source, last.Height, last.TxIndex, last.EventIndex))
	}
	writeItems(w, struct {
		Items      []eventItem `json:"items"`
		NextCursor string      `json:"next_cursor"`
	}{items, next})
}

// summaryItem is evindex's /v1/rewards/summary item.
type summaryItem struct {
	BucketStart time.Time `json:"bucket_start"`
	BucketEnd   time.Time `json:"bucket_end"`
	Source      string    `json:"source"`
	Account     string    `json:"account"`
	Unit        string    `json:"unit"`
	Amount      string    `json:"amount"`
	RawAmount   string    `json:"raw_amount"`
	Count       uint64    `json:"count"`
}

const dayNanos = int64(24 * time.Hour)

// handleSummary groups one account's rewards (by account or alias) by UTC
// day with SQL, summing integer base units exactly.
func (s *sqliteServer) handleSummary(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if g := q.Get("group_by"); g != "" && g != "day" {
		writeError(w, http.StatusBadRequest, "group_by: only day is served here")
		return
	}
	account, source := q.Get("account"), q.Get("source")
	if account == "" || source == "" {
		writeError(w, http.StatusBadRequest, "account and source: required")
		return
	}
	from, to := int64(0), int64(1<<62)
	for _, p := range []struct {
		name string
		v    *int64
	}{{"from_time", &from}, {"to_time", &to}} {
		if v := q.Get(p.name); v != "" {
			t, err := parseTime(v)
			if err != nil {
				writeError(w, http.StatusBadRequest, p.name+": "+err.Error())
				return
			}
			*p.v = t.UnixNano()
		}
	}
	st, err := s.stmt(`SELECT time / ? AS day, source, account, unit, decimals, SUM(raw_amount), COUNT(*) FROM (
		SELECT source, account, time, id, unit, decimals, raw_amount FROM rewards
			WHERE source = ? AND account = ? AND time >= ? AND time < ?
		UNION
		SELECT r.source, r.account, r.time, r.id, r.unit, r.decimals, r.raw_amount FROM reward_aliases a
			JOIN rewards r ON r.source = a.source AND r.account = a.account AND r.time = a.time AND r.id = a.id
			WHERE a.alias = ? AND a.source = ? AND a.time >= ? AND a.time < ?
	) GROUP BY day, source, account, unit ORDER BY day, source, account, unit`)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	rows, err := st.QueryContext(r.Context(), dayNanos, source, account, from, to, account, source, from, to)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer rows.Close()
	items := []summaryItem{}
	for rows.Next() {
		var (
			it       summaryItem
			day, sum int64
			decimals int
		)
		if err := rows.Scan(&day, &it.Source, &it.Account, &it.Unit, &decimals, &sum, &it.Count); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		it.BucketStart = time.Unix(0, day*dayNanos).UTC()
		it.BucketEnd = it.BucketStart.Add(24 * time.Hour)
		it.RawAmount = strconv.FormatInt(sum, 10)
		it.Amount = formatUnits(big.NewInt(sum), decimals)
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeItems(w, struct {
		Items []summaryItem `json:"items"`
	}{items})
}

func parseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor a date", v)
	}
	return t, nil
}

// formatUnits renders base units as whole units with decimals digits.
func formatUnits(n *big.Int, decimals int) string {
	digits := n.String()
	sign := ""
	if strings.HasPrefix(digits, "-") {
		sign, digits = "-", digits[1:]
	}
	if decimals <= 0 {
		return sign + digits
	}
	if len(digits) <= decimals {
		digits = strings.Repeat("0", decimals-len(digits)+1) + digits
	}
	cut := len(digits) - decimals
	return sign + digits[:cut] + "." + digits[cut:]
}
