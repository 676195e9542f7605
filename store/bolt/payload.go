package bolt

import (
	"github.com/evindex/evindex/store"

	"encoding/hex"
	"slices"
)

// A packed payload replaces the event's own type, the fragments of its
// dictionary and runs of lowercase hex digits (ids, addresses) with
// codes. Compact JSON holds no byte below 0x20, so those bytes are free
// for codes:
//
//	0x00 b      the literal byte b (a control byte of a payload that is not compact)
//	0x01        the event's type
//	0x02..0x1e  fragment code-2 (the first MaxShortFragments)
//	0x1f b      fragment MaxShortFragments+b for b < 0xc0; for b >= 0xc0,
//	            the next b-0xbf bytes, written as lowercase hex digits
//	other       the byte itself
const (
	codeLiteral = 0x00
	codeType    = 0x01
	codeShort   = 0x02
	codeLong    = 0x1f
	hexRunBase  = 0xc0
	minHexRun   = 8 // hex digits; shorter runs save nothing
)

// store's dictionary limits are these codes': both differences must be 0.
var (
	_ [store.MaxShortFragments - (codeLong - codeShort)]struct{}
	_ [(codeLong - codeShort) - store.MaxShortFragments]struct{}
	_ [store.MaxFragments - store.MaxShortFragments - hexRunBase]struct{}
	_ [hexRunBase - (store.MaxFragments - store.MaxShortFragments)]struct{}
)

// payloadCodec is a dictionary ready for packing and unpacking.
type payloadCodec struct {
	id        uint64
	fragments []string
	// byFirst lists, per first byte, the fragments that start with it,
	// longest first (the one-byte code first among equals).
	byFirst [256][]token
}

// token is a fragment as the packer tries it.
type token struct {
	text string
	code []byte
}

// noFragments packs only the type and hex runs: the codec of sources
// that hand no dictionary.
var noFragments = &payloadCodec{}

// newPayloadCodec builds the codec of a validated dictionary.
func newPayloadCodec(id uint64, fragments []string) *payloadCodec {
	c := &payloadCodec{id: id, fragments: slices.Clone(fragments)}
	for i, s := range c.fragments {
		code := []byte{byte(codeShort + i)}
		if i >= store.MaxShortFragments {
			code = []byte{codeLong, byte(i - store.MaxShortFragments)}
		}
		c.byFirst[s[0]] = append(c.byFirst[s[0]], token{s, code})
	}
	for i := range c.byFirst {
		slices.SortStableFunc(c.byFirst[i], func(a, b token) int { return len(b.text) - len(a.text) })
	}
	return c
}

// pack appends p packed to dst. typ is the event's type, which payloads
// usually repeat.
func (pc *payloadCodec) pack(dst []byte, p []byte, typ string) []byte {
	for i := 0; i < len(p); {
		c := p[i]
		rest := p[i:]
		best, bestLen := []byte(nil), 0
		if len(typ) > 1 && c == typ[0] && hasPrefix(rest, typ) {
			best, bestLen = []byte{codeType}, len(typ)
		}
		for _, t := range pc.byFirst[c] {
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

// unpack reverses pack; it returns ErrCorrupt for codes pack does not
// write.
func (pc *payloadCodec) unpack(p []byte, typ string) ([]byte, error) {
	out := make([]byte, 0, 3*len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= 0x20:
			out = append(out, c)
		case c == codeLiteral:
			if i+1 >= len(p) {
				return nil, store.ErrCorrupt
			}
			i++
			out = append(out, p[i])
		case c == codeType:
			out = append(out, typ...)
		case c < codeLong:
			f, ok := pc.fragment(int(c - codeShort))
			if !ok {
				return nil, store.ErrCorrupt
			}
			out = append(out, f...)
		default:
			if i+1 >= len(p) {
				return nil, store.ErrCorrupt
			}
			i++
			b := int(p[i])
			if b < hexRunBase {
				f, ok := pc.fragment(store.MaxShortFragments + b)
				if !ok {
					return nil, store.ErrCorrupt
				}
				out = append(out, f...)
				continue
			}
			n := b - hexRunBase + 1
			if i+n >= len(p) {
				return nil, store.ErrCorrupt
			}
			out = hex.AppendEncode(out, p[i+1:i+1+n])
			i += n
		}
	}
	return out, nil
}

func (pc *payloadCodec) fragment(i int) (string, bool) {
	if i >= len(pc.fragments) {
		return "", false
	}
	return pc.fragments[i], true
}
