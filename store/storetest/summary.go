package storetest

import (
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
)

// testSummaryEqualsItsRewards writes random batches of rewards (new ones,
// rewrites of stored identities with another amount, kind, unit, decimals
// or aliases, and ReplaceRewards reverts) over days, and after each Apply
// compares the summaries of many queries with the sums of the rewards the
// list returns, which is what a summary is. Queries of whole UTC hours are
// answered from the hour totals the backends keep; the others (hours cut by
// a time bound or by a midnight half an hour off UTC's, heights, several
// accounts, a row of mixed decimals) from the rewards. Both must give the same rows.
func testSummaryEqualsItsRewards(t *testing.T, open func(*testing.T) store.Store) {
	s := open(t)
	rng := rand.New(rand.NewPCG(16, 3))
	// Days around New York's (March 8) and London's (March 29) change
	// to summer time.
	base := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	var zones []*time.Location
	for _, name := range []string{"America/New_York", "Europe/London", "Asia/Kolkata"} {
		if loc, err := time.LoadLocation(name); err == nil {
			zones = append(zones, loc)
		}
	}
	accounts := []string{"acc1", "acc2", "acc3"}
	aliases := []string{"acc1", "al1", "al2"}
	const slots = 120 // a reward's time and height: slot k is about base + 7h k, height k
	slotTime := func(k int) time.Time {
		switch k {
		case slots:
			return time.Time{} // a reward of unknown time
		case slots + 1:
			return time.Unix(0, 0) // read back as the zero time
		}
		// Some on the hour, some inside it.
		return base.Add(time.Duration(k)*7*time.Hour + time.Duration(k%3)*17*time.Minute)
	}
	reward := func() store.Reward {
		k := rng.IntN(slots + 2)
		r := store.Reward{Account: accounts[rng.IntN(len(accounts))], Kind: []string{"k1", "k2"}[rng.IntN(2)],
			ID: fmt.Sprintf("id%d", rng.IntN(3)), Height: uint64(k), HasHeight: true, Time: slotTime(k),
			RawAmount: fmt.Sprint(1 + rng.Uint64N(1_000_000_000)), Unit: "U", Decimals: 8}
		switch rng.IntN(12) {
		case 0:
			r.Unit, r.Decimals = "V", 2
		case 1:
			r.Decimals = 9 // a row whose rewards disagree on Decimals
		case 2, 3:
			r.RawAmount = new(big.Int).Lsh(big.NewInt(1+rng.Int64N(1000)), uint(60+rng.IntN(40))).String()
		}
		for range rng.IntN(3) {
			r.Aliases = append(r.Aliases, aliases[rng.IntN(len(aliases))])
		}
		return r
	}
	var written []store.Reward
	queries := 0
	for round := range 40 {
		var batches []store.Batch
		for range 1 + rng.IntN(3) {
			b := store.Batch{Source: []string{"sa", "sb"}[rng.IntN(2)]}
			for range rng.IntN(7) {
				r := reward()
				if len(written) > 0 && rng.IntN(3) == 0 {
					// A stored identity again, with other values.
					old := written[rng.IntN(len(written))]
					r.Account, r.Time, r.ID, r.Height = old.Account, old.Time, old.ID, old.Height
					b.Source = old.Source
				}
				b.Rewards = append(b.Rewards, r)
			}
			if rng.IntN(4) == 0 {
				from := uint64(rng.IntN(slots))
				to := from + uint64(rng.IntN(20))
				b.ReplaceRewards = &store.Range{From: from, To: to}
				b.Rewards = slices.DeleteFunc(b.Rewards, func(r store.Reward) bool { return r.Height < from || r.Height > to })
			}
			for i := range b.Rewards {
				b.Rewards[i].Source = b.Source
				written = append(written, b.Rewards[i])
			}
			batches = append(batches, b)
		}
		if err := s.Apply(ctx, batches...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for range 12 {
			q := randomSummaryQuery(rng, base, zones)
			compareSummary(t, s, q, fmt.Sprintf("round %d", round))
			queries++
		}
	}
	// Every kind of query once more on the final state.
	for _, g := range []string{store.GroupDay, store.GroupWeek, store.GroupMonth} {
		for _, acct := range [][]string{nil, {"acc1"}, {"al1"}, {"acc2", "al2"}, {"nobody"}} {
			for _, loc := range append([]*time.Location{nil, time.UTC}, zones...) {
				q := store.SummaryQuery{RewardQuery: store.RewardQuery{Accounts: acct}, GroupBy: g, Location: loc}
				compareSummary(t, s, q, "final")
				q.FromTime, q.ToTime = base.AddDate(0, 0, 3), base.AddDate(0, 0, 20)
				compareSummary(t, s, q, "final")
			}
		}
	}
	t.Logf("%d rewards written, %d queries compared", len(written), queries)
}

// randomSummaryQuery draws a summary query from the shapes that day
// totals answer and those they do not.
func randomSummaryQuery(rng *rand.Rand, base time.Time, zones []*time.Location) store.SummaryQuery {
	q := store.SummaryQuery{GroupBy: []string{store.GroupDay, store.GroupWeek, store.GroupMonth}[rng.IntN(3)]}
	if rng.IntN(2) == 0 {
		q.Source = "sa"
	}
	q.Accounts = [][]string{nil, nil, {"acc1"}, {"acc2"}, {"al1"}, {"al2"}, {"acc3", "al1"}, {"nobody"}}[rng.IntN(8)]
	q.Kinds = [][]string{nil, nil, {"k1"}, {"k1", "k2"}}[rng.IntN(4)]
	switch rng.IntN(4) {
	case 0:
		q.Location = time.UTC
	case 1:
		if len(zones) > 0 {
			q.Location = zones[rng.IntN(len(zones))]
		}
	}
	day := func() time.Time { return base.AddDate(0, 0, rng.IntN(40)-2) }
	switch rng.IntN(7) {
	case 0:
		q.FromTime = day()
	case 1:
		q.ToTime = day()
	case 2, 3:
		q.FromTime = day()
		q.ToTime = q.FromTime.AddDate(0, 0, 1+rng.IntN(15))
	case 4: // bounds that cut hours
		q.FromTime = day().Add(time.Duration(rng.IntN(24*60)) * time.Minute)
		q.ToTime = q.FromTime.Add(time.Duration(rng.IntN(10*24)) * time.Hour)
	case 5: // whole hours, as a midnight of another zone
		q.FromTime = day().Add(time.Duration(rng.IntN(24)) * time.Hour)
		q.ToTime = q.FromTime.Add(time.Duration(1+rng.IntN(10*24)) * time.Hour)
	}
	if rng.IntN(8) == 0 {
		from := uint64(rng.IntN(100))
		q.FromHeight = &from
	}
	return q
}

// compareSummary fails the test when s's summary of q is not the sum of
// the rewards s lists for q.
func compareSummary(t *testing.T, s store.Store, q store.SummaryQuery, when string) {
	t.Helper()
	got, err := s.RewardSummary(ctx, q)
	if err != nil {
		t.Fatalf("%s: summary %s: %v", when, describeSummaryQuery(q), err)
	}
	want := sumOfRewards(t, s, q)
	if g, w := summaryText(got), summaryText(want); g != w {
		t.Fatalf("%s: summary %s\ngot\n%s\nits rewards sum to\n%s", when, describeSummaryQuery(q), g, w)
	}
}

// sumOfRewards is the definition of a summary: the rewards q lists, in
// list order, summed per bucket of q's Location, source, account and
// unit; a row's Decimals are its first reward's.
func sumOfRewards(t *testing.T, s store.Store, q store.SummaryQuery) []store.SummaryRow {
	t.Helper()
	loc := q.Location
	if loc == nil {
		loc = time.UTC
	}
	rq := q.RewardQuery
	rq.Limit = store.MaxLimit
	type key struct {
		start                 int64
		source, account, unit string
	}
	rows := map[key]*store.SummaryRow{}
	for {
		p, err := s.Rewards(ctx, rq)
		if err != nil {
			t.Fatalf("rewards %+v: %v", rq, err)
		}
		for _, r := range p.Items {
			start, end := store.BucketOf(r.Time.In(loc), q.GroupBy)
			k := key{start.UnixNano(), r.Source, r.Account, r.Unit}
			row := rows[k]
			if row == nil {
				row = &store.SummaryRow{BucketStart: start, BucketEnd: end, Source: r.Source, Account: r.Account,
					Unit: r.Unit, Decimals: r.Decimals, RawAmount: new(big.Int)}
				rows[k] = row
			}
			v, ok := new(big.Int).SetString(r.RawAmount, 10)
			if !ok {
				t.Fatalf("reward amount %q", r.RawAmount)
			}
			row.RawAmount.Add(row.RawAmount, v)
			row.Count++
		}
		if p.Next == "" {
			break
		}
		rq.Cursor = p.Next
	}
	out := make([]store.SummaryRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b store.SummaryRow) int { return store.CompareSummaryRows(&a, &b) })
	return out
}

