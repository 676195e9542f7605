package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/postgres"
)

// copyBatchRecords is how many records one write transaction of copy
// carries: large enough that transactions are not what bounds the copy,
// small enough that a page of payloads stays a few MiB.
const copyBatchRecords = 5000

func runCopyCmd(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "copy", "--data-dir DIR --to-dsn DSN [--force]",
		"Copies a stopped bbolt data dir (records, checkpoints, coverage, source state)\n"+
			"into an empty PostgreSQL database, then verifies counts and exact reward sums\n"+
			"per source. `evindex run` with store.backend: postgres then resumes every source\n"+
			"from its copied checkpoint. The DSN can also come from EVINDEX_TO_DSN, which\n"+
			"keeps its password off the command line.")
	dir := fs.String("data-dir", "", "data directory holding evindex.db (required)")
	aliasFlag(fs, "data", "data-dir")
	dsn := fs.String("to-dsn", "", "the PostgreSQL database to copy into (postgres://user:password@host:port/db)")
	force := fs.Bool("force", false, "copy into a database that already holds sources (stored records are rewritten, others stay)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dsn == "" {
		*dsn = e.getenv("EVINDEX_TO_DSN")
	}
	switch {
	case *dir == "":
		return usagef("copy: --data-dir is required")
	case *dsn == "":
		return usagef("copy: --to-dsn (or EVINDEX_TO_DSN) is required")
	}
	from, err := bolt.Open(*dir, bolt.Options{ReadOnly: true})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("%w (stop the evindex running on it first: a copy of a live file would miss what it writes meanwhile)", err)
		}
		return err
	}
	defer from.Close()
	to, err := postgres.Open(ctx, *dsn, postgres.Options{})
	if err != nil {
		return err
	}
	defer to.Close()
	c := &copier{from: from, states: from.States, to: to, progress: e.stderr, force: *force, now: time.Now}
	target := postgres.RedactDSN(*dsn)
	fmt.Fprintf(e.stderr, "copy: %s -> %s\n", from.Path(), target)
	report, err := c.run(ctx)
	if err != nil {
		return fmt.Errorf("copy to %s: %w", target, err)
	}
	io.WriteString(e.stdout, report)
	return nil
}

// copier moves every source of one store into another and verifies the
// result.
type copier struct {
	from     store.Store
	states   func(ctx context.Context, source string) (map[string][]byte, error)
	to       store.Store
	progress io.Writer
	force    bool
	now      func() time.Time
	// last is when the last progress line was written.
	last time.Time
}

// run copies and verifies; the report has one line per source.
func (c *copier) run(ctx context.Context) (string, error) {
	existing, err := c.to.Sources(ctx)
	if err != nil {
		return "", err
	}
	if len(existing) > 0 && !c.force {
		names := make([]string, len(existing))
		for i, in := range existing {
			names[i] = in.Name
		}
		return "", fmt.Errorf("the target database is not empty (it holds sources %s): copy into an empty database, or pass --force to write over it",
			strings.Join(names, ", "))
	}
	sources, err := c.from.Sources(ctx)
	if err != nil {
		return "", err
	}
	for _, in := range sources {
		if err := c.copySource(ctx, in); err != nil {
			return "", fmt.Errorf("source %s: %w", in.Name, err)
		}
	}
	var report strings.Builder
	for _, in := range sources {
		line, err := c.verify(ctx, in.Name)
		if err != nil {
			return "", fmt.Errorf("verify %s: %w", in.Name, err)
		}
		report.WriteString(line + "\n")
	}
	fmt.Fprintf(&report, "copied and verified %d sources\n", len(sources))
	return report.String(), nil
}

// sourceCopy accumulates one source's records into write transactions.
type sourceCopy struct {
	c      *copier
	in     store.SourceInfo
	b      store.Batch
	done   uint64
	total  uint64
	what   string
	output io.Writer
}

func (s *sourceCopy) add(ctx context.Context, n int, put func(b *store.Batch)) error {
	put(&s.b)
	s.done += uint64(n)
	if s.b.Len() < copyBatchRecords {
		return nil
	}
	return s.flush(ctx)
}

