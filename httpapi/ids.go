package httpapi

import "strings"

// Ids in queries are taken in the forms people paste them in and matched
// in the one form the sources store: Flow addresses and hex ids (node,
// smesher, transaction) lowercase without 0x, Flow addresses 16 digits;
// Spacemesh bech32 addresses lowercase; Presearch public keys (base64)
// exactly, except that a space is a '+' that an unencoded URL turned into
// one: no id holds a space.

// flowAddressDigits is the length of a Flow address in hex.
const flowAddressDigits = 16

// normalID is the stored form of one id.
func normalID(v string) string {
	v = strings.TrimSpace(strings.ReplaceAll(v, " ", "+"))
	if h, ok := hexForm(v); ok {
		return h
	}
	if isBech32(v) {
		return strings.ToLower(v)
	}
	return v
}

// idForms are the forms an account may be stored in. Accounts are OR-ed,
// so a form that is not stored costs nothing, and a base64 key that only
// looks like hex still matches as given.
func idForms(v string) []string {
	given := strings.TrimSpace(v)
	if given == "" {
		return nil
	}
	n := normalID(v)
	if n == given {
		return []string{given}
	}
	return []string{n, given}
}

// hexForm is v as lowercase hex without 0x, and a Flow address left-padded
// to 16 digits, when v is hex.
func hexForm(v string) (string, bool) {
	h := v
	if len(h) > 2 && (h[:2] == "0x" || h[:2] == "0X") {
		h = h[2:]
	}
	if h == "" {
		return "", false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return "", false
		}
	}
	h = strings.ToLower(h)
	if len(h) < flowAddressDigits && h != v {
		// 0x1 is Flow's address 0x0000000000000001; a bare short hex
		// string is left alone (it may be some other id).
		h = strings.Repeat("0", flowAddressDigits-len(h)) + h
	}
	return h, true
}

// isBech32 reports whether v has the shape of a bech32 address (hrp, '1',
// data) in one case, as Spacemesh's sm1… addresses do; bech32 is case
// insensitive and stored lowercase.
func isBech32(v string) bool {
	i := strings.LastIndexByte(v, '1')
	if i < 1 || len(v)-i < 7 || strings.ToLower(v) != v && strings.ToUpper(v) != v {
		return false
	}
	for _, c := range strings.ToLower(v[i+1:]) {
		if !strings.ContainsRune("qpzry9x8gf2tvdw0s3jn54khce6mua7l", c) {
			return false
		}
	}
	return true
}

// normalType is an event type or contract with its Flow address in the
// stored form: A.0x8624B52F9DDCD04A.FlowIDTableStaking becomes
// A.8624b52f9ddcd04a.FlowIDTableStaking.
func normalType(v string) string {
	rest, ok := strings.CutPrefix(v, "A.")
	if !ok {
		return v
	}
	addr, tail, _ := strings.Cut(rest, ".")
	h, ok := hexForm(addr)
	if !ok {
		return v
	}
	if len(h) < flowAddressDigits {
		h = strings.Repeat("0", flowAddressDigits-len(h)) + h
	}
	if tail == "" {
		return "A." + h
	}
	return "A." + h + "." + tail
}
