// Package bech32 decodes and encodes BIP-173 bech32 strings, the format of
// Spacemesh account addresses ("sm1...").
package bech32

import (
	"errors"
	"fmt"
	"strings"
)

// charset maps 5-bit values to their bech32 characters (BIP-173).
const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

// maxLength bounds the input. BIP-173 caps strings at 90 characters;
// go-spacemesh decodes without that cap, so a looser but finite one is used.
const maxLength = 1023

// Errors returned by Decode.
var (
	ErrMixedCase     = errors.New("mixed upper and lower case")
	ErrNoSeparator   = errors.New("missing separator '1'")
	ErrEmptyHRP      = errors.New("empty human-readable part")
	ErrTooShort      = errors.New("too short for a checksum")
	ErrTooLong       = errors.New("too long")
	ErrInvalidChar   = errors.New("invalid bech32 character")
	ErrChecksum      = errors.New("invalid bech32 checksum")
	ErrPadding       = errors.New("invalid padding")
	ErrInvalidHRPChr = errors.New("invalid character in human-readable part")
)

var reverse = func() [128]int8 {
	var r [128]int8
	for i := range r {
		r[i] = -1
	}
	for i := 0; i < len(charset); i++ {
		r[charset[i]] = int8(i)
	}
	return r
}()

func polymod(values []byte) uint32 {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := 0; i < 5; i++ {
			if (top>>uint(i))&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	return chk
}

func hrpExpand(hrp string) []byte {
	out := make([]byte, 0, len(hrp)*2+1)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]>>5)
	}
	out = append(out, 0)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]&31)
	}
	return out
}

// Decode splits a bech32 string into its lowercase human-readable part and
// its payload bytes (the 5-bit groups converted back to 8-bit bytes). It
// returns one of the package errors, wrapped with detail, when the string is
// malformed or its checksum does not match.
func Decode(s string) (hrp string, data []byte, err error) {
	if len(s) > maxLength {
		return "", nil, ErrTooLong
	}
	lower, upper := strings.ToLower(s), strings.ToUpper(s)
	if s != lower && s != upper {
		return "", nil, ErrMixedCase
	}
	s = lower
	sep := strings.LastIndexByte(s, '1')
	if sep < 0 {
		return "", nil, ErrNoSeparator
	}
	if sep == 0 {
		return "", nil, ErrEmptyHRP
	}
	if len(s)-sep-1 < 6 {
		return "", nil, ErrTooShort
	}
	hrp = s[:sep]
	for i := 0; i < len(hrp); i++ {
		if hrp[i] < 33 || hrp[i] > 126 {
			return "", nil, ErrInvalidHRPChr
		}
	}
	groups := make([]byte, 0, len(s)-sep-1)
	for i := sep + 1; i < len(s); i++ {
		c := s[i]
		if c >= 128 || reverse[c] < 0 {
			return "", nil, fmt.Errorf("%w %q at position %d", ErrInvalidChar, c, i)
		}
		groups = append(groups, byte(reverse[c]))
	}
	if polymod(append(hrpExpand(hrp), groups...)) != 1 {
		return "", nil, ErrChecksum
	}
	data, err = convertBits(groups[:len(groups)-6], 5, 8, false)
	if err != nil {
		return "", nil, err
	}
	return hrp, data, nil
}

// Encode returns the bech32 string of data under hrp (which must be
// lowercase printable ASCII).
func Encode(hrp string, data []byte) (string, error) {
	if hrp == "" {
		return "", ErrEmptyHRP
	}
	for i := 0; i < len(hrp); i++ {
		if hrp[i] < 33 || hrp[i] > 126 || (hrp[i] >= 'A' && hrp[i] <= 'Z') {
			return "", ErrInvalidHRPChr
		}
	}
	groups, err := convertBits(data, 8, 5, true)
	if err != nil {
		return "", err
	}
	values := append(hrpExpand(hrp), groups...)
	values = append(values, 0, 0, 0, 0, 0, 0)
	mod := polymod(values) ^ 1
	var b strings.Builder
	b.Grow(len(hrp) + 1 + len(groups) + 6)
	b.WriteString(hrp)
	b.WriteByte('1')
	for _, g := range groups {
		b.WriteByte(charset[g])
	}
	for i := 0; i < 6; i++ {
		b.WriteByte(charset[(mod>>uint(5*(5-i)))&31])
	}
	return b.String(), nil
}

// convertBits regroups a sequence of from-bit values into to-bit values.
// Without pad, leftover bits must be fewer than from and all zero.
func convertBits(in []byte, from, to uint, pad bool) ([]byte, error) {
	var acc, bits uint
	maxv := uint(1)<<to - 1
	out := make([]byte, 0, len(in)*int(from)/int(to)+1)
	for _, v := range in {
		if uint(v)>>from != 0 {
			return nil, ErrInvalidChar
		}
		acc = acc<<from | uint(v)
		bits += from
		for bits >= to {
			bits -= to
			out = append(out, byte(acc>>bits&maxv))
		}
	}
	if pad {
		if bits > 0 {
			out = append(out, byte(acc<<(to-bits)&maxv))
		}
	} else if bits >= from || acc<<(to-bits)&maxv != 0 {
		return nil, ErrPadding
	}
	return out, nil
}