func (s *sourceCopy) flush(ctx context.Context) error {
	if s.b.Len() == 0 {
		return nil
	}
	if err := s.c.to.Apply(ctx, s.b); err != nil {
		return err
	}
	s.b = store.Batch{Source: s.in.Name, Kind: s.in.Kind}
	if now := s.c.now(); now.Sub(s.c.last) >= time.Second {
		s.c.last = now
		fmt.Fprintf(s.output, "copy: %s: %s, %d of %d records\n", s.in.Name, s.what, s.done, s.total)
	}
	return nil
}

// copySource copies blocks, events, rewards, node history and quarantined
// records in transactions of copyBatchRecords, then the source's state,
// coverage and checkpoint in a last one: until it commits, the target has
// no checkpoint for the source, so an interrupted copy never looks done.
func (c *copier) copySource(ctx context.Context, in store.SourceInfo) error {
	s := &sourceCopy{c: c, in: in, b: store.Batch{Source: in.Name, Kind: in.Kind}, output: c.progress,
		total: in.Events + in.Blocks + in.Rewards + in.Rejected}
	s.what = "blocks"
	if err := eachPage(func(cur string) (store.Page[store.Block], error) {
		return c.from.Blocks(ctx, store.BlockQuery{Source: in.Name, Limit: store.MaxLimit, Cursor: cur})
	}, func(items []store.Block) error {
		return s.add(ctx, len(items), func(b *store.Batch) { b.Blocks = append(b.Blocks, items...) })
	}); err != nil {
		return err
	}
	if err := s.flush(ctx); err != nil {
		return err
	}
	s.what = "events"
	if err := eachPage(func(cur string) (store.Page[store.Event], error) {
		return c.from.Events(ctx, store.EventQuery{Source: in.Name, Limit: store.MaxLimit, Cursor: cur})
	}, func(items []store.Event) error {
		return s.add(ctx, len(items), func(b *store.Batch) { b.Events = append(b.Events, items...) })
	}); err != nil {
		return err
	}
	s.what = "rewards"
	if err := eachPage(func(cur string) (store.Page[store.Reward], error) {
		return c.from.Rewards(ctx, store.RewardQuery{Source: in.Name, Limit: store.MaxLimit, Cursor: cur})
	}, func(items []store.Reward) error {
		return s.add(ctx, len(items), func(b *store.Batch) { b.Rewards = append(b.Rewards, items...) })
	}); err != nil {
		return err
	}
	s.what = "rejected records"
	if err := eachPage(func(cur string) (store.Page[store.Rejected], error) {
		return c.from.Rejected(ctx, store.RejectedQuery{Source: in.Name, Limit: store.MaxLimit, Cursor: cur})
	}, func(items []store.Rejected) error {
		// The source counts the records a counting record stands for.
		n := uint64(0)
		for i := range items {
			n += items[i].Records()
		}
		return s.add(ctx, int(n), func(b *store.Batch) { b.Rejected = append(b.Rejected, items...) })
	}); err != nil {
		return err
	}
	nodes, err := c.from.Nodes(ctx, in.Name)
	if err != nil {
		return err
	}
	s.what = "node history"
	for _, n := range nodes {
		if err := eachPage(func(cur string) (store.Page[store.NodeStatus], error) {
			return c.from.NodeHistory(ctx, store.NodeHistoryQuery{Source: in.Name, Node: n.Node, Limit: store.MaxLimit, Cursor: cur})
		}, func(items []store.NodeStatus) error {
			return s.add(ctx, 0, func(b *store.Batch) { b.Nodes = append(b.Nodes, items...) })
		}); err != nil {
			return err
		}
	}
	if err := s.flush(ctx); err != nil {
		return err
	}

	// The last transaction: what makes the source resumable, and the
	// node's announcements that its missed rewards derive from.
	last := []store.Batch{{Source: in.Name, Kind: in.Kind, Epochs: in.Epochs, Meta: in.Meta}}
	if err := c.announcements(ctx, in.Name, &last[0]); err != nil {
		return err
	}
	if err := c.alerts(ctx, in.Name, &last[0]); err != nil {
		return err
	}
	if last[0].State, err = c.states(ctx, in.Name); err != nil {
		return err
	}
	cov, err := c.from.Coverage(ctx, in.Name)
	if err != nil {
		return err
	}
	for _, r := range cov {
		last = append(last, store.Batch{Source: in.Name, Coverage: &r})
	}
	if cp, found, err := c.from.Checkpoint(ctx, in.Name); err != nil {
		return err
	} else if found {
		last[len(last)-1].Checkpoint = &cp
	}
	if err := c.to.Apply(ctx, last...); err != nil {
		return err
	}
	fmt.Fprintf(c.progress, "copy: %s: %d records copied\n", in.Name, s.done)
	return nil
}

