package httpapi

import (
	"math/big"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

type summaryItemT struct {
	BucketStart time.Time `json:"bucket_start"`
	BucketEnd   time.Time `json:"bucket_end"`
	Epoch       *uint64   `json:"epoch"`
	Source      string    `json:"source"`
	Account     string    `json:"account"`
	Unit        string    `json:"unit"`
	Amount      string    `json:"amount"`
	RawAmount   string    `json:"raw_amount"`
	Count       uint64    `json:"count"`
}

func bigOf(t *testing.T, s string) *big.Int {
	t.Helper()
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		t.Fatalf("%q is not an integer", s)
	}
	return v
}

// rewardTotals sums /v1/rewards?query per source/account/unit, exactly.
func rewardTotals(t *testing.T, e *env, query string) (map[string]*big.Int, map[string]uint64) {
	t.Helper()
	sums, counts := map[string]*big.Int{}, map[string]uint64{}
	for _, r := range e.allPages("/v1/rewards?"+query, 1000) {
		k := r["source"].(string) + "|" + r["account"].(string) + "|" + r["unit"].(string)
		if sums[k] == nil {
			sums[k] = new(big.Int)
		}
		sums[k].Add(sums[k], bigOf(t, r["raw_amount"].(string)))
		counts[k]++
	}
	return sums, counts
}

