package httpapi

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

// formulas are upstream texts a spreadsheet would run.
var formulas = []string{`=cmd|' /C calc'!A0`, `+SUM(1+1)`, `-2+3`, `@SUM(A1)`, "\tTAB", "\rCR", `=hyperlink("http://x","y")`}

// TestCSVNeutralisesFormulas: a Flow event type, a RewardsPaid node id or
// a Presearch key that starts like a formula used to reach CSV cells as
// is. Text cells get a leading quote (the OWASP rule); numeric columns
// and NDJSON and Parquet keep the bytes exactly.
func TestCSVNeutralisesFormulas(t *testing.T) {
	st := storetest.MustOpen(t)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	b := store.Batch{Source: "hostile", Kind: "flow"}
	for i, f := range formulas {
		h := uint64(i + 1)
		b.Events = append(b.Events, store.Event{Height: h, BlockTime: t0, Type: f, Payload: json.RawMessage(`{}`)})
		b.Rewards = append(b.Rewards, store.Reward{Account: f, Kind: "flow_node_reward", ID: "x", Height: h, HasHeight: true,
			Time: t0.Add(time.Duration(i) * time.Minute), RawAmount: "123", Unit: "FLOW", Decimals: 8})
		b.Nodes = append(b.Nodes, store.NodeStatus{Node: f, Time: t0})
	}
	if err := st.Apply(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	e := newEnvStore(t, st)
	for _, c := range []struct{ path, column string }{
		{"/v1/events?format=csv", "type"},
		{"/v1/rewards?format=csv", "account"},
		{"/v1/nodes?format=csv", "node"},
	} {
		rows, err := csv.NewReader(bytes.NewReader(e.getOK(c.path).body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		col, height := -1, -1
		for i, h := range rows[0] {
			switch h {
			case c.column:
				col = i
			case "height", "raw_amount":
				height = i
			}
		}
		got := map[string]bool{}
		for _, r := range rows[1:] {
			got[r[col]] = true
			if height >= 0 && strings.HasPrefix(r[height], "'") {
				t.Errorf("%s: numeric column %s neutralised: %q", c.path, rows[0][height], r[height])
			}
		}
		for _, f := range formulas {
			if !got["'"+f] {
				t.Errorf("%s: column %s has no neutralised %q; has %v", c.path, c.column, f, got)
			}
		}
	}
	// Scripts read the bytes as the upstream sent them.
	nd := e.getOK("/v1/events?format=ndjson").body
	for _, f := range formulas {
		want, _ := json.Marshal(f)
		if !bytes.Contains(nd, append([]byte(`"type":`), want...)) {
			t.Errorf("ndjson changed %q", f)
		}
	}
	rows, err := parquet.Read[eventPq](bytes.NewReader(e.getOK("/v1/events?format=parquet").body), int64(len(e.getOK("/v1/events?format=parquet").body)))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if r.Type != formulas[i] {
			t.Errorf("parquet row %d type %q, want %q", i, r.Type, formulas[i])
		}
	}
}

func TestNeutralizeCell(t *testing.T) {
	for in, want := range map[string]string{"": "", "A.1.Token": "A.1.Token", "=1": "'=1", "-": "'-", "x=1": "x=1", "'=1": "'=1"} {
		if got := neutralizeCell(in); got != want {
			t.Errorf("neutralizeCell(%q) = %q, want %q", in, got, want)
		}
	}
}
