package store

import (
	"encoding/hex"
	"slices"
)

// Event payloads are compact JSON, and most of their bytes are the same
// few fragments (JSON-CDC's {"type":…,"value":…} nesting, type and field
// names) plus the event's own type again. packPayload replaces them with
// one- or two-byte codes. Compact JSON holds no byte below 0x20, so those
// bytes are free for codes:
//
//	0x00 b      the literal byte b (a control byte of a payload that is not compact)
//	0x01        the event's type
//	0x02..0x1e  shortTokens[code-2]
//	0x1f b      longTokens[b] for b < 0xc0; for b >= 0xc0, the next
//	            b-0xbf bytes, written as lowercase hex digits
//	other       the byte itself
//
// The tables are part of the file format: never reorder or remove an
// entry; new fragments may only be appended to longTokens.
const (
	codeLiteral = 0x00
	codeType    = 0x01
	codeShort   = 0x02
	codeLong    = 0x1f
	hexRunBase  = 0xc0
	minHexRun   = 8 // hex digits; shorter runs save nothing
)

var shortTokens = [...]string{
	`{"type":"Event","value":{"id":"`,
	`","fields":[{"name":"`,
	`","value":{"type":"`,
	`UFix64","value":"`,
	`Optional","value":{"type":"`,
	`Address","value":"0x`,
	`"}},{"name":"`,
	`"}}}]}}`,
	`"}}]}}`,
	`"}}},{"name":"`,
	`Optional","value":null}`,
	`String","value":"`,
	`UInt64","value":"`,
	`","value":"`,
	`{"type":"`,
	`"},{"type":"`,
	`amount`,
	`UInt32","value":"`,
	`UInt8","value":"`,
	`Bool","value":`,
	`Array","value":[`,
	`Dictionary","value":[{"key":{"type":"`,
	`"}},{"key":{"type":"`,
	`Struct","value":{"id":"`,
	`Int","value":"`,
	`"value":`,
	`"type":"`,
	`{"name":"`,
	`.00000000`,
}

var longTokens = [...]string{
	`Resource","value":{"id":"`,
	`Event","value":{"id":"`,
	`Path","value":{"domain":"`,
	`","identifier":"`,
	`Type","value":{"staticType":`,
	`Fix64","value":"`,
	`Int8","value":"`,
	`Int16","value":"`,
	`Int32","value":"`,
	`Int64","value":"`,
	`Int128","value":"`,
	`Int256","value":"`,
	`UInt16","value":"`,
	`UInt128","value":"`,
	`UInt256","value":"`,
	`Word8","value":"`,
	`Word16","value":"`,
	`Word32","value":"`,
	`Word64","value":"`,
	`Character","value":"`,
	`Void"}`,
	`Capability","value":{`,
	`Enum","value":{"id":"`,
	`Contract","value":{"id":"`,
	`"kind":"`,
	`"typeID":"`,
	`"fields":[`,
	`"id":"`,
	`"key":`,
	`"address":"0x`,
	`"borrowType":`,
	`"staticType":`,
	`"initializers":[]`,
	`from`,
	`nodeID`,
	`delegatorID`,
	`uuid`,
	`address`,
	`inclusionEffort`,
	`executionEffort`,
	`fromFees`,
	`minted`,
	`feesBurned`,
	`total`,
	`storage`,
	`public`,
	`private`,
	`true`,
	`false`,
	`null`,
	`"},{"`,
	`":{"`,
	`":"`,
	`","`,
	`":[`,
	`"}]`,
	`"}}`,
}

// token is a table entry as the packer tries it.
type token struct {
	text string
	code []byte
}

// tokensByFirst lists, per first byte, the entries that start with it,
// longest first (the one-byte code first among equals).
var tokensByFirst = func() (idx [256][]token) {
	for i, s := range shortTokens {
		idx[s[0]] = append(idx[s[0]], token{s, []byte{byte(codeShort + i)}})
	}
	for i, s := range longTokens {
		idx[s[0]] = append(idx[s[0]], token{s, []byte{codeLong, byte(i)}})
	}
	for i := range idx {
		slices.SortStableFunc(idx[i], func(a, b token) int { return len(b.text) - len(a.text) })
	}
	return idx
}()

func init() {
	if codeShort+len(shortTokens) > codeLong || len(longTokens) > hexRunBase {
		panic("store: payload token tables overflow their codes")
	}
}

// packPayload appends p packed to dst. typ is the event's type, which
// payloads usually repeat.
func packPayload(dst []byte, p []byte, typ string) []byte {
	for i := 0; i < len(p); {
		c := p[i]
		rest := p[i:]
		best, bestLen := []byte(nil), 0
		if len(typ) > 1 && c == typ[0] && hasPrefix(rest, typ) {
			best, bestLen = []byte{codeType}, len(typ)
		}
		for _, t := range tokensByFirst[c] {
			if len(t.text) <= bestLen {
				break
			}
			if len(t.text) > len(t.code) && hasPrefix(rest, t.text) {
				best, bestLen = t.code, len(t.text)
				break
			}
		}
		if best != nil {
			dst = append(dst, best...)
			i += bestLen
			continue
		}
		if n := hexRun(rest); n >= minHexRun {
			raw := n / 2
			dst = append(dst, codeLong, byte(hexRunBase+raw-1))
			dst, _ = hex.AppendDecode(dst, rest[:2*raw])
			i += 2 * raw
			continue
		}
		if c < 0x20 {
			dst = append(dst, codeLiteral)
		}
		dst = append(dst, c)
		i++
	}
	return dst
}

func hasPrefix(b []byte, s string) bool {
	return len(b) >= len(s) && string(b[:len(s)]) == s
}

// hexRun is the length of the run of lowercase hex digits b starts with,
// up to what one code can hold.
func hexRun(b []byte) int {
	limit := min(len(b), 2*(256-hexRunBase))
	n := 0
	for n < limit && (b[n] >= '0' && b[n] <= '9' || b[n] >= 'a' && b[n] <= 'f') {
		n++
	}
	return n
}

// unpackPayload reverses packPayload; it returns ErrCorrupt for codes
// packPayload does not write.
func unpackPayload(p []byte, typ string) ([]byte, error) {
	out := make([]byte, 0, 3*len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= 0x20:
			out = append(out, c)
		case c == codeLiteral:
			if i+1 >= len(p) {
				return nil, ErrCorrupt
			}
			i++
			out = append(out, p[i])
		case c == codeType:
			out = append(out, typ...)
		case c < codeLong:
			if int(c-codeShort) >= len(shortTokens) {
				return nil, ErrCorrupt
			}
			out = append(out, shortTokens[c-codeShort]...)
		default:
			if i+1 >= len(p) {
				return nil, ErrCorrupt
			}
			i++
			b := int(p[i])
			if b < hexRunBase {
				if b >= len(longTokens) {
					return nil, ErrCorrupt
				}
				out = append(out, longTokens[b]...)
				continue
			}
			n := b - hexRunBase + 1
			if i+n >= len(p) {
				return nil, ErrCorrupt
			}
			out = hex.AppendEncode(out, p[i+1:i+1+n])
			i += n
		}
	}
	return out, nil
}
