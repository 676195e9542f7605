package store_test

import (
	"math/big"
	"testing"
	"time"

	"github.com/evindex/evindex/store"
)

// TestSummaryHours: the queries hour totals answer, and the hour slots they
// read; everything else is left to a sum of the rewards.
func TestSummaryHours(t *testing.T) {
	may1 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	slot := store.RewardHour(may1)
	one := uint64(5)
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tz database:", err)
	}
	kolkata, _ := time.LoadLocation("Asia/Kolkata")
	for _, tc := range []struct {
		name     string
		q        store.SummaryQuery
		ok       bool
		from, to uint64
	}{
		{"Unbounded", store.SummaryQuery{GroupBy: store.GroupDay}, true, 0, ^uint64(0)},
		{"WholeDays", store.SummaryQuery{RewardQuery: store.RewardQuery{Accounts: []string{"a"}, FromTime: may1, ToTime: may1.AddDate(0, 0, 3)},
			GroupBy: store.GroupMonth}, true, slot, slot + 72},
		{"MidnightInNewYork", store.SummaryQuery{RewardQuery: store.RewardQuery{FromTime: time.Date(2026, 5, 1, 0, 0, 0, 0, ny)}, GroupBy: store.GroupDay},
			true, slot + 4, ^uint64(0)},
		{"MidnightInKolkata", store.SummaryQuery{RewardQuery: store.RewardQuery{FromTime: time.Date(2026, 5, 1, 0, 0, 0, 0, kolkata)}, GroupBy: store.GroupDay}, false, 0, 0},
		{"BoundInsideAnHour", store.SummaryQuery{RewardQuery: store.RewardQuery{ToTime: may1.Add(time.Nanosecond)}, GroupBy: store.GroupDay}, false, 0, 0},
		{"BoundAtOrBefore1970", store.SummaryQuery{RewardQuery: store.RewardQuery{FromTime: time.Unix(0, 0)}, GroupBy: store.GroupDay}, false, 0, 0},
		{"Epochs", store.SummaryQuery{GroupBy: store.GroupEpoch}, false, 0, 0},
		{"SeveralAccounts", store.SummaryQuery{RewardQuery: store.RewardQuery{Accounts: []string{"a", "b"}}, GroupBy: store.GroupDay}, false, 0, 0},
		{"Heights", store.SummaryQuery{RewardQuery: store.RewardQuery{FromHeight: &one}, GroupBy: store.GroupDay}, false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			from, to, ok := store.SummaryHours(tc.q)
			if ok != tc.ok || ok && (from != tc.from || to != tc.to) {
				t.Fatalf("SummaryHours = %d, %d, %v; want %d, %d, %v", from, to, ok, tc.from, tc.to, tc.ok)
			}
		})
	}
	if store.RewardHour(time.Time{}) != 0 || store.RewardHour(may1.Add(-time.Nanosecond)) != slot-1 || store.RewardHour(may1.Add(time.Hour-1)) != slot {
		t.Fatal("hour slots: the zero time is slot 0, and a slot runs from one whole UTC hour to the next")
	}
}

// TestHourSummerDeclines: hour totals give up where a sum of the rewards
// would differ from them: an hour that a bucket of the query's zone cuts,
// and a row whose rewards disagree on Decimals.
func TestHourSummerDeclines(t *testing.T) {
	// Midnight in Kolkata (UTC+5:30) is half past 18 UTC.
	hour := store.RewardHour(time.Date(2026, 1, 10, 18, 0, 0, 0, time.UTC))
	one := big.NewInt(1)
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Skip("no tz database:", err)
	}
	london, _ := time.LoadLocation("Europe/London")
	ny, _ := time.LoadLocation("America/New_York")
	for _, tc := range []struct {
		name string
		loc  *time.Location
		ok   bool
	}{{"UTC", nil, true}, {"London", london, true}, {"NewYork", ny, true}, {"Kolkata", kolkata, false}} {
		t.Run(tc.name, func(t *testing.T) {
			s := store.NewHourSummer(store.SummaryQuery{GroupBy: store.GroupDay, Location: tc.loc})
			if ok := s.Add("src", "a", "U", "k", 8, hour, 1, one); ok != tc.ok {
				t.Fatalf("Add in %v: %v, want %v", tc.loc, ok, tc.ok)
			}
		})
	}
	s := store.NewHourSummer(store.SummaryQuery{GroupBy: store.GroupWeek})
	if !s.Add("src", "a", "U", "k1", 8, hour, 1, one) || s.Add("src", "a", "U", "k2", 9, hour+24, 1, one) {
		t.Fatal("a week of rewards of 8 and 9 decimals in one row was summed")
	}
	s = store.NewHourSummer(store.SummaryQuery{GroupBy: store.GroupMonth, RewardQuery: store.RewardQuery{Kinds: []string{"k1"}}})
	big64 := new(big.Int).Lsh(one, 64)
	for d := range uint64(3) {
		if !s.Add("src", "a", "U", "k1", 8, hour+24*d, 2, big64) || !s.Add("src", "a", "U", "k2", 9, hour+24*d, 1, one) {
			t.Fatal("Add declined")
		}
	}
	rows := s.Rows()
	if len(rows) != 1 || rows[0].Count != 6 || rows[0].RawAmount.Cmp(new(big.Int).Mul(big64, big.NewInt(3))) != 0 || rows[0].Decimals != 8 {
		t.Fatalf("rows %+v, want one month of 6 rewards summing 3 * 2^64 (kind k2 not selected)", rows)
	}
}