// summaryText prints rows with every field a reader sees, one a line.
func summaryText(rows []store.SummaryRow) string {
	var b strings.Builder
	for _, r := range rows {
		epoch := "-"
		if r.Epoch != nil {
			epoch = fmt.Sprint(*r.Epoch)
		}
		fmt.Fprintf(&b, "%s..%s epoch %s %s/%s %s(%d) %s ×%d missed %d\n", r.BucketStart.Format(time.RFC3339Nano),
			r.BucketEnd.Format(time.RFC3339Nano), epoch, r.Source, r.Account, r.Unit, r.Decimals, r.RawAmount, r.Count, r.Missed)
	}
	return b.String()
}

func describeSummaryQuery(q store.SummaryQuery) string {
	loc := "nil"
	if q.Location != nil {
		loc = q.Location.String()
	}
	h := "-"
	if q.FromHeight != nil {
		h = fmt.Sprint(*q.FromHeight)
	}
	return fmt.Sprintf("{group %s source %q accounts %q kinds %q from %s to %s from_height %s tz %s}", q.GroupBy, q.Source,
		q.Accounts, q.Kinds, q.FromTime.Format(time.RFC3339), q.ToTime.Format(time.RFC3339), h, loc)
}

// TotalsBatch is 48 hourly rewards of 10^20 to node1 (alias node1/1) over
// the two days from the time it returns, for SummaryReadsTotals.
func TotalsBatch() (store.Batch, time.Time) {
	day := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
	b := store.Batch{Source: "flow"}
	for h := uint64(0); h < 48; h++ {
		b.Rewards = append(b.Rewards, store.Reward{Account: "node1", Kind: "flow_node_reward", ID: "r", Height: h, HasHeight: true,
			Time: day.Add(time.Duration(h) * time.Hour), RawAmount: "100000000000000000000", Unit: "FLOW", Decimals: 8, Aliases: []string{"node1/1"}})
	}
	return b, day
}

