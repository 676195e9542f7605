package flowsim

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The hand encoder must write exactly what encoding/json writes, or the
// chain's payloads (and the ground truth built from them) would change.
func TestAppendCDCMatchesEncodingJSON(t *testing.T) {
	c := newChain(Config{Seed: 3, RewardEvery: 7, StakingContract: DefaultStakingContract})
	values := []cdcValue{
		{Type: "Event", Value: cdcComposite{ID: "A.1.C.E"}},
		{Type: "Event", Value: cdcComposite{ID: "A.1.C.E", Fields: []cdcField{}}},
		cdcString("quote \" <tag> & \u00e9 \x01"),
		cdcOptional(nil),
		cdcOptional(cdcAddress("01")),
		{Type: "Int", Value: 12},
	}
	for h := uint64(1); h <= 300; h++ {
		events, _ := c.events(h)
		for _, ev := range events {
			// Re-encode through encoding/json from the decoded shape: the
			// same bytes come back when the hand encoder is right.
			var v struct {
				Type  string `json:"type"`
				Value struct {
					ID     string `json:"id"`
					Fields []struct {
						Name  string          `json:"name"`
						Value json.RawMessage `json:"value"`
					} `json:"fields"`
				} `json:"value"`
			}
			if err := json.Unmarshal(ev.Payload, &v); err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(v)
			if got := bytes.TrimSuffix(ev.Payload, []byte("\n")); !bytes.Equal(got, want) {
				t.Fatalf("height %d:\n got %s\nwant %s", h, got, want)
			}
		}
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendCDC(nil, v); !bytes.Equal(got, want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}
