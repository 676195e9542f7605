package httpapi

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// queryParams is every query parameter some endpoint of API.md takes. A
// parameter outside it is unknown (usually a typo); one in it that the
// endpoint does not read is unsupported there. Either is a 400: answering
// as if it were absent would be a silently wrong answer, such as an empty
// list that reads as "nothing earned".
var queryParams = []string{
	"source", "type", "contract", "address", "tx_id", "account", "kind",
	"from_height", "to_height", "from_time", "to_time",
	"group_by", "tz", "order", "limit", "cursor", "format", "from_epoch", "to_epoch",
}

// parseQuery parses a raw query string strictly. url.Values drops a pair
// it cannot decode (cursor=%%%garbage) without a word, which turns a
// typo into an unfiltered or empty answer; here it is a ParamError naming
// the parameter.
func parseQuery(raw string) (url.Values, error) {
	q := url.Values{}
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		if rawKey == "" {
			continue // "=x" names nothing, so it can select nothing
		}
		key, err := url.QueryUnescape(rawKey)
		if err != nil || strings.Contains(rawKey, ";") {
			return nil, invalidParam(clipped(rawKey), "malformed query string: the name %q is not percent-encoded (write %%25 for %%, %%3B for ;)", clipped(rawKey))
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil || strings.Contains(rawValue, ";") {
			return nil, invalidParam(key, "malformed query string: the value %q is not percent-encoded (write %%25 for %%, %%3B for ;, or use curl --data-urlencode)", clipped(rawValue))
		}
		q[key] = append(q[key], value)
	}
	return q, nil
}

// clipped shortens text quoted back to the client.
func clipped(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// check returns the first problem with the parameters: one the handler
// did not read (unknown, or unsupported by this endpoint) comes first,
// since it is usually what made a later value look wrong; then the first
// bad value.
func (p *params) check() error {
	names := make([]string, 0, len(p.q))
	for name := range p.q {
		if !p.read[name] {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return p.err
	}
	slices.Sort(names)
	return p.refuse(names[0])
}

// refuse is the error for a parameter the endpoint does not read.
func (p *params) refuse(name string) error {
	takes := make([]string, 0, len(p.read))
	for _, n := range queryParams { // in queryParams' order, which reads well
		if p.read[n] {
			takes = append(takes, n)
		}
	}
	what := p.name
	if what == "" {
		what = "this endpoint"
	}
	if !slices.Contains(queryParams, name) {
		if hint := suggest(name, takes); hint != "" {
			return invalidParam(name, "unknown parameter%s", hint)
		}
		return invalidParam(name, "unknown parameter%s; %s takes %s", suggest(name, queryParams), what, listOrNone(takes))
	}
	switch {
	case strings.HasSuffix(name, "_time") && p.read["from_height"]:
		return invalidParam(name, "not supported by %s, which are selected by height: use from_height and to_height", what)
	case strings.HasSuffix(name, "_height") && p.read["from_time"]:
		return invalidParam(name, "not supported by %s, which are selected by time: use from_time and to_time", what)
	}
	return invalidParam(name, "not supported by %s, which takes %s", what, listOrNone(takes))
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "no parameters"
	}
	return strings.Join(names, ", ")
}

// suggest is " (did you mean X?)" for the candidate closest to name, or ""
// when none is close enough to be what was meant.
func suggest(name string, candidates []string) string { return DidYouMean(name, candidates) }

// DidYouMean is " (did you mean X?)" for the candidate closest to name,
// or "" when none is close enough to be what was meant. The command line
// suggests flags, commands and config keys with it, as the API does
// parameters, so both guess alike.
func DidYouMean(name string, candidates []string) string {
	best, bestD := "", 0
	norm := strings.ToLower(strings.ReplaceAll(name, "-", "_"))
	for _, c := range candidates {
		d := editDistance(norm, c)
		if best == "" || d < bestD {
			best, bestD = c, d
		}
	}
	// A third of the name may be wrong: from_heigth, fromheight, limt.
	if best == "" || bestD > max(1, len(best)/3) {
		// Or it is the start of exactly one: --dat for --data-dir.
		var starts []string
		for _, c := range candidates {
			if len(norm) >= 2 && strings.HasPrefix(c, norm) {
				starts = append(starts, c)
			}
		}
		if len(starts) != 1 {
			return ""
		}
		best = starts[0]
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// editDistance is the optimal string alignment distance of a and b: the
// insertions, deletions, substitutions and transpositions of adjacent
// bytes that turn a into b.
func editDistance(a, b string) int {
	// Three rows of the table suffice: a transposition looks two back.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
