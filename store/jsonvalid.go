package store

import "encoding/json"

// validJSON is json.Valid, faster on the payloads events carry: a plain
// recursive scan decides almost every input, and whatever it rejects is
// confirmed by json.Valid, so it never accepts what json.Valid refuses
// nor refuses what it accepts.
func validJSON(p []byte) bool {
	valid, _ := scanJSON(p)
	return valid
}

// scanJSON is validJSON and, for valid input, its nesting depth, in one
// pass where the plain scan decides: Apply checks every payload's depth,
// and a second pass over it cost as much as the validation.
func scanJSON(p []byte) (valid bool, depth int) {
	v := jsonScan{in: p}
	v.space()
	if v.value() {
		v.space()
		if v.pos == len(p) {
			return true, v.deepest
		}
	}
	if !json.Valid(p) {
		return false, 0
	}
	return true, jsonDepth(p)
}

type jsonScan struct {
	in      []byte
	pos     int
	depth   int
	deepest int
}

// maxJSONDepth is encoding/json's nesting limit; deeper input is left to it.
const maxJSONDepth = 10000

func (v *jsonScan) space() {
	for v.pos < len(v.in) {
		switch v.in[v.pos] {
		case ' ', '\t', '\n', '\r':
			v.pos++
		default:
			return
		}
	}
}

func (v *jsonScan) value() bool {
	if v.pos >= len(v.in) {
		return false
	}
	switch c := v.in[v.pos]; {
	case c == '{':
		return v.container('}', true)
	case c == '[':
		return v.container(']', false)
	case c == '"':
		return v.str()
	case c == '-' || c >= '0' && c <= '9':
		return v.number()
	case c == 't':
		return v.word("true")
	case c == 'f':
		return v.word("false")
	case c == 'n':
		return v.word("null")
	}
	return false
}

func (v *jsonScan) word(w string) bool {
	if len(v.in)-v.pos < len(w) || string(v.in[v.pos:v.pos+len(w)]) != w {
		return false
	}
	v.pos += len(w)
	return true
}

func (v *jsonScan) digits() int {
	n := 0
	for v.pos < len(v.in) && v.in[v.pos] >= '0' && v.in[v.pos] <= '9' {
		v.pos++
		n++
	}
	return n
}

func (v *jsonScan) number() bool {
	if v.in[v.pos] == '-' {
		v.pos++
	}
	switch {
	case v.pos < len(v.in) && v.in[v.pos] == '0':
		v.pos++
	case v.digits() == 0:
		return false
	}
	if v.pos < len(v.in) && v.in[v.pos] == '.' {
		v.pos++
		if v.digits() == 0 {
			return false
		}
	}
	if v.pos < len(v.in) && (v.in[v.pos] == 'e' || v.in[v.pos] == 'E') {
		v.pos++
		if v.pos < len(v.in) && (v.in[v.pos] == '+' || v.in[v.pos] == '-') {
			v.pos++
		}
		if v.digits() == 0 {
			return false
		}
	}
	return true
}

func (v *jsonScan) str() bool {
	for i := v.pos + 1; i < len(v.in); i++ {
		switch c := v.in[i]; {
		case c == '"':
			v.pos = i + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if i+1 >= len(v.in) {
				return false
			}
			switch v.in[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+6 > len(v.in) {
					return false
				}
				for _, h := range v.in[i+2 : i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				i += 5
			default:
				return false
			}
		}
	}
	return false
}

// container scans an object (members) or an array up to its close byte.
func (v *jsonScan) container(close byte, members bool) bool {
	if v.depth++; v.depth > maxJSONDepth {
		return false
	}
	v.deepest = max(v.deepest, v.depth)
	v.pos++
	v.space()
	if v.pos < len(v.in) && v.in[v.pos] == close {
		v.pos++
		v.depth--
		return true
	}
	for {
		v.space()
		if members {
			if v.pos >= len(v.in) || v.in[v.pos] != '"' || !v.str() {
				return false
			}
			v.space()
			if v.pos >= len(v.in) || v.in[v.pos] != ':' {
				return false
			}
			v.pos++
			v.space()
		}
		if !v.value() {
			return false
		}
		v.space()
		if v.pos >= len(v.in) {
			return false
		}
		switch v.in[v.pos] {
		case ',':
			v.pos++
		case close:
			v.pos++
			v.depth--
			return true
		default:
			return false
		}
	}
}
