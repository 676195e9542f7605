package bolt_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/storetest"
)

// TestReadsOfADamagedFileNameIt overwrites the pages of a file one at a
// time with garbage and reads every list of it: a read that meets the
// damage returns ErrCorrupt naming the file, never a panic or a fault that
// would take the process (a daemon, an export) down.
func TestReadsOfADamagedFileNameIt(t *testing.T) {
	src := t.TempDir()
	s, err := bolt.Open(src, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for h := uint64(1); h <= 300; h++ {
		b := storetest.FlowBatch(h, 6)
		b.Rewards = []store.Reward{{Account: fmt.Sprintf("node%d", h%3), Kind: "flow_node_reward", ID: fmt.Sprint(h),
			Height: h, HasHeight: true, Time: base.Add(time.Duration(h) * time.Second), RawAmount: fmt.Sprint(h * 1000), Unit: "FLOW", Decimals: 8}}
		if err := s.Apply(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	good, err := os.ReadFile(filepath.Join(src, bolt.FileName))
	if err != nil {
		t.Fatal(err)
	}

	const pageSize = 4096
	failed := 0
	for pg := 2; pg < len(good)/pageSize; pg++ { // pages 0 and 1 are the meta pages Open checks
		bad := bytes.Clone(good)
		r := rand.New(rand.NewPCG(uint64(pg), 10))
		for i := pg * pageSize; i < (pg+1)*pageSize; i++ {
			bad[i] = byte(r.Uint32())
		}
		dir := t.TempDir()
		path := filepath.Join(dir, bolt.FileName)
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := bolt.Open(dir, bolt.Options{ReadOnly: true})
		if err != nil {
			continue // Open's own checks found it; TestCorruptFileIsAnErrorNotAPanic covers those
		}
		reads := map[string]func() error{
			"Events": func() error { _, err := s.Events(ctx, store.EventQuery{Limit: store.MaxLimit}); return err },
			"EventsOfAType": func() error {
				_, err := s.Events(ctx, store.EventQuery{Types: []string{"A.1.Token.Withdrawn"}, Limit: store.MaxLimit})
				return err
			},
			"Blocks":  func() error { _, err := s.Blocks(ctx, store.BlockQuery{Limit: store.MaxLimit}); return err },
			"Rewards": func() error { _, err := s.Rewards(ctx, store.RewardQuery{Limit: store.MaxLimit}); return err },
			"Summary": func() error {
				_, err := s.RewardSummary(ctx, store.SummaryQuery{GroupBy: store.GroupDay, Location: time.UTC})
				return err
			},
			"Sources": func() error { _, err := s.Sources(ctx); return err },
		}
		for name, read := range reads {
			err := read()
			if err == nil {
				continue
			}
			failed++
			if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Errorf("page %d garbled, %s: %v; want ErrCorrupt naming %s", pg, name, err, path)
			}
		}
		s.Close()
	}
	if failed == 0 {
		t.Fatalf("no read of %d damaged files failed: the damage never reached a query", len(good)/pageSize-2)
	}
	t.Logf("%d reads of damaged files failed, each naming the file", failed)
}
