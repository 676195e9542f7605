package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/evindex/evindex/httpapi"
	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/postgres"
)

// Query names, as keyed in the results.
const (
	queryByType    = "events_by_type"
	queryByAddress = "events_by_address"
	queryByHeight  = "events_by_height"
	querySummary   = "rewards_summary"
)

var queryNames = []string{queryByType, queryByAddress, queryByHeight, querySummary}

// summaryAccount is the staking node whose year of daily rewards the
// summary query reads (node and delegator payments).
var summaryAccount = flowsim.NodeIDs()[0]

// queryPaths returns n request paths for a query, with parameters drawn
// from rng: a 100-row page at a random height for the event queries, a
// year by day for the summary.
func queryPaths(name string, n int, top uint64, rng *rand.Rand) []string {
	types := []string{
		flowsim.FlowTokenType("TokensWithdrawn"),
		flowsim.FlowTokenType("TokensDeposited"),
		"A." + flowsim.NFTContract + ".NonFungibleToken.Deposited",
		"A." + flowsim.FlowFeesContract + ".FlowFees.FeesDeducted",
		"A." + flowsim.DefaultStakingContract + ".FlowIDTableStaking.RewardsPaid",
	}
	accounts := flowsim.Accounts()
	height := func() uint64 { return 1 + rng.Uint64N(max(top, 51)-50) }
	out := make([]string, n)
	for i := range out {
		v := url.Values{"source": {sourceName}}
		path := "/v1/events"
		switch name {
		case queryByType:
			v.Set("type", types[rng.IntN(len(types))])
			v.Set("from_height", fmt.Sprint(height()))
			v.Set("limit", "100")
		case queryByAddress:
			v.Set("address", accounts[rng.IntN(len(accounts))])
			v.Set("from_height", fmt.Sprint(height()))
			v.Set("limit", "100")
		case queryByHeight:
			h := height()
			v.Set("from_height", fmt.Sprint(h))
			v.Set("to_height", fmt.Sprint(h+49))
			v.Set("limit", "100")
		case querySummary:
			path = "/v1/rewards/summary"
			v.Set("account", summaryAccount)
			v.Set("group_by", "day")
			v.Set("from_time", benchGenesis.Format(time.DateOnly))
			v.Set("to_time", benchGenesis.AddDate(1, 0, 0).Format(time.DateOnly))
		}
		out[i] = path + "?" + v.Encode()
	}
	return out
}

