package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

// The fixture: three sources shaped like the real ones.
//
//	flow-main  blocks 1000..1999 (one per 10 s), 3 events per block
//	           (a RewardsPaid every 10th block), 8-decimal FLOW rewards
//	sm-node    layers 80640..80879 (5 min), 9-decimal SMH smesher rewards
//	           with smesher aliases, mainnet epochs, node statuses
//	presearch  hourly 18-decimal PRE period rewards for two nodes over a
//	           week, node statuses
const (
	flowSource  = "flow-main"
	smSource    = "sm-node"
	preSource   = "presearch"
	flowFrom    = 1000
	flowBlocks  = 1000
	flowPerBlk  = 3
	smFrom      = 80640
	smLayers    = 240
	preHours    = 7 * 24
	flowNodeA   = "b0d3f1e2a4c5b6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5"
	flowNodeB   = "c1e4f2a3b5d6c7e8f9a0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5a6"
	smCoinbase  = "sm1qqqqqqzcrmxf9ydhnlwy8dqk4qc3tt2wjln7pssu7uwx"
	smSmesher   = "4f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8"
	preNodeA    = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE/a1+Q9w=="
	preNodeB    = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEb2x7Lp0="
	stakingAddr = "8624b52f9ddcd04a"
)

var (
	flowStart   = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	smGenesis   = time.Date(2023, 7, 14, 8, 0, 0, 0, time.UTC)
	preStart    = time.Date(2026, 10, 26, 0, 0, 0, 0, time.UTC)
	rewardsType = "A." + stakingAddr + ".FlowIDTableStaking.RewardsPaid"
	depositType = "A.1654653399040a61.FlowToken.TokensDeposited"
)

func hexOf(prefix string, n uint64) string {
	return fmt.Sprintf("%s%060x", prefix, n)
}

func flowEvents(height uint64) []store.Event {
	t := flowStart.Add(time.Duration(height-flowFrom) * 10 * time.Second)
	var out []store.Event
	for i := range uint32(flowPerBlk) {
		e := store.Event{
			Source: flowSource, Height: height, BlockID: hexOf("bb01", height), BlockTime: t,
			TxID: hexOf("7a", height*10+uint64(i/2)), TxIndex: i / 2, EventIndex: i,
			Type: depositType, Contract: "A.1654653399040a61.FlowToken",
			Addresses: []string{fmt.Sprintf("%016x", 0xf8d6e0586b0a20c7+height%5)},
			Payload: json.RawMessage(fmt.Sprintf(`{"type":"Event","value":{"id":%q,"fields":[{"name":"amount","value":{"type":"UFix64","value":"0.%08d"}},{"name":"to","value":{"type":"Optional","value":{"type":"Address","value":"0x%016x"}}}]}}`,
				depositType, height, 0xf8d6e0586b0a20c7+height%5)),
		}
		if i == 2 && height%10 == 0 {
			node := flowNodeA
			if height%20 == 0 {
				node = flowNodeB
			}
			e.Type, e.Contract, e.Addresses = rewardsType, "A."+stakingAddr+".FlowIDTableStaking", []string{stakingAddr}
			e.Payload = json.RawMessage(fmt.Sprintf(`{"type":"Event","value":{"id":%q,"fields":[{"name":"nodeID","value":{"type":"String","value":%q}},{"name":"amount","value":{"type":"UFix64","value":%q}}]}}`,
				rewardsType, node, flowAmount(height)))
		}
		out = append(out, e)
	}
	return out
}

// flowRaw is the reward of block h in 10^-8 FLOW: 12.5 FLOW plus a
// height-dependent tail so sums exercise every digit.
func flowRaw(h uint64) *big.Int { return big.NewInt(1_250_000_000 + int64(h)*1_234_567) }

func flowAmount(h uint64) string { return formatBig(flowRaw(h), 8) }

