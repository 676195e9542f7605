package presearch_test

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/indexer/presearch"
	"github.com/evindex/evindex/indexer/presearch/presim"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

// badEarnings are nodes a hostile API adds to every stats answer, each
// with earnings no reader can hold exactly, and one with a NUL in its key.
var badEarnings = map[string]string{
	"bad-1e400":     `1e400`,
	"bad-negative":  `-5.0`,
	"bad-200digits": strings.Repeat("9", 200),
	"bad-tiny":      `0.0000000000000000001`,
	"bad\\u0000nul": `1.5`,
}

// addNodes puts extra node entries in front of a nodes object.
func addNodes(nodes []byte, extra string) []byte {
	if !bytes.HasPrefix(nodes, []byte("{")) || extra == "" {
		return nodes
	}
	if bytes.Equal(nodes, []byte("{}")) {
		return []byte("{" + extra + "}")
	}
	return append([]byte("{"+extra+","), nodes[1:]...)
}

func hostileNodes(stats bool, nodes []byte) []byte {
	var extra []string
	if stats {
		for k, v := range badEarnings {
			extra = append(extra, fmt.Sprintf(`"%s":{"meta":null,"status":null,"period":{"total_pre_earned":%s}}`, k, v))
		}
	} else {
		extra = append(extra, `"nul\u0000key":{"meta":{"description":"x"},"status":{"connected":true,"in_current_state_since":"2026-11-01T09:00:00Z"}}`)
	}
	return addNodes(nodes, strings.Join(extra, ","))
}

// TestHostileEarningsAreQuarantined: one node's unreadable earnings
// (1e400, negative, 200 digits, below the unit, a NUL in its key) used to
// fail every node's window, so the source retried the same window
// forever. Each is quarantined with the window's checkpoint; every good
// node's earnings are stored exactly.
func TestHostileEarningsAreQuarantined(t *testing.T) {
	e := newEnv(t, presim.Config{Seed: 11})
	e.cfg.BackfillDays = 1
	e.sim.TamperWith(hostileNodes)
	until := start.Add(4 * time.Hour)
	st, err := e.run(t, until)
	if err != nil {
		t.Fatal(err)
	}
	wantCP := until.Add(-presearch.DefaultStatsDelay).Truncate(time.Hour)
	cp, _, err := e.st.Checkpoint(context.Background(), "pre")
	if err != nil || cp.Height != uint64(wantCP.Unix()) {
		t.Fatalf("checkpoint %s (%v), want %s; last error %q", time.Unix(int64(cp.Height), 0).UTC(), err, wantCP, st.LastError)
	}
	origin := start.Truncate(24*time.Hour).AddDate(0, 0, -1)
	windows := map[time.Time]bool{}
	for _, r := range e.rewards(t) {
		if strings.HasPrefix(r.Account, "bad") {
			t.Fatalf("a bad node's reward was stored: %+v", r)
		}
		windows[r.PeriodEnd] = true
	}
	for _, k := range e.sim.NodeKeys() {
		sum := new(big.Int)
		for _, r := range e.rewards(t) {
			if r.Account == k {
				v, _ := new(big.Int).SetString(r.RawAmount, 10)
				sum.Add(sum, v)
			}
		}
		if want := e.sim.Earned(k, origin, wantCP); sum.Cmp(want) != 0 {
			t.Errorf("node %s: stored %s, truth %s", k, sum, want)
		}
	}
	rejected := allRejected(t, e.st)
	perKey := map[string]int{}
	for _, r := range rejected {
		perKey[r.Key]++
		if r.Kind == store.RecordReward && len(r.Raw) == 0 {
			t.Errorf("rejected %s holds no raw bytes", r.Key)
		}
	}
	for k := range badEarnings {
		key := "node " + strings.ReplaceAll(k, `\u0000`, `\x00`)
		if perKey[key] != len(windows) {
			t.Errorf("%s: %d rejected records, want one per window (%d)", key, perKey[key], len(windows))
		}
	}
	if perKey[`node nul\x00key`] == 0 {
		t.Errorf("the status poll's node with a NUL key is not quarantined: %v", perKey)
	}
	listed := uint64(0)
	for i := range rejected {
		listed += rejected[i].Records()
	}
	if in, _ := e.st.Source(context.Background(), "pre"); in.Rejected != listed {
		t.Fatalf("source counts %d rejected, %d listed", in.Rejected, listed)
	}
}

func allRejected(t *testing.T, st store.Store) []store.Rejected {
	return storetest.AllRejected(t, st, store.RejectedQuery{Limit: store.MaxLimit})
}

// TestRetryAfterIsCapped: a Retry-After of 999999999 s made the source
// wait until 2058 (and saved that block across restarts); 99999999999 and
// 9300000000 overflowed. The wait is capped at an hour, so the windows
// are read soon after.
func TestRetryAfterIsCapped(t *testing.T) {
	for _, h := range []string{"999999999", "99999999999", "9300000000"} {
		t.Run(h, func(t *testing.T) {
			e := newEnv(t, presim.Config{Seed: 2})
			e.cfg.BackfillDays = 1
			e.sim.RetryAfterNext(1, h)
			until := start.Add(4 * time.Hour)
			if _, err := e.run(t, until); err != nil {
				t.Fatal(err)
			}
			e.clk.mu.Lock()
			for _, d := range e.clk.slept {
				if d > time.Hour || d < 0 {
					t.Errorf("waited %s", d)
				}
			}
			e.clk.mu.Unlock()
			wantCP := until.Add(-presearch.DefaultStatsDelay).Truncate(time.Hour)
			if cp, _, _ := e.st.Checkpoint(context.Background(), "pre"); cp.Height != uint64(wantCP.Unix()) {
				t.Fatalf("checkpoint %s, want %s", time.Unix(int64(cp.Height), 0).UTC(), wantCP)
			}
		})
	}
}

// TestNodeFloodIsBounded: an answer of tens of thousands of nodes used to
// add every one of them (100,000 took RSS to 567 MB). Nodes past
// presearch.MaxNodes are not read; one rejected record per answer says
// how many there were.
func TestNodeFloodIsBounded(t *testing.T) {
	e := newEnv(t, presim.Config{Seed: 4})
	e.cfg.BackfillDays = 1
	const flood = presearch.MaxNodes * 3
	var extra strings.Builder
	for i := range flood {
		if i > 0 {
			extra.WriteByte(',')
		}
		fmt.Fprintf(&extra, `"flood-%06d":{"meta":null,"status":{"connected":true}}`, i)
	}
	e.sim.TamperWith(func(stats bool, nodes []byte) []byte {
		if stats {
			return nodes
		}
		return addNodes(nodes, extra.String())
	})
	if _, err := e.run(t, start.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	latest, err := e.st.Nodes(context.Background(), "pre")
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) > presearch.MaxNodes {
		t.Fatalf("%d nodes stored, want at most %d", len(latest), presearch.MaxNodes)
	}
	var bound []store.Rejected
	for _, r := range allRejected(t, e.st) {
		if r.Key == "nodes beyond the bound" {
			bound = append(bound, r)
		}
	}
	// One per answer position (the checkpoint the poll carried): polls at
	// the same checkpoint rewrite it.
	heights := map[uint64]bool{}
	for _, r := range bound {
		if heights[r.Height] || !strings.Contains(r.Reason, fmt.Sprint(flood+3-presearch.MaxNodes)) {
			t.Fatalf("bound records %+v", bound)
		}
		heights[r.Height] = true
	}
	if len(bound) == 0 {
		t.Fatal("no record of the nodes past the bound")
	}
}
