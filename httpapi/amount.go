package httpapi

import (
	"fmt"
	"math/big"
	"strings"
)

// formatAmount renders an integer amount of base units as a decimal string
// in whole units with exactly decimals fractional digits ("1250000000", 8
// -> "12.50000000"). It works on the digits, never on floats.
func formatAmount(raw string, decimals int) (string, error) {
	n, ok := new(big.Int).SetString(raw, 10)
	if !ok {
		return "", fmt.Errorf("amount %q is not an integer", raw)
	}
	return formatBig(n, decimals), nil
}

func formatBig(n *big.Int, decimals int) string {
	digits := n.String()
	sign := ""
	if strings.HasPrefix(digits, "-") {
		sign, digits = "-", digits[1:]
	}
	if decimals <= 0 {
		return sign + digits
	}
	if len(digits) <= decimals {
		digits = strings.Repeat("0", decimals-len(digits)+1) + digits
	}
	cut := len(digits) - decimals
	return sign + digits[:cut] + "." + digits[cut:]
}