func flowBatch(from, to uint64) store.Batch {
	b := store.Batch{Source: flowSource, Kind: "flow"}
	for h := from; h <= to; h++ {
		evs := flowEvents(h)
		b.Events = append(b.Events, evs...)
		b.Blocks = append(b.Blocks, store.Block{Source: flowSource, Height: h, BlockID: evs[0].BlockID, BlockTime: evs[0].BlockTime, EventCount: uint32(len(evs))})
		if h%10 == 0 {
			node := flowNodeA
			if h%20 == 0 {
				node = flowNodeB
			}
			b.Rewards = append(b.Rewards, store.Reward{
				Source: flowSource, Account: node, Kind: "flow_node_reward",
				ID: fmt.Sprintf("%d/%d/%d", h, 1, 2), Height: h, HasHeight: true,
				// Spread rewards over several days and months for summaries.
				Time:      flowStart.Add(time.Duration(h-flowFrom) * 97 * time.Minute),
				RawAmount: flowRaw(h).String(), Unit: "FLOW", Decimals: 8,
				Details: json.RawMessage(fmt.Sprintf(`{"node_id":%q,"tx_id":%q}`, node, hexOf("7a", h*10+1))),
			})
		}
	}
	// A network payout every 100 heights.
	for h := from; h <= to; h++ {
		if h%100 == 0 {
			b.EpochTotals = append(b.EpochTotals, store.EpochTotal{Source: flowSource, Epoch: h / 100, Height: h,
				Time: flowStart.Add(time.Duration(h-flowFrom) * 97 * time.Minute), RawTotal: "1500000000000", RawFromFees: "20000000000",
				RawMinted: "1480000000000", RawBurned: "2000000000", Unit: "FLOW", Decimals: 8})
		}
	}
	// Two quarantined records per batch: one whose raw bytes are text, one
	// whose are not.
	b.Rejected = append(b.Rejected,
		store.NewRejected(store.RecordEvent, from, "tx 0 event 7", "type", "contains a NUL byte", []byte("=cmd|' /C calc'!A0\x00")),
		store.NewRejected(store.RecordEvent, to, "tx 1 event 0", "payload", "not valid UTF-8", []byte("{\"a\":\"\xff\"}")))
	b.Checkpoint = &store.Checkpoint{Height: to, BlockID: hexOf("bb01", to), Time: flowStart.Add(time.Duration(to-flowFrom) * 10 * time.Second)}
	b.Coverage = &store.Range{From: from, To: to}
	return b
}

func smRaw(layer uint64) *big.Int {
	v := new(big.Int).SetUint64(12_345_678_901 + layer*1_000_003)
	return v
}

func smBatch() store.Batch {
	ep := &store.Epochs{Genesis: smGenesis, BlockDuration: 5 * time.Minute, BlocksPerEpoch: 4032}
	b := store.Batch{Source: smSource, Kind: "spacemesh", Epochs: ep, Meta: json.RawMessage(`{"hrp":"sm","network":"mainnet"}`)}
	for l := uint64(smFrom); l < smFrom+smLayers; l++ {
		t := smGenesis.Add(time.Duration(l) * 5 * time.Minute)
		b.Blocks = append(b.Blocks, store.Block{Source: smSource, Height: l, BlockID: hexOf("1a", l), BlockTime: t, Status: "applied"})
		if l%4 == 0 {
			b.Rewards = append(b.Rewards, store.Reward{
				Source: smSource, Account: smCoinbase, Kind: "smesher_reward", ID: smSmesher + "/" + fmt.Sprint(l),
				Height: l, HasHeight: true, Time: t, RawAmount: smRaw(l).String(), Unit: "SMH", Decimals: 9,
				Aliases: []string{smSmesher},
				Details: json.RawMessage(fmt.Sprintf(`{"smesher":%q,"layer_reward":"12000000000"}`, smSmesher)),
			})
		}
		if l%60 == 0 {
			on := true
			b.Nodes = append(b.Nodes, store.NodeStatus{Source: smSource, Node: smSmesher, Time: t, Connected: &on, Synced: &on,
				Details: json.RawMessage(fmt.Sprintf(`{"connected_peers":%d,"is_synced":true,"synced_layer":%d,"top_layer":%d,"verified_layer":%d}`, 20+l%7, l, l, l-1))})
		}
	}
	// The smesher may propose in every even layer and earns in every
	// fourth: the others are misses, not_included where it proposed.
	el := map[uint64]*store.Eligibility{}
	for l := uint64(smFrom); l < smFrom+smLayers; l += 2 {
		e := el[l/4032]
		if e == nil {
			e = &store.Eligibility{Source: smSource, Account: smSmesher, Epoch: l / 4032, FinalAfter: 10, Time: smGenesis}
			el[l/4032] = e
		}
		e.Heights = append(e.Heights, store.EligibleHeight{Height: l, Count: 1})
		if l%8 == 2 {
			b.Proposals = append(b.Proposals, store.Proposal{Source: smSource, Account: smSmesher, Height: l, ID: hexOf("99", l), Time: smGenesis})
		}
	}
	for _, e := range el {
		b.Eligibilities = append(b.Eligibilities, *e)
	}
	last := uint64(smFrom + smLayers - 1)
	b.Checkpoint = &store.Checkpoint{Height: last, BlockID: hexOf("1a", last), Time: smGenesis.Add(time.Duration(last) * 5 * time.Minute)}
	b.Coverage = &store.Range{From: smFrom, To: last}
	return b
}

// preRaw is node n's reward for hour h in 10^-18 PRE: beyond 64 bits.
func preRaw(n, h int) *big.Int {
	v, _ := new(big.Int).SetString("1234567890123456789", 10)
	return v.Add(v, big.NewInt(int64(n*1_000_000_007+h*999_983)))
}