func TestRewardSummary(t *testing.T) {
	e := newEnv(t)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	tests := []struct {
		name    string
		query   string // shared by /v1/rewards and the summary
		summary string // summary-only parameters
		loc     *time.Location
	}{
		{"Day", "", "group_by=day", time.UTC},
		{"DefaultGrouping", "", "", time.UTC},
		{"Week", "", "group_by=week", time.UTC},
		{"Month", "", "group_by=month", time.UTC},
		{"DayBerlin", "", "group_by=day&tz=Europe/Berlin", berlin},
		{"MonthBerlin", "source=flow-main", "group_by=month&tz=Europe/Berlin", berlin},
		{"WeekNewYork", "source=presearch", "group_by=week&tz=America/New_York", nil},
		{"Accounts", "account=" + url.QueryEscape(preNodeA) + "&account=" + flowNodeB + "&account=" + smSmesher, "group_by=day", time.UTC},
		{"TimeRange", "from_time=2026-10-27T06:00:00Z&to_time=2026-11-20", "group_by=day", time.UTC},
		{"Epoch", "source=sm-node", "group_by=epoch", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantSums, wantCounts := rewardTotals(t, e, tt.query)
			if len(wantSums) == 0 {
				t.Fatal("fixture has no rewards here")
			}
			q := tt.query
			if tt.summary != "" {
				q += "&" + tt.summary
			}
			r := e.getOK("/v1/rewards/summary?" + q)
			if strings.Contains(string(r.body), "next_cursor") {
				t.Fatalf("summary is not paged: %s", r.body[:100])
			}
			var body struct{ Items []summaryItemT }
			r.json(t, &body)
			sums, counts := map[string]*big.Int{}, map[string]uint64{}
			var prev time.Time
			for _, it := range body.Items {
				k := it.Source + "|" + it.Account + "|" + it.Unit
				if sums[k] == nil {
					sums[k] = new(big.Int)
				}
				raw := bigOf(t, it.RawAmount)
				sums[k].Add(sums[k], raw)
				counts[k] += it.Count
				decimals := map[string]int{"FLOW": 8, "SMH": 9, "PRE": 18}[it.Unit]
				if it.Amount != formatBig(raw, decimals) {
					t.Fatalf("amount %s of raw %s %s", it.Amount, it.RawAmount, it.Unit)
				}
				if it.BucketStart.Before(prev) {
					t.Fatalf("buckets out of order: %v after %v", it.BucketStart, prev)
				}
				prev = it.BucketStart
				if !it.BucketEnd.After(it.BucketStart) {
					t.Fatalf("bucket %v..%v", it.BucketStart, it.BucketEnd)
				}
				if tt.loc != nil {
					local := it.BucketStart.In(tt.loc)
					if local.Hour() != 0 || local.Minute() != 0 {
						t.Fatalf("bucket %v does not start at midnight in %v", it.BucketStart, tt.loc)
					}
				}
				switch {
				case strings.Contains(q, "group_by=week"):
					loc := tt.loc
					if loc == nil {
						loc, _ = time.LoadLocation("America/New_York")
					}
					if it.BucketStart.In(loc).Weekday() != time.Monday {
						t.Fatalf("week bucket starts on %v", it.BucketStart.In(loc).Weekday())
					}
				case strings.Contains(q, "group_by=month"):
					if it.BucketStart.In(tt.loc).Day() != 1 {
						t.Fatalf("month bucket starts %v", it.BucketStart)
					}
				case strings.Contains(q, "group_by=epoch"):
					if it.Epoch == nil || *it.Epoch != smFrom/4032 ||
						!it.BucketStart.Equal(smGenesis.Add(time.Duration(*it.Epoch)*4032*5*time.Minute)) ||
						it.BucketEnd.Sub(it.BucketStart) != 4032*5*time.Minute {
						t.Fatalf("epoch bucket %+v", it)
					}
				}
			}
			if len(sums) != len(wantSums) {
				t.Fatalf("summary has %d accounts, rewards %d", len(sums), len(wantSums))
			}
			for k, want := range wantSums {
				if sums[k] == nil || sums[k].Cmp(want) != 0 || counts[k] != wantCounts[k] {
					t.Fatalf("%s: summary %v in %d rows, rewards %v in %d", k, sums[k], counts[k], want, wantCounts[k])
				}
			}
		})
	}

	t.Run("BucketsInZone", func(t *testing.T) {
		var body struct{ Items []summaryItemT }
		e.getOK("/v1/rewards/summary?source=presearch&group_by=day&tz=Europe/Berlin&account="+url.QueryEscape(preNodeA)).json(t, &body)
		first := body.Items[0]
		// Rewards begin 2026-10-26T01:00Z = 02:00 in Berlin (CET, +01:00).
		if got := first.BucketStart.Format(time.RFC3339); got != "2026-10-26T00:00:00+01:00" {
			t.Fatalf("first Berlin bucket starts %s", got)
		}
		// The Berlin day ends at 23:00Z: rewards at 01:00Z..22:00Z, 22 of them.
		if first.Count != 22 {
			t.Fatalf("first Berlin day holds %d rewards, want 22", first.Count)
		}
	})

	t.Run("Formats", func(t *testing.T) {
		var body struct{ Items []map[string]any }
		e.getOK("/v1/rewards/summary?group_by=month").json(t, &body)
		rows := ndjsonLines(t, e.getOK("/v1/rewards/summary?group_by=month&format=ndjson").body)
		if len(rows) != len(body.Items) || len(rows) == 0 {
			t.Fatalf("ndjson %d rows, json %d", len(rows), len(body.Items))
		}
		recs := csvRecords(t, e.getOK("/v1/rewards/summary?group_by=month", "Accept", "text/csv").body)
		if !slices.Equal(recs[0], summaryHeader) || len(recs)-1 != len(body.Items) {
			t.Fatalf("csv header %v, %d rows, want %d", recs[0], len(recs)-1, len(body.Items))
		}
		recs = csvRecords(t, e.getOK("/v1/rewards/summary?group_by=epoch&source=sm-node&format=csv").body)
		if !slices.Equal(recs[0], summaryEpochHeader) || recs[1][0] != "20" {
			t.Fatalf("epoch csv = %v", recs)
		}
		wantKeys(t, "summary item", body.Items[0], "bucket_start", "bucket_end", "source", "account", "unit", "amount", "raw_amount", "count", "missed")
	})
}
