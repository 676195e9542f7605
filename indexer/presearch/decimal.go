package presearch

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// preDecimals is the number of decimals of PRE (an ERC-20 token): amounts
// are stored as integers of 10^-18 PRE.
const preDecimals = 18

// maxExponent bounds the exponent of a number in scientific notation, so a
// hostile "1e999999999" cannot make us build a huge integer.
const maxExponent = 64

// parseAmount converts the text of a JSON number (or a quoted decimal) to
// an exact integer of 10^-decimals units. It never goes through a float:
// the API writes amounts such as 28.69725493086953 and every digit counts
// when windows are summed. Earnings are never negative, and an amount
// with non-zero digits beyond the unit is refused rather than rounded
// (0.0000000000000000001 used to become 0 without a word).
func parseAmount(text string, decimals int) (*big.Int, error) {
	s := strings.TrimSpace(text)
	if s == "" {
		return nil, errors.New("empty number")
	}
	switch s[0] {
	case '-':
		if !isZero(s[1:]) {
			return nil, fmt.Errorf("%q is negative", text)
		}
		s = s[1:]
	case '+':
		s = s[1:]
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > maxExponent || e < -maxExponent {
			return nil, fmt.Errorf("%q: bad exponent", text)
		}
		mant, exp = s[:i], e
	}
	whole, frac, _ := strings.Cut(mant, ".")
	if whole == "" && frac == "" || !allDigits(whole) || !allDigits(frac) {
		return nil, fmt.Errorf("%q is not a decimal number", text)
	}
	digits := whole + frac
	// value = digits * 10^(exp - len(frac)); in units: * 10^decimals.
	shift := exp - len(frac) + decimals
	n, ok := new(big.Int).SetString("0"+digits, 10)
	if !ok {
		return nil, fmt.Errorf("%q is not a decimal number", text)
	}
	ten := big.NewInt(10)
	if shift >= 0 {
		n.Mul(n, new(big.Int).Exp(ten, big.NewInt(int64(shift)), nil))
	} else {
		div := new(big.Int).Exp(ten, big.NewInt(int64(-shift)), nil)
		q, r := new(big.Int).QuoRem(n, div, new(big.Int))
		if r.Sign() != 0 {
			return nil, fmt.Errorf("%q has more than %d decimals; it would be rounded", text, decimals)
		}
		n = q
	}
	return n, nil
}

// isZero reports whether a number's text (after its sign) is zero, so
// "-0" and "-0.0e5" are accepted as the zero they are.
func isZero(s string) bool {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		s = s[:i]
	}
	return s != "" && strings.Trim(s, "0.") == "" && strings.Count(s, ".") <= 1
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