// announcements adds a source's eligibilities, their accounts' proposals
// and the proposal gaps to b. (A proposal of an account without any
// eligibility can never make a miss, so only those accounts' are read.)
func (c *copier) announcements(ctx context.Context, source string, b *store.Batch) error {
	el, err := c.from.Eligibilities(ctx, source)
	if err != nil {
		return err
	}
	b.Eligibilities = el
	for i, e := range el {
		if i > 0 && el[i-1].Account == e.Account {
			continue
		}
		ps, err := c.from.Proposals(ctx, source, e.Account, 0, math.MaxInt64)
		if err != nil {
			return err
		}
		b.Proposals = append(b.Proposals, ps...)
	}
	b.ProposalGaps, err = c.from.ProposalGaps(ctx, source)
	return err
}

// alerts adds a source's alert episodes and the outbox rows of its
// alerts still to be sent (with their attempts) to b, so the rules go on
// from where they were and no notification is lost by the move.
func (c *copier) alerts(ctx context.Context, source string, b *store.Batch) error {
	if err := eachPage(func(cur string) (store.Page[store.Alert], error) {
		return c.from.Alerts(ctx, store.AlertQuery{Source: source, Limit: store.MaxLimit, Cursor: cur})
	}, func(items []store.Alert) error { b.Alerts = append(b.Alerts, items...); return nil }); err != nil {
		return err
	}
	outbox, err := c.from.Deliveries(ctx, "", 0)
	if err != nil {
		return err
	}
	for _, d := range outbox {
		if d.Alert.Source == source {
			d.ClaimedBy, d.ClaimedUntil = "", time.Time{}
			b.Deliveries = append(b.Deliveries, d)
		}
	}
	return nil
}

// eachPage hands every page of a list to fn.
func eachPage[T any](fetch func(cursor string) (store.Page[T], error), fn func([]T) error) error {
	cursor := ""
	for {
		p, err := fetch(cursor)
		if err != nil {
			return err
		}
		if len(p.Items) > 0 {
			if err := fn(p.Items); err != nil {
				return err
			}
		}
		if p.Next == "" {
			return nil
		}
		cursor = p.Next
	}
}

// sourceTotals is what copy compares between the two stores.
type sourceTotals struct {
	Events, Blocks, Rewards, Rejected uint64
	Checkpoint                        string
	Coverage                          string
	// RewardSums is the exact sum of raw amounts by unit.
	RewardSums map[string]string
	Nodes      int
	// Missed counts the missed rewards derived from the copied records.
	Missed int
	// Alerts counts the alert episodes, Outbox the notifications of the
	// source's alerts still to be sent.
	Alerts, Outbox int
}

func (t sourceTotals) String() string {
	sums := make([]string, 0, len(t.RewardSums))
	for _, u := range slices.Sorted(maps.Keys(t.RewardSums)) {
		sums = append(sums, t.RewardSums[u]+" "+u)
	}
	if len(sums) == 0 {
		sums = []string{"0"}
	}
	return fmt.Sprintf("events %d, blocks %d, rewards %d (sum %s), rejected %d, node snapshots %d, missed rewards %d, alerts %d (outbox %d), checkpoint %s, coverage %s",
		t.Events, t.Blocks, t.Rewards, strings.Join(sums, " + "), t.Rejected, t.Nodes, t.Missed, t.Alerts, t.Outbox, t.Checkpoint, t.Coverage)
}

