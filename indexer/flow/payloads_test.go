package flow

import (
	"context"
	"testing"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

// The dictionary must stay the one that files before schema version 4
// packed Flow payloads with: a new file holds that list as dictionary 1,
// and Apply refuses the id with any other fragments.
func TestPayloadDictionaryIsTheFilesFirst(t *testing.T) {
	st := storetest.MustOpen(t)
	b := store.Batch{Source: "flow", Kind: Kind, PayloadDictionary: &PayloadDictionary}
	if err := st.Apply(context.Background(), b); err != nil {
		t.Fatalf("a new file refuses the Flow payload dictionary: %v", err)
	}
}
