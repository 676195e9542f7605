package postgres

import (
	"bytes"
	"encoding/binary"
	"math"
	"time"

	"github.com/evindex/evindex/store"
)

// Cursors are the bbolt backend's, byte for byte: a kind letter and the
// last row's key in the bbolt key layout, base64url encoded. A cursor
// therefore means the same row on either backend and on every process;
// here it is parsed back into the row's key columns, and the next page
// starts after that tuple (keyset pagination on the primary key order,
// which COLLATE "C" makes the bytes' order).
//
//	events  'e'  source 0 height(8) tx(4) event(4)
//	blocks  'b'  source 0 height(8)
//	rewards 'r'  source 0 account 0 time_key(8) id
//	nodes   'n'  source 0 node 0 time_key(8)
//	rejected 'q' source 0 height(8) key
const (
	cursorRejected = 'q'
	cursorEvents   = 'e'
	cursorBlocks   = 'b'
	cursorRewards  = 'r'
	cursorNodes    = 'n'
)

const sep = 0x00

var (
	encodeCursor = store.EncodeCursor
	decodeCursor = store.DecodeCursor
)

func appendText(k []byte, s string) []byte { return append(append(k, s...), sep) }

// cutText splits the text part off the front of a key.
func cutText(k []byte) (string, []byte, bool) {
	i := bytes.IndexByte(k, sep)
	if i < 0 {
		return "", nil, false
	}
	return string(k[:i]), k[i+1:], true
}

// eventKey is an event's cursor key.
type eventKey struct {
	source string
	height int64
	tx, ev int64
}

func (k eventKey) bytes() []byte {
	b := appendText(nil, k.source)
	b = binary.BigEndian.AppendUint64(b, uint64(k.height))
	b = binary.BigEndian.AppendUint32(b, uint32(k.tx))
	return binary.BigEndian.AppendUint32(b, uint32(k.ev))
}

func parseEventKey(b []byte) (eventKey, bool) {
	src, r, ok := cutText(b)
	if !ok || len(r) != 16 {
		return eventKey{}, false
	}
	h := binary.BigEndian.Uint64(r)
	if h > math.MaxInt64 {
		return eventKey{}, false
	}
	return eventKey{src, int64(h), int64(binary.BigEndian.Uint32(r[8:])), int64(binary.BigEndian.Uint32(r[12:]))}, true
}

// blockKey is a block's cursor key.
type blockKey struct {
	source string
	height int64
}

func (k blockKey) bytes() []byte {
	return binary.BigEndian.AppendUint64(appendText(nil, k.source), uint64(k.height))
}

func parseBlockKey(b []byte) (blockKey, bool) {
	src, r, ok := cutText(b)
	if !ok || len(r) != 8 || binary.BigEndian.Uint64(r) > math.MaxInt64 {
		return blockKey{}, false
	}
	return blockKey{src, int64(binary.BigEndian.Uint64(r))}, true
}

// rewardKey is a reward's identity and cursor key.
type rewardKey struct {
	source, account string
	timeKey         int64
	id              string
}

func (k rewardKey) bytes() []byte {
	b := appendText(appendText(nil, k.source), k.account)
	b = binary.BigEndian.AppendUint64(b, uint64(k.timeKey))
	return append(b, k.id...)
}

func parseRewardKey(b []byte) (rewardKey, bool) {
	src, r, ok := cutText(b)
	if !ok {
		return rewardKey{}, false
	}
	acct, r, ok := cutText(r)
	if !ok || len(r) < 8 || binary.BigEndian.Uint64(r) > math.MaxInt64 {
		return rewardKey{}, false
	}
	return rewardKey{src, acct, int64(binary.BigEndian.Uint64(r)), string(r[8:])}, true
}

// nodeKey is a node snapshot's identity and cursor key.
type nodeKey struct {
	source, node string
	timeKey      int64
}

func (k nodeKey) bytes() []byte {
	return binary.BigEndian.AppendUint64(appendText(appendText(nil, k.source), k.node), uint64(k.timeKey))
}

func parseNodeKey(b []byte) (nodeKey, bool) {
	src, r, ok := cutText(b)
	if !ok {
		return nodeKey{}, false
	}
	node, r, ok := cutText(r)
	if !ok || len(r) != 8 || binary.BigEndian.Uint64(r) > math.MaxInt64 {
		return nodeKey{}, false
	}
	return nodeKey{src, node, int64(binary.BigEndian.Uint64(r))}, true
}

// timeKey is the bbolt key's order-preserving integer of a time: its
// nanoseconds since the epoch, 0 for the zero time and times before 1970.
func timeKey(t time.Time) int64 {
	if t.IsZero() || t.Before(time.Unix(0, 0)) {
		return 0
	}
	return t.UnixNano()
}

// nanos is how a time is stored: nanoseconds since the epoch, 0 for the
// zero time (as the bbolt values store it).
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos; times come back in UTC.
func fromNanos(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// rejectedKey is a rejected record's identity and cursor key.
type rejectedKey struct {
	source string
	height int64
	key    string
}

func (k rejectedKey) bytes() []byte {
	return append(blockKey{k.source, k.height}.bytes(), k.key...)
}

func parseRejectedKey(b []byte) (rejectedKey, bool) {
	src, r, ok := cutText(b)
	if !ok || len(r) < 8 || binary.BigEndian.Uint64(r) > math.MaxInt64 {
		return rejectedKey{}, false
	}
	return rejectedKey{src, int64(binary.BigEndian.Uint64(r)), string(r[8:])}, true
}