func preBatch() store.Batch {
	b := store.Batch{Source: preSource, Kind: "presearch"}
	for h := range preHours {
		start := preStart.Add(time.Duration(h) * time.Hour)
		for n, node := range []string{preNodeA, preNodeB} {
			b.Rewards = append(b.Rewards, store.Reward{
				Source: preSource, Account: node, Kind: "presearch_period", ID: start.Format(time.RFC3339),
				Time: start.Add(time.Hour), PeriodStart: start, PeriodEnd: start.Add(time.Hour),
				RawAmount: preRaw(n, h).String(), Unit: "PRE", Decimals: 18,
				Details: json.RawMessage(`{"total_pre_earned":1.23,"avg_uptime_score":100,"avg_reliability_score":97.5,"avg_latency_ms":250}`),
			})
			if h%24 == 0 {
				up, synced := h%48 == 0, true
				b.Nodes = append(b.Nodes, store.NodeStatus{Source: preSource, Node: node, Time: start, Connected: &up, Synced: &synced,
					Details: json.RawMessage(`{"meta":{"description":"home","url":null},"status":{"connected":true,"blocked":false},"period":null}`)})
			}
		}
	}
	end := preStart.Add(preHours * time.Hour)
	b.Checkpoint = &store.Checkpoint{Height: uint64(end.Unix()), Time: end}
	// One node_down episode resolved, one firing, as the rules write them.
	down := store.Alert{Rule: "node_down", Subject: preNodeB, StartsAt: preStart.Add(25 * time.Hour), State: store.AlertResolved,
		EndsAt: preStart.Add(49 * time.Hour), Labels: map[string]string{"alertname": "node_down", "source": preSource, "node": preNodeB},
		Annotations: map[string]string{"summary": "presearch: node is not connected"}}
	again := down
	again.StartsAt, again.State, again.EndsAt = preStart.Add(73*time.Hour), store.AlertFiring, time.Time{}
	b.Alerts = []store.Alert{down, again}
	return b
}

// fill stores the whole fixture through the store's only write path.
func fill(t testing.TB, st store.Store) {
	t.Helper()
	err := st.Apply(context.Background(),
		flowBatch(flowFrom, flowFrom+flowBlocks/2-1), flowBatch(flowFrom+flowBlocks/2, flowFrom+flowBlocks-1),
		smBatch(), preBatch())
	if err != nil {
		t.Fatalf("fill store: %v", err)
	}
}

// statuses is a settable Config.Sources.
type statuses struct {
	mu  sync.Mutex
	all []store.SourceStatus
}

func (s *statuses) get() []store.SourceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]store.SourceStatus(nil), s.all...)
}

func (s *statuses) set(all ...store.SourceStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = all
}

var testNow = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

type env struct {
	t      *testing.T
	st     store.Store
	srv    *httptest.Server
	logs   *storetest.LogBuffer
	status *statuses
	token  string
}

type envOption func(*Config)

func withToken(tok string) envOption { return func(c *Config) { c.Token = tok } }

// newEnv serves a filled store on loopback.
func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	st := storetest.Open(t)
	fill(t, st)
	return newEnvStore(t, st, opts...)
}

// newBoltEnv is newEnv on a bbolt file whatever storetest.BackendEnv
// says, for the tests of the hot backup, which only the file has.
func newBoltEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	st := storetest.MustOpen(t)
	fill(t, st)
	return newEnvStore(t, st, opts...)
}

// backupStatus is what /v1/admin/backup answers on the env's store: 200
// with a hot copy, 501 on a backend without one (PostgreSQL).
func (e *env) backupStatus() int {
	if _, ok := e.st.(store.Backuper); ok {
		return http.StatusOK
	}
	return http.StatusNotImplemented
}

func newEnvStore(t *testing.T, st store.Store, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, st: st, logs: &storetest.LogBuffer{}, status: &statuses{}}
	cfg := Config{
		Store:   st,
		Sources: e.status.get,
		Logger:  zerolog.New(e.logs).Level(zerolog.DebugLevel),
		Now:     func() time.Time { return testNow },
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.token = cfg.Token
	e.srv = httptest.NewServer(New(cfg).Handler())
	t.Cleanup(e.srv.Close)
	return e
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

// get requests path (with query) carrying the env's token, if any.
func (e *env) get(path string, headers ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("GET %s: read body: %v", path, err)
	}
	return response{res.StatusCode, res.Header, body}
}

// getOK is get that fails the test unless the answer is 200.
func (e *env) getOK(path string, headers ...string) response {
	e.t.Helper()
	r := e.get(path, headers...)
	if r.status != http.StatusOK {
		e.t.Fatalf("GET %s: status %d: %s", path, r.status, r.body)
	}
	return r
}

type page struct {
	Items      []map[string]any `json:"items"`
	NextCursor string           `json:"next_cursor"`
}

// allPages follows next_cursor from path until the end and returns every
// item, checking that no page is larger than the limit asked for.
func (e *env) allPages(path string, limit int) []map[string]any {
	e.t.Helper()
	var all []map[string]any
	cursor := ""
	for range 100_000 {
		u := fmt.Sprintf("%s%slimit=%d", path, sep(path), limit)
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		var p page
		e.getOK(u).json(e.t, &p)
		if len(p.Items) > limit {
			e.t.Fatalf("GET %s: %d items, limit %d", u, len(p.Items), limit)
		}
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			return all
		}
		cursor = p.NextCursor
	}
	e.t.Fatalf("GET %s: pagination does not end", path)
	return nil
}

func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}

func decodeJSON(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