// queries serves the evindex query database through httpapi and the
// SQLite one through an equivalent handler, each on its own loopback
// listener, and times the same requests against both, alternating.
func (b *bench) queries(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := bolt.Open(b.path("evindex"), bolt.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer st.Close()
	evLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	api := httpapi.New(httpapi.Config{Store: st, Logger: zerolog.Nop(), Gatherer: prometheus.NewRegistry()})
	served := make(chan error, 2)
	go func() { served <- api.Serve(ctx, evLn) }()

	db, err := openSQLite(filepath.Join(b.path("sqlite"), sqliteFileName), false)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(4)
	peer := newSQLiteServer(db)
	defer peer.Close()
	sqLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	sqSrv := &http.Server{Handler: peer.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { served <- sqSrv.Serve(sqLn) }()
	defer sqSrv.Close()

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	defer client.CloseIdleConnections()
	type system struct {
		name, base string
		p50, p99   map[string]float64
	}
	systems := []system{
		{"evindex", "http://" + evLn.Addr().String(), b.res.QueryP50MS, b.res.QueryP99MS},
		{"sqlite", "http://" + sqLn.Addr().String(), b.res.SQLiteQueryP50MS, b.res.SQLiteQueryP99MS},
	}
	if b.pgDSN != "" {
		pgst, err := postgres.Open(ctx, b.pgDSN, postgres.Options{})
		if err != nil {
			return err
		}
		defer pgst.Close()
		pgLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		pgAPI := httpapi.New(httpapi.Config{Store: pgst, Logger: zerolog.Nop(), Gatherer: prometheus.NewRegistry()})
		pgServed := make(chan error, 1)
		go func() { pgServed <- pgAPI.Serve(ctx, pgLn) }()
		defer func() { cancel(); <-pgServed }()
		systems = append(systems, system{"postgresql", "http://" + pgLn.Addr().String(), b.res.PGQueryP50MS, b.res.PGQueryP99MS})
	}
	rng := rand.New(rand.NewPCG(uint64(b.cfg.Seed), 42))
	warmup := max(b.cfg.QuerySamples/10, 5)
	for _, name := range queryNames {
		paths := queryPaths(name, warmup+b.cfg.QuerySamples, b.fillHeight, rng)
		for _, other := range systems[1:] {
			if err := b.sameAnswers(ctx, client, name, other.name, systems[0].base, other.base, paths[:5]); err != nil {
				return err
			}
		}
		lat := make([][]float64, len(systems))
		for i, p := range paths {
			for k := range systems {
				j := (k + i) % len(systems) // alternate who goes first
				ms, err := timedGet(ctx, client, systems[j].base+p)
				if err != nil {
					return fmt.Errorf("%s on %s: %w", name, systems[j].name, err)
				}
				if i >= warmup {
					lat[j] = append(lat[j], ms)
				}
			}
		}
		for j, s := range systems {
			s.p50[name], s.p99[name] = percentile(lat[j], 0.50), percentile(lat[j], 0.99)
		}
		line := ""
		for _, sy := range systems {
			line += fmt.Sprintf("; %s p50 %.2f ms p99 %.2f ms", sy.name, sy.p50[name], sy.p99[name])
		}
		b.progress("%s%s", name, line)
	}
	cancel()
	sqSrv.Close()
	for range 2 {
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	return nil
}

// timedGet fetches url and reads the whole body; it returns the time in
// milliseconds.
func timedGet(ctx context.Context, client *http.Client, u string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	t := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	ms := float64(time.Since(t).Nanoseconds()) / 1e6
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	return ms, nil
}

// percentile is the nearest-rank percentile of xs.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// sameAnswers checks that both systems return the same rows for the
// first requests of a query, so the comparison compares equal work.
func (b *bench) sameAnswers(ctx context.Context, client *http.Client, name, other, a, c string, paths []string) error {
	for _, p := range paths {
		x, err := answerKey(ctx, client, a+p)
		if err != nil {
			return fmt.Errorf("%s on evindex: %w", name, err)
		}
		y, err := answerKey(ctx, client, c+p)
		if err != nil {
			return fmt.Errorf("%s on %s: %w", name, other, err)
		}
		if x != y {
			b.res.note("%s: evindex and %s answer %s differently", name, other, p)
			return nil
		}
		if x == "" {
			b.res.note("%s: %s returned no rows", name, p)
		}
	}
	return nil
}

// answerKey reduces a response to the identities and sums of its rows.
func answerKey(ctx context.Context, client *http.Client, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var page struct {
		Items []struct {
			Height      uint64    `json:"height"`
			TxIndex     uint32    `json:"tx_index"`
			EventIndex  uint32    `json:"event_index"`
			Payload     any       `json:"payload"`
			BucketStart time.Time `json:"bucket_start"`
			Account     string    `json:"account"`
			RawAmount   string    `json:"raw_amount"`
			Count       uint64    `json:"count"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return "", fmt.Errorf("decode: %w", err)
	}
	var sb strings.Builder
	for _, it := range page.Items {
		pl, _ := json.Marshal(it.Payload)
		fmt.Fprintf(&sb, "%d/%d/%d %s %s %s %d %s\n", it.Height, it.TxIndex, it.EventIndex,
			it.BucketStart.UTC().Format(time.RFC3339), it.Account, it.RawAmount, it.Count, pl)
	}
	return sb.String(), nil
}
