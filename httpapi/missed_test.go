package httpapi

import (
	"fmt"
	"testing"
)

// The fixture's smesher may propose in every even layer and earns in
// every fourth; it proposed in layers 2 mod 8.
func TestMissedRewards(t *testing.T) {
	e := newEnv(t)
	var want []string
	last := uint64(smFrom + smLayers - 1)
	for l := uint64(smFrom); l+10 <= last; l += 2 {
		if l%4 == 0 {
			continue
		}
		reason := "no_proposal"
		if l%8 == 2 {
			reason = "not_included"
		}
		want = append(want, fmt.Sprintf("%d %s", l, reason))
	}
	t.Run("Pages", func(t *testing.T) {
		items := e.allPages("/v1/rewards/missed?source="+smSource, 7)
		if len(items) != len(want) {
			t.Fatalf("%d missed rewards, want %d", len(items), len(want))
		}
		for i, it := range items {
			got := fmt.Sprintf("%v %v", it["height"], it["reason"])
			if got != want[i] || it["account"] != smSmesher || it["coinbase"] != smCoinbase || it["eligibilities"] != 1.0 {
				t.Fatalf("item %d: %v, want %s of %s paid to %s", i, it, want[i], smSmesher, smCoinbase)
			}
		}
	})
	t.Run("Filters", func(t *testing.T) {
		items := e.allPages(fmt.Sprintf("/v1/rewards/missed?account=%s&from_height=%d&to_height=%d", smSmesher, smFrom+2, smFrom+10), 100)
		if len(items) != 3 { // 80642, 80646, 80650
			t.Fatalf("%d missed rewards in 80642..80650: %v", len(items), items)
		}
		if items := e.allPages("/v1/rewards/missed?account=someone-else", 100); len(items) != 0 {
			t.Fatalf("misses of an account without eligibilities: %v", items)
		}
	})
	t.Run("Summary", func(t *testing.T) {
		for _, q := range []string{"group_by=day", "group_by=epoch&source=" + smSource, "group_by=week&account=" + smSmesher} {
			var p page
			e.getOK("/v1/rewards/summary?"+q).json(t, &p)
			missed := 0.0
			for _, it := range p.Items {
				missed += it["missed"].(float64)
				if it["missed"].(float64) > 0 && it["account"] != smCoinbase {
					t.Fatalf("%s: misses counted for %v, want the coinbase %s", q, it["account"], smCoinbase)
				}
			}
			if int(missed) != len(want) {
				t.Fatalf("%s: the summary counts %v missed, the list has %d", q, missed, len(want))
			}
		}
		var p page
		e.getOK("/v1/rewards/summary?group_by=day&kind=presearch_period").json(t, &p)
		for _, it := range p.Items {
			if it["missed"].(float64) != 0 {
				t.Fatalf("presearch rewards count misses: %v", it)
			}
		}
	})
	t.Run("CSV", func(t *testing.T) {
		recs := csvRecords(t, e.getOK("/v1/rewards/missed?format=csv").body)
		if len(recs) != len(want)+1 || fmt.Sprint(recs[0]) != fmt.Sprint(missedHeader) {
			t.Fatalf("%d csv records, want a header and %d rows", len(recs), len(want))
		}
	})
	t.Run("Coverage", func(t *testing.T) {
		var p page
		e.getOK("/v1/rewards/missed/coverage").json(t, &p)
		if len(p.Items) != 1 || p.Items[0]["epoch"] != 20.0 || p.Items[0]["coverage"] != "known" {
			t.Fatalf("coverage %v, want epoch 20 known", p.Items)
		}
	})
}
