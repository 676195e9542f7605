package spacemesh

import (
	"context"
	"encoding/json"
	"time"

	smv1 "github.com/spacemeshos/api/release/go/spacemesh/v1"

	"github.com/evindex/evindex/store"
)

// nodeSnapshot is what a stored node status says.
type nodeSnapshot struct {
	ConnectedPeers uint64 `json:"connected_peers"`
	IsSynced       bool   `json:"is_synced"`
	SyncedLayer    uint32 `json:"synced_layer"`
	TopLayer       uint32 `json:"top_layer"`
	VerifiedLayer  uint32 `json:"verified_layer"`
}

// statusTracker stores a node's status when it changes, at most once per
// every: a change inside the interval waits, and the latest one is stored
// when the interval has passed.
type statusTracker struct {
	every   time.Duration
	last    *nodeSnapshot // last stored in this run
	lastAt  time.Time
	pending *nodeSnapshot
}

// observeStatus records a status from a query or the stream.
func (r *run) observeStatus(ctx context.Context, st *smv1.NodeStatus) error {
	if st == nil {
		return nil
	}
	snap := nodeSnapshot{
		ConnectedPeers: st.GetConnectedPeers(),
		IsSynced:       st.GetIsSynced(),
		SyncedLayer:    st.GetSyncedLayer().GetNumber(),
		TopLayer:       st.GetTopLayer().GetNumber(),
		VerifiedLayer:  st.GetVerifiedLayer().GetNumber(),
	}
	t := &r.status
	if t.last != nil && *t.last == snap {
		t.pending = nil
		return nil
	}
	t.pending = &snap
	return r.flushStatus(ctx)
}

// flushStatus stores the pending snapshot once the interval allows it.
func (r *run) flushStatus(ctx context.Context) error {
	t := &r.status
	if t.pending == nil {
		return nil
	}
	now := r.cfg.Now()
	if t.last != nil && now.Sub(t.lastAt) < t.every {
		return nil
	}
	snap := *t.pending
	details, err := json.Marshal(snap)
	if err != nil {
		return err
	}
	connected, synced := snap.ConnectedPeers > 0, snap.IsSynced
	mark, err := json.Marshal(statusMark{At: now.UTC(), Status: snap})
	if err != nil {
		return err
	}
	if err := r.sink.Emit(ctx, store.Batch{
		Nodes: []store.NodeStatus{{
			Node: r.cfg.NodeName, Time: now.UTC(), Connected: &connected, Synced: &synced, Details: details,
		}},
		State: map[string][]byte{statusKey: mark},
	}); err != nil {
		return err
	}
	t.last, t.lastAt, t.pending = &snap, now, nil
	return nil
}

// statusKey names the source state that remembers the last stored
// snapshot, so a restart neither repeats it nor stores the next one early.
const statusKey = "node_status"

type statusMark struct {
	At     time.Time    `json:"at"`
	Status nodeSnapshot `json:"status"`
}

// restore loads the last stored snapshot from the source state.
func (t *statusTracker) restore(raw []byte) {
	var m statusMark
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return
	}
	t.last, t.lastAt = &m.Status, m.At
}
