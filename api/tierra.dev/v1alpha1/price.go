package v1alpha1

import (
	"fmt"
	"strconv"
	"strings"
)

// MicroDollars is an integer amount of millionths of a US dollar. Prices are
// published as integers so CEL selectors compare them exactly.
type MicroDollars int64

// ParsePrice parses a decimal dollar amount such as "2.75" or "0.123456"
// (at most six decimals, not negative) into micro-dollars.
func ParsePrice(s string) (MicroDollars, error) {
	whole, frac, hasDot := strings.Cut(strings.TrimSpace(s), ".")
	if whole == "" || (hasDot && frac == "") || len(frac) > 6 {
		return 0, fmt.Errorf("price %q: want a decimal dollar amount like \"2.75\" with at most 6 decimals", s)
	}
	for _, part := range []string{whole, frac} {
		for _, r := range part {
			if r < '0' || r > '9' {
				return 0, fmt.Errorf("price %q: want a decimal dollar amount like \"2.75\" with at most 6 decimals", s)
			}
		}
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > 1_000_000_000 {
		return 0, fmt.Errorf("price %q: out of range (at most 1000000000 dollars)", s)
	}
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
	}
	return MicroDollars(w*1_000_000 + f), nil
}

// String renders the amount as dollars with trailing zeros trimmed.
func (m MicroDollars) String() string {
	s := fmt.Sprintf("%d.%06d", int64(m)/1_000_000, int64(m)%1_000_000)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// Dollars is the amount in (fractional) US dollars, as metrics and reports
// print it.
func (m MicroDollars) Dollars() float64 { return float64(m) / 1e6 }
