package httpapi

import (
	"bytes"
	"context"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

func readParquet[R any](t *testing.T, r response) []R {
	t.Helper()
	if r.header.Get("Content-Type") != "application/vnd.apache.parquet" ||
		!strings.Contains(r.header.Get("Content-Disposition"), ".parquet") {
		t.Fatalf("parquet headers %v", r.header)
	}
	rows, err := parquet.Read[R](bytes.NewReader(r.body), int64(len(r.body)))
	if err != nil {
		t.Fatalf("read parquet: %v", err)
	}
	return rows
}

func TestParquetExport(t *testing.T) {
	e := newEnv(t)

	t.Run("Rewards", func(t *testing.T) {
		wantSums, wantCounts := rewardTotals(t, e, "")
		rows := readParquet[rewardPq](t, e.getOK("/v1/rewards?format=parquet"))
		sums, counts := map[string]*big.Int{}, map[string]uint64{}
		for _, r := range rows {
			k := r.Source + "|" + r.Account + "|" + r.Unit
			if sums[k] == nil {
				sums[k] = new(big.Int)
			}
			raw := new(big.Int).SetBytes(r.RawAmount[:])
			sums[k].Add(sums[k], raw)
			counts[k]++
			// amount is DECIMAL(38, 18): in whole units it must read as the
			// JSON's amount, however many decimals the unit has.
			decimals := map[string]int{"FLOW": 8, "SMH": 9, "PRE": 18}[r.Unit]
			amount := formatBig(new(big.Int).SetBytes(r.Amount[:]), 18)
			if want := formatBig(raw, decimals) + strings.Repeat("0", 18-decimals); amount != want {
				t.Fatalf("amount %s for raw %s %s, want %s", amount, raw, r.Unit, want)
			}
			if (r.Height == nil) != (r.Source == preSource) || (r.PeriodStart == 0) != (r.Source != preSource) {
				t.Fatalf("height/period nulls wrong: %+v", r)
			}
		}
		for k, want := range wantSums {
			if sums[k] == nil || sums[k].Cmp(want) != 0 || counts[k] != wantCounts[k] {
				t.Fatalf("%s: parquet %v in %d rows, JSON %v in %d", k, sums[k], counts[k], want, wantCounts[k])
			}
		}
		if len(sums) != len(wantSums) {
			t.Fatalf("parquet has %d accounts, JSON %d", len(sums), len(wantSums))
		}
	})

	t.Run("Schema", func(t *testing.T) {
		r := e.getOK("/v1/rewards?format=parquet&limit=3")
		f, err := parquet.OpenFile(bytes.NewReader(r.body), int64(len(r.body)))
		if err != nil {
			t.Fatal(err)
		}
		if f.NumRows() != 3 {
			t.Fatalf("limit=3: %d rows", f.NumRows())
		}
		schema := f.Schema().String()
		for _, want := range []string{
			"optional int64 height", "int64 time (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS))",
			"fixed_len_byte_array(16) raw_amount (DECIMAL(38,0))", "fixed_len_byte_array(16) amount (DECIMAL(38,18))",
			"optional binary details (JSON)",
		} {
			if !strings.Contains(schema, want) {
				t.Fatalf("schema lacks %q:\n%s", want, schema)
			}
		}
	})

	t.Run("EventsAcrossPages", func(t *testing.T) {
		rows := readParquet[eventPq](t, e.getOK("/v1/events", "Accept", "application/vnd.apache.parquet"))
		if len(rows) != flowBlocks*flowPerBlk {
			t.Fatalf("%d events, want %d", len(rows), flowBlocks*flowPerBlk)
		}
		last := rows[len(rows)-1]
		wantTime := flowStart.Add(time.Duration(flowBlocks-1) * 10 * time.Second)
		if last.Height != flowFrom+flowBlocks-1 || last.BlockTime != wantTime.UnixMicro() || !strings.HasPrefix(last.Payload, `{"type":"Event"`) {
			t.Fatalf("last event row %+v", last)
		}
	})

	t.Run("BlocksNodesSummary", func(t *testing.T) {
		if n := len(readParquet[blockPq](t, e.getOK("/v1/blocks?format=parquet&source=sm-node"))); n != smLayers {
			t.Fatalf("%d blocks, want %d", n, smLayers)
		}
		nodes := readParquet[nodePq](t, e.getOK("/v1/nodes?format=parquet"))
		if len(nodes) != 3 || nodes[0].Connected == nil {
			t.Fatalf("nodes %+v", nodes)
		}
		var body struct{ Items []summaryItemT }
		e.getOK("/v1/rewards/summary?group_by=epoch&source=sm-node").json(t, &body)
		rows := readParquet[summaryPq](t, e.getOK("/v1/rewards/summary?group_by=epoch&source=sm-node&format=parquet"))
		if len(rows) != len(body.Items) || rows[0].Epoch == nil || *rows[0].Epoch != int64(*body.Items[0].Epoch) ||
			new(big.Int).SetBytes(rows[0].RawAmount[:]).String() != body.Items[0].RawAmount || rows[0].BucketStart != body.Items[0].BucketStart.UnixMicro() {
			t.Fatalf("summary parquet %+v, json %+v", rows, body.Items)
		}
	})

	t.Run("AmountBeyondTheDecimal", func(t *testing.T) {
		st := storetest.MustOpen(t)
		big := "1" + strings.Repeat("0", 37) // 38 digits of 10^-8 FLOW: 31 digits of whole FLOW
		err := st.Apply(context.Background(), store.Batch{Source: "huge", Kind: "flow", Rewards: []store.Reward{{
			Source: "huge", Account: "n", Kind: "flow_node_reward", ID: "1", Height: 1, HasHeight: true, Time: testNow,
			RawAmount: big, Unit: "FLOW", Decimals: 8}}})
		if err != nil {
			t.Fatal(err)
		}
		h := newEnvStore(t, st)
		r := h.get("/v1/rewards?format=parquet")
		if d := errorOf(t, r); r.status != 400 || d.Param != "format" || !strings.Contains(d.Message, "does not fit Parquet's DECIMAL(38, 18); export it as csv") {
			t.Fatalf("an amount beyond DECIMAL(38, 18): %d %s", r.status, r.body)
		}
		if rows := csvRecords(t, h.getOK("/v1/rewards?format=csv").body); len(rows) != 2 || rows[1][8] != big {
			t.Fatalf("csv of the amount: %v", rows)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		if n := len(readParquet[rewardPq](t, e.getOK("/v1/rewards?from_time=2030-01-01&format=parquet"))); n != 0 {
			t.Fatalf("%d rows", n)
		}
	})
}

// TestParquetRowGroups checks that a large export is cut into row groups
// as it is written, which is what bounds its memory.
func TestParquetRowGroups(t *testing.T) {
	var buf bytes.Buffer
	rw := rewardParquet(&buf)
	batch := make([]reward, 1000)
	for i := range batch {
		batch[i] = reward{amount: "1.0"}
		batch[i].Source, batch[i].RawAmount, batch[i].Time = "s", "10", testNow
	}
	for range 25 {
		if err := rw.write(batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := rw.close(); err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if f.NumRows() != 25000 || len(f.RowGroups()) != 3 {
		t.Fatalf("%d rows in %d row groups, want 25000 in 3", f.NumRows(), len(f.RowGroups()))
	}
}
