package presearch

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/evindex/evindex/store"
)

// Event types of connection changes.
const (
	EventConnected    = "presearch.node.connected"
	EventDisconnected = "presearch.node.disconnected"
)

// snapshotEvery is the longest a node goes without a stored snapshot, so
// its history shows it was watched even when nothing changed.
const snapshotEvery = time.Hour

// stateNodes is the Batch.State key of the last seen node states.
const stateNodes = "nodes"

// nodeMark is what the source remembers of a node between polls.
type nodeMark struct {
	Connected *bool  `json:"connected"`
	Since     string `json:"since,omitempty"`
	Digest    string `json:"digest"`
	StoredAt  int64  `json:"stored_at"` // unix seconds of the last snapshot
}

func loadMarks(raw []byte) (map[string]nodeMark, error) {
	m := map[string]nodeMark{}
	if len(raw) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode %s state: %w", stateNodes, err)
	}
	return m, nil
}

// observe turns one status poll into snapshots (for nodes that changed or
// were not stored for an hour) and connection events, and updates marks.
// Nodes whose status does not decode are returned as bad, for quarantine.
func (s *Source) observe(now time.Time, nodes []node, marks map[string]nodeMark) ([]store.NodeStatus, []store.Event, []badNode) {
	var snaps []store.NodeStatus
	var events []store.Event
	var bad []badNode
	for _, n := range nodes {
		var st apiStatus
		if len(n.Status) > 0 {
			if err := json.Unmarshal(n.Status, &st); err != nil {
				bad = append(bad, badNode{n.key, n.raw, "decode status: " + err.Error()})
				continue
			}
		}
		digest, err := statusDigest(n.Meta, n.Status)
		if err != nil {
			bad = append(bad, badNode{n.key, n.raw, err.Error()})
			continue
		}
		since := ""
		if st.InCurrentStateSince != nil {
			since = *st.InCurrentStateSince
		}
		prev, seen := marks[n.key]
		mark := nodeMark{Connected: st.Connected, Since: since, Digest: digest, StoredAt: prev.StoredAt}
		if !seen || prev.Digest != digest || now.Unix()-prev.StoredAt >= int64(snapshotEvery/time.Second) {
			details, err := nodeDetails(n.Meta, n.Status)
			if err != nil {
				bad = append(bad, badNode{n.key, n.raw, err.Error()})
				continue
			}
			snaps = append(snaps, store.NodeStatus{
				Node: n.key, Time: now, Connected: st.Connected, Details: details,
			})
			mark.StoredAt = now.Unix()
		}
		// A change of state, or of the time the state began (a flap between
		// two polls), is a connection event. The first sight of a node is
		// not: its history before that is unknown.
		if seen && st.Connected != nil && (prev.Connected == nil || *prev.Connected != *st.Connected || sinceMoved(prev.Since, since)) {
			events = append(events, connectionEvent(n.key, *st.Connected, since, prev, now))
		}
		marks[n.key] = mark
	}
	return snaps, events, bad
}

// sinceMoved reports whether the start of the current state moved by more
// than a minute: the node went down and up (or up and down) between two
// polls. Smaller moves are the API re-rounding the same start.
func sinceMoved(prev, cur string) bool {
	a, errA := time.Parse(time.RFC3339, prev)
	b, errB := time.Parse(time.RFC3339, cur)
	if errA != nil || errB != nil {
		return prev != cur
	}
	d := b.Sub(a)
	return d > time.Minute || d < -time.Minute
}

// connectionEvent is keyed by what the API says, not by when we looked:
// height is the unix second the state began, tx index a hash of the node,
// event index the direction. Seeing the same change again rewrites the
// same event.
func connectionEvent(key string, connected bool, since string, prev nodeMark, now time.Time) store.Event {
	at, err := time.Parse(time.RFC3339, since)
	if err != nil {
		// No usable since: the minute of the observation is the best bound.
		at = now.Truncate(time.Minute)
	}
	typ, idx := EventDisconnected, uint32(1)
	if connected {
		typ, idx = EventConnected, 0
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	payload, _ := json.Marshal(struct {
		Node          string `json:"node"`
		Connected     bool   `json:"connected"`
		Since         string `json:"since"`
		PrevConnected *bool  `json:"previous_connected"`
		PrevSince     string `json:"previous_since,omitempty"`
	}{key, connected, since, prev.Connected, prev.Since})
	return store.Event{
		Height:     uint64(max(at.Unix(), 0)),
		BlockTime:  at.UTC(),
		TxIndex:    h.Sum32(),
		EventIndex: idx,
		Type:       typ,
		Addresses:  []string{key},
		Payload:    payload,
	}
}

// nodeDetails is the stored details of a snapshot: the API's meta and
// status objects as they came, nulls included.
func nodeDetails(meta, status json.RawMessage) (json.RawMessage, error) {
	var buf bytes.Buffer
	buf.WriteString(`{"meta":`)
	if err := writeCompact(&buf, meta); err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	buf.WriteString(`,"status":`)
	if err := writeCompact(&buf, status); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func writeCompact(buf *bytes.Buffer, raw json.RawMessage) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		buf.WriteString("null")
		return nil
	}
	return json.Compact(buf, raw)
}

// statusDigest fingerprints meta and status without the minute counter,
// which changes on every poll.
func statusDigest(meta, status json.RawMessage) (string, error) {
	h := sha256.New()
	for _, raw := range []json.RawMessage{meta, status} {
		var v any
		if len(bytes.TrimSpace(raw)) > 0 {
			d := json.NewDecoder(bytes.NewReader(raw))
			d.UseNumber()
			if err := d.Decode(&v); err != nil {
				return "", fmt.Errorf("decode meta/status: %w", err)
			}
		}
		if m, ok := v.(map[string]any); ok {
			delete(m, "minutes_in_current_state")
		}
		b, err := json.Marshal(v) // maps marshal with sorted keys
		if err != nil {
			return "", err
		}
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