// totalsOf counts a source in st and sums its rewards exactly, from the
// records themselves rather than the store's counters.
func totalsOf(ctx context.Context, st store.Store, source string) (sourceTotals, error) {
	var t sourceTotals
	in, err := st.Source(ctx, source)
	if err != nil {
		return t, err
	}
	t.Rejected = in.Rejected
	t.Checkpoint = "none"
	if in.Checkpoint != nil {
		t.Checkpoint = fmt.Sprint(in.Checkpoint.Height)
	}
	cov, err := st.Coverage(ctx, source)
	if err != nil {
		return t, err
	}
	t.Coverage = fmt.Sprint(cov)
	if err := eachPage(func(cur string) (store.Page[store.MissedReward], error) {
		return store.MissedRewards(ctx, st, store.MissedQuery{Source: source, Limit: store.MaxLimit, Cursor: cur})
	}, func(items []store.MissedReward) error { t.Missed += len(items); return nil }); err != nil {
		return t, err
	}
	if err := eachPage(func(cur string) (store.Page[store.Alert], error) {
		return st.Alerts(ctx, store.AlertQuery{Source: source, Limit: store.MaxLimit, Cursor: cur})
	}, func(items []store.Alert) error { t.Alerts += len(items); return nil }); err != nil {
		return t, err
	}
	outbox, err := st.Deliveries(ctx, "", 0)
	if err != nil {
		return t, err
	}
	for _, d := range outbox {
		if d.Alert.Source == source {
			t.Outbox++
		}
	}
	if err := eachPage(func(cur string) (store.Page[store.Event], error) {
		return st.Events(ctx, store.EventQuery{Source: source, Limit: store.MaxLimit, Cursor: cur})
	}, func(items []store.Event) error { t.Events += uint64(len(items)); return nil }); err != nil {
		return t, err
	}
	if err := eachPage(func(cur string) (store.Page[store.Block], error) {
		return st.Blocks(ctx, store.BlockQuery{Source: source, Limit: store.MaxLimit, Cursor: cur})
	}, func(items []store.Block) error { t.Blocks += uint64(len(items)); return nil }); err != nil {
		return t, err
	}
	sums := map[string]*big.Int{}
	if err := eachPage(func(cur string) (store.Page[store.Reward], error) {
		return st.Rewards(ctx, store.RewardQuery{Source: source, Limit: store.MaxLimit, Cursor: cur})
	}, func(items []store.Reward) error {
		for _, r := range items {
			v, ok := new(big.Int).SetString(r.RawAmount, 10)
			if !ok {
				return fmt.Errorf("reward %s/%s: raw amount %q is not an integer", r.Account, r.ID, r.RawAmount)
			}
			if sums[r.Unit] == nil {
				sums[r.Unit] = new(big.Int)
			}
			sums[r.Unit].Add(sums[r.Unit], v)
		}
		t.Rewards += uint64(len(items))
		return nil
	}); err != nil {
		return t, err
	}
	t.RewardSums = map[string]string{}
	for u, v := range sums {
		t.RewardSums[u] = v.String()
	}
	nodes, err := st.Nodes(ctx, source)
	if err != nil {
		return t, err
	}
	for _, n := range nodes {
		if err := eachPage(func(cur string) (store.Page[store.NodeStatus], error) {
			return st.NodeHistory(ctx, store.NodeHistoryQuery{Source: source, Node: n.Node, Limit: store.MaxLimit, Cursor: cur})
		}, func(items []store.NodeStatus) error { t.Nodes += len(items); return nil }); err != nil {
			return t, err
		}
	}
	return t, nil
}

// verify compares one source in both stores: records counted and reward
// amounts summed on each side, the store's own counters, checkpoint,
// coverage and source state.
func (c *copier) verify(ctx context.Context, source string) (string, error) {
	want, err := totalsOf(ctx, c.from, source)
	if err != nil {
		return "", err
	}
	got, err := totalsOf(ctx, c.to, source)
	if err != nil {
		return "", err
	}
	if got.String() != want.String() {
		return "", fmt.Errorf("the copy differs:\n  bbolt:      %s\n  postgresql: %s", want, got)
	}
	in, err := c.to.Source(ctx, source)
	if err != nil {
		return "", err
	}
	if in.Events != want.Events || in.Blocks != want.Blocks || in.Rewards != want.Rewards {
		return "", fmt.Errorf("the copy's counters say events %d, blocks %d, rewards %d; its records are %s", in.Events, in.Blocks, in.Rewards, want)
	}
	states, err := c.states(ctx, source)
	if err != nil {
		return "", err
	}
	for k, v := range states {
		cv, err := c.to.State(ctx, source, k)
		if err != nil {
			return "", err
		}
		if string(cv) != string(v) {
			return "", fmt.Errorf("state %q differs after the copy", k)
		}
	}
	return fmt.Sprintf("%s: %s: same in both", source, want), nil
}
