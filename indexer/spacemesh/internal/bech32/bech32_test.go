package bech32

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestDecodeValid(t *testing.T) {
	// Valid strings from BIP-173.
	for _, s := range []string{
		"A12UEL5L",
		"a12uel5l",
		"an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
		"abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
		"11" + strings.Repeat("q", 82) + "c8247j",
		"split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
		"?1ezyfcl",
	} {
		t.Run(s, func(t *testing.T) {
			hrp, _, err := Decode(s)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if want := strings.ToLower(s[:strings.LastIndexByte(s, '1')]); hrp != want {
				t.Fatalf("hrp = %q, want %q", hrp, want)
			}
		})
	}
}

func TestDecodeInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		{"NoSeparator", "pzry9x0s0muk", ErrNoSeparator},
		{"EmptyHRP", "1pzry9x0s0muk", ErrEmptyHRP},
		{"InvalidChar", "x1b4n0q5v", ErrInvalidChar},
		{"ShortChecksum", "li1dgmt3", ErrTooShort},
		{"UppercaseChecksumOfOtherHRP", "A1G7SGD8", ErrChecksum},
		{"EmptyHRPAgain", "10a06t8", ErrEmptyHRP},
		{"HRPOutOfRange", "\x201nwldj5", ErrInvalidHRPChr},
		{"MixedCase", "A12uEL5L", ErrMixedCase},
		{"FlippedChar", "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxx", ErrChecksum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Decode(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode(%q) = %v, want %v", tc.in, err, tc.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 20, 24, 32} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*37 + 5)
		}
		s, err := Encode("sm", data)
		if err != nil {
			t.Fatal(err)
		}
		hrp, got, err := Decode(s)
		if err != nil {
			t.Fatalf("Decode(%q): %v", s, err)
		}
		if hrp != "sm" || !bytes.Equal(got, data) {
			t.Fatalf("round trip of %d bytes: hrp %q data %x, want %x", n, hrp, got, data)
		}
	}
}