// SummaryReadsTotals shows where the summaries of s, which holds
// TotalsBatch, come from: once drop has deleted the reward records behind
// the store's back, a summary of whole days still answers from the
// totals, one whose bounds cut an hour (which sums the rewards) finds
// nothing, and Check reports the totals that no longer match, in words
// that contain checkSays.
func SummaryReadsTotals(t *testing.T, s interface {
	store.Store
	store.Checker
}, day time.Time, drop func() error, checkSays string) {
	t.Helper()
	whole := store.SummaryQuery{RewardQuery: store.RewardQuery{Source: "flow", Accounts: []string{"node1/1"},
		FromTime: day, ToTime: day.AddDate(0, 0, 2)}, GroupBy: store.GroupDay}
	cut := whole
	cut.FromTime = day.Add(time.Minute)
	for _, q := range []store.SummaryQuery{whole, cut} {
		if rows, err := s.RewardSummary(ctx, q); err != nil || len(rows) != 2 {
			t.Fatalf("summary from %v: %d rows, %v", q.FromTime, len(rows), err)
		}
	}
	if err := drop(); err != nil {
		t.Fatal(err)
	}
	rows, err := s.RewardSummary(ctx, whole)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Count != 24 || rows[0].RawAmount.String() != "2400000000000000000000" || rows[1].Count != 24 {
		t.Fatalf("whole days after the records went: %+v, want two days of 24 rewards of 10^20 from the totals", rows)
	}
	if rows, err := s.RewardSummary(ctx, cut); err != nil || len(rows) != 0 {
		t.Fatalf("a cut hour after the records went: %+v, %v; want nothing (it sums the rewards)", rows, err)
	}
	err = s.Check(ctx)
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), checkSays) {
		t.Fatalf("check: %v, want the totals that match no reward (%q)", err, checkSays)
	}
}
