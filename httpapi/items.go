package httpapi

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/evindex/evindex/store"
)

// The JSON shapes of API.md's list items, and their CSV columns.

// timeLayout is how every time is written in JSON, NDJSON and CSV: RFC
// 3339 with exactly six fractional digits, the microseconds Parquet's
// TIMESTAMP holds. One fixed width lets DuckDB's and pandas' readers infer
// a timestamp column instead of text (RFC3339Nano drops trailing zeros,
// so its rows differ in length and format).
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// apiTime is a time as the API writes it (timeLayout).
type apiTime time.Time

// MarshalJSON writes the time in timeLayout.
func (t apiTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).Format(timeLayout) + `"`), nil
}

// UnmarshalJSON reads any RFC 3339 time, as clients (and tests) send.
func (t *apiTime) UnmarshalJSON(b []byte) error {
	return (*time.Time)(t).UnmarshalJSON(b)
}

// jsonTime is t in UTC, or nil (JSON null) for the zero time.
func jsonTime(t time.Time) *apiTime {
	if t.IsZero() {
		return nil
	}
	u := apiTime(t.UTC())
	return &u
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func jsonRaw(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}

func csvRaw(b json.RawMessage) string {
	if len(b) == 0 {
		return ""
	}
	return string(b)
}

func csvBool(b *bool) string {
	if b == nil {
		return ""
	}
	return strconv.FormatBool(*b)
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

type eventJSON struct {
	Source     string          `json:"source"`
	Height     uint64          `json:"height"`
	BlockID    string          `json:"block_id"`
	BlockTime  *apiTime        `json:"block_time"`
	TxID       string          `json:"tx_id"`
	TxIndex    uint32          `json:"tx_index"`
	EventIndex uint32          `json:"event_index"`
	Type       string          `json:"type"`
	Payload    json.RawMessage `json:"payload"`
}

func eventItem(e *store.Event) any {
	return eventJSON{e.Source, e.Height, e.BlockID, jsonTime(e.BlockTime), e.TxID, e.TxIndex, e.EventIndex, e.Type, jsonRaw(e.Payload)}
}

var eventHeader = []string{"source", "height", "block_id", "block_time", "tx_id", "tx_index", "event_index", "type", "payload"}

func eventRow(e *store.Event) []string {
	return []string{e.Source, u64(e.Height), e.BlockID, csvTime(e.BlockTime), e.TxID,
		u64(uint64(e.TxIndex)), u64(uint64(e.EventIndex)), e.Type, csvRaw(e.Payload)}
}

type blockJSON struct {
	Source     string   `json:"source"`
	Height     uint64   `json:"height"`
	BlockID    string   `json:"block_id"`
	BlockTime  *apiTime `json:"block_time"`
	EventCount uint32   `json:"event_count"`
}

func blockItem(b *store.Block) any {
	return blockJSON{b.Source, b.Height, b.BlockID, jsonTime(b.BlockTime), b.EventCount}
}

var blockHeader = []string{"source", "height", "block_id", "block_time", "event_count"}

func blockRow(b *store.Block) []string {
	return []string{b.Source, u64(b.Height), b.BlockID, csvTime(b.BlockTime), u64(uint64(b.EventCount))}
}

// reward is a stored reward with its amount in whole units, computed once
// when the page is read.
type reward struct {
	store.Reward
	amount string
}

func rewardsOf(p store.Page[store.Reward]) (store.Page[reward], error) {
	out := store.Page[reward]{Items: make([]reward, len(p.Items)), Next: p.Next}
	for i := range p.Items {
		r := &p.Items[i]
		a, err := formatAmount(r.RawAmount, r.Decimals)
		if err != nil {
			return out, err
		}
		out.Items[i] = reward{*r, a}
	}
	return out, nil
}

type rewardJSON struct {
	Source      string          `json:"source"`
	Account     string          `json:"account"`
	Kind        string          `json:"kind"`
	Height      *uint64         `json:"height"`
	Time        *apiTime        `json:"time"`
	PeriodStart *apiTime        `json:"period_start"`
	PeriodEnd   *apiTime        `json:"period_end"`
	Amount      string          `json:"amount"`
	RawAmount   string          `json:"raw_amount"`
	Unit        string          `json:"unit"`
	Details     json.RawMessage `json:"details"`
}

func rewardItem(r *reward) any {
	var h *uint64
	if r.HasHeight {
		v := r.Height
		h = &v
	}
	return rewardJSON{r.Source, r.Account, r.Kind, h, jsonTime(r.Time), jsonTime(r.PeriodStart), jsonTime(r.PeriodEnd),
		r.amount, r.RawAmount, r.Unit, jsonRaw(r.Details)}
}

var rewardHeader = []string{"source", "account", "kind", "height", "time", "period_start", "period_end", "amount", "raw_amount", "unit", "details"}

func rewardRow(r *reward) []string {
	h := ""
	if r.HasHeight {
		h = u64(r.Height)
	}
	return []string{r.Source, r.Account, r.Kind, h, csvTime(r.Time), csvTime(r.PeriodStart), csvTime(r.PeriodEnd),
		r.amount, r.RawAmount, r.Unit, csvRaw(r.Details)}
}

type nodeJSON struct {
	Source    string          `json:"source"`
	Node      string          `json:"node"`
	Time      *apiTime        `json:"time"`
	Connected *bool           `json:"connected"`
	Synced    *bool           `json:"synced"`
	Details   json.RawMessage `json:"details"`
}

func nodeItem(n *store.NodeStatus) any {
	return nodeJSON{n.Source, n.Node, jsonTime(n.Time), n.Connected, n.Synced, jsonRaw(n.Details)}
}

var nodeHeader = []string{"source", "node", "time", "connected", "synced", "details"}

func nodeRow(n *store.NodeStatus) []string {
	return []string{n.Source, n.Node, csvTime(n.Time), csvBool(n.Connected), csvBool(n.Synced), csvRaw(n.Details)}
}

// summary is one summary row with its amount in whole units.
type summary struct {
	store.SummaryRow
	amount, raw string
}

type summaryJSON struct {
	BucketStart apiTime `json:"bucket_start"`
	BucketEnd   apiTime `json:"bucket_end"`
	Epoch       *uint64 `json:"epoch,omitempty"`
	Source      string  `json:"source"`
	Account     string  `json:"account"`
	Unit        string  `json:"unit"`
	Amount      string  `json:"amount"`
	RawAmount   string  `json:"raw_amount"`
	Count       uint64  `json:"count"`
	Missed      uint64  `json:"missed"`
}

// Summary buckets keep their time zone (tz): a day in Europe/Berlin starts
// at 00:00+01:00, which is what a reader of the bucket expects.
func summaryItem(s *summary) any {
	return summaryJSON{apiTime(s.BucketStart), apiTime(s.BucketEnd), s.Epoch, s.Source, s.Account, s.Unit, s.amount, s.raw, s.Count, s.Missed}
}

var summaryHeader = []string{"bucket_start", "bucket_end", "source", "account", "unit", "amount", "raw_amount", "count", "missed"}

func summaryRow(s *summary) []string {
	return []string{s.BucketStart.Format(timeLayout), s.BucketEnd.Format(timeLayout),
		s.Source, s.Account, s.Unit, s.amount, s.raw, u64(s.Count), u64(s.Missed)}
}

var summaryEpochHeader = append([]string{"epoch"}, summaryHeader...)

func summaryEpochRow(s *summary) []string {
	e := ""
	if s.Epoch != nil {
		e = u64(*s.Epoch)
	}
	return append([]string{e}, summaryRow(s)...)
}
