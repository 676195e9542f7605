package bolt

import (
	"github.com/evindex/evindex/store"

	"bytes"
	"encoding/binary"
	"time"
)

// Keys are composite byte strings whose byte order is the query order:
// text parts end with a 0x00 separator (names never contain it) and
// integers are big-endian fixed width.
//
//	events            source 0 height(8) tx(4) event(4)
//	events_by_*       value 0 <event key>
//	events_by_tx      0x00 txid(hexStr) source 0 height(8) tx(4)   one per transaction;
//	                  files of earlier versions also hold txid 0 <event key>
//	blocks            source 0 height(8)
//	rewards           source 0 account 0 time(8) id
//	rewards_by_height source 0 height(8) <reward key>
//	rewards_by_alias  alias 0 <reward key>
//	coverage          source 0 from(8)          -> to(8)
//	state             source 0 key
//	nodes             source 0 node 0 time(8)
//	nodes_latest      source 0 node

const sep = 0x00

func appendText(k []byte, s string) []byte { return append(append(k, s...), sep) }

func appendU64(k []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(k, v) }

func appendU32(k []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(k, v) }

// timeKey maps a time to an order-preserving integer; times before 1970 map
// to 0 (no chain here is that old).
func timeKey(t time.Time) uint64 {
	if t.IsZero() || t.Before(time.Unix(0, 0)) {
		return 0
	}
	return uint64(t.UnixNano())
}

func eventKey(source string, height uint64, tx, ev uint32) []byte {
	return appendEventKey(make([]byte, 0, len(source)+17), source, height, tx, ev)
}

func appendEventKey(k []byte, source string, height uint64, tx, ev uint32) []byte {
	k = appendText(k, source)
	k = appendU64(k, height)
	k = appendU32(k, tx)
	return appendU32(k, ev)
}

func parseEventKey(k []byte) (source string, height uint64, tx, ev uint32, ok bool) {
	i := bytes.IndexByte(k, sep)
	if i < 0 || len(k) != i+1+16 {
		return "", 0, 0, 0, false
	}
	r := k[i+1:]
	return string(k[:i]), binary.BigEndian.Uint64(r), binary.BigEndian.Uint32(r[8:]), binary.BigEndian.Uint32(r[12:]), true
}

func blockKey(source string, height uint64) []byte {
	return appendU64(appendText(make([]byte, 0, len(source)+9), source), height)
}

func parseBlockKey(k []byte) (string, uint64, bool) {
	i := bytes.IndexByte(k, sep)
	if i < 0 || len(k) != i+9 {
		return "", 0, false
	}
	return string(k[:i]), binary.BigEndian.Uint64(k[i+1:]), true
}

func rewardKey(r *store.Reward) []byte {
	k := appendText(nil, r.Source)
	k = appendText(k, r.Account)
	k = appendU64(k, timeKey(r.Time))
	return append(k, r.ID...)
}

func nodeKey(source, node string, t time.Time) []byte {
	return appendU64(appendText(appendText(nil, source), node), timeKey(t))
}

// prefixEnd is the smallest key greater than every key starting with p, or
// nil when there is none.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// txGroupKey is the by_tx entry of a transaction's events: they share
// (source, height, tx index), so one entry finds them all in the events
// bucket. The leading 0x00 sets it apart from the earlier per-event form
// (text tx id, 0x00, event key), which no tx id starts with.
func txGroupKey(txID, source string, height uint64, txIndex uint32) []byte {
	return appendTxGroupKey(make([]byte, 0, 1+2+len(txID)+len(source)+13), txID, source, height, txIndex)
}

func appendTxGroupKey(dst []byte, txID, source string, height uint64, txIndex uint32) []byte {
	e := enc{b: append(dst, sep)}
	e.hexStr(txID)
	return appendU32(appendU64(appendText(e.b, source), height), txIndex)
}

// txGroupPrefix is the start of every group entry of a tx id.
func txGroupPrefix(txID string) []byte {
	e := enc{b: []byte{sep}}
	e.hexStr(txID)
	return e.b
}

// parseTxGroup returns the events key prefix (source 0 height tx) of a
// group entry, and the source and height.
func parseTxGroup(k []byte) (prefix []byte, source string, height uint64, ok bool) {
	if len(k) == 0 || k[0] != sep {
		return nil, "", 0, false
	}
	n, w := binary.Uvarint(k[1:])
	if w <= 0 || uint64(len(k)) < 1+uint64(w)+n>>1 {
		return nil, "", 0, false
	}
	rest := k[1+w+int(n>>1):]
	i := bytes.IndexByte(rest, sep)
	if i < 0 || len(rest) != i+1+12 {
		return nil, "", 0, false
	}
	return rest, string(rest[:i]), binary.BigEndian.Uint64(rest[i+1:]), true
}
