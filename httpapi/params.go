package httpapi

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // tz must work on hosts without a zoneinfo database

	"github.com/evindex/evindex/store"
)

// params reads query parameters and keeps the first problem, so a handler
// parses everything and then checks one error naming the parameter.
type params struct {
	q url.Values
	// defaultFormat is the format when q has no format parameter (what
	// the Accept header asked for); empty means JSON.
	defaultFormat string
	err           error
	// read are the parameters the handler asked for: what it supports.
	// check refuses every other parameter q holds.
	read map[string]bool
	// name is what the parameters select ("events"), for messages.
	name string
}

func newParams(q url.Values) *params { return &params{q: q, read: map[string]bool{}} }

func (p *params) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// str returns a single-valued parameter, trimmed. Given twice, it is an
// error: which of the two the client meant is a guess.
func (p *params) str(name string) string {
	p.read[name] = true
	if n := len(p.q[name]); n > 1 {
		p.fail(invalidParam(name, "given %d times; it takes one value (repeat only type and account)", n))
	}
	return strings.TrimSpace(p.q.Get(name))
}

// maxListValues caps the values of one repeatable parameter. Each value is
// a separate index scan merged into the answer: 1,200 type values took 4 s
// to answer, work anyone can ask for in one short URL.
const maxListValues = 100

// list returns a repeatable parameter; each value may also hold several
// comma-separated items. More than maxListValues items is a 400.
func (p *params) list(name string) []string {
	p.read[name] = true
	var out []string
	for _, v := range p.q[name] {
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				if len(out) == maxListValues {
					p.fail(invalidParam(name, "at most %d values", maxListValues))
					return out
				}
				out = append(out, item)
			}
		}
	}
	return out
}

// hexID normalizes an id given with or without 0x, in any case, to the
// stored lowercase hex form.
func (p *params) hexID(name string) string {
	v := strings.ToLower(p.str(name))
	return strings.TrimPrefix(v, "0x")
}

// id reads a single-valued id (an address) in its stored form; see
// normalID.
func (p *params) id(name string) string {
	p.str(name) // marks it read and refuses a repeat
	return normalID(p.q.Get(name))
}

// ids reads a repeatable id (an account) as every form it may be stored
// in; see idForms.
func (p *params) ids(name string) []string {
	if p.list(name); p.err != nil { // marks it read and caps the values
		return nil
	}
	var out []string
	for _, v := range p.q[name] {
		for item := range strings.SplitSeq(v, ",") {
			for _, f := range idForms(item) {
				if !slices.Contains(out, f) {
					out = append(out, f)
				}
			}
		}
	}
	return out
}

// eventTypes reads a repeatable event type or contract ("A.<address>.Name"),
// with the address in its stored form.
func (p *params) eventTypes(name string) []string {
	out := p.list(name)
	for i, v := range out {
		out[i] = normalType(v)
	}
	return out
}

// oneOf reads a repeatable parameter whose values must come from allowed.
func (p *params) oneOf(name string, allowed []string) []string {
	out := p.list(name)
	for _, v := range out {
		if !slices.Contains(allowed, v) {
			p.fail(invalidParam(name, "%q is not one of %s%s", v, strings.Join(allowed, ", "), suggest(v, allowed)))
		}
	}
	return out
}

func (p *params) uint64(name string) *uint64 {
	v := p.str(name)
	if v == "" {
		return nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		p.fail(invalidParam(name, "must be a non-negative integer"))
		return nil
	}
	return &n
}

// heights reads from_height and to_height (inclusive both ends).
func (p *params) heights() (from, to *uint64) {
	from, to = p.uint64("from_height"), p.uint64("to_height")
	if from != nil && to != nil && *to < *from {
		p.fail(invalidParam("to_height", "must not be less than from_height"))
	}
	return from, to
}

// time reads an RFC 3339 time or a date (its UTC midnight).
func (p *params) time(name string) time.Time {
	v := p.str(name)
	if v == "" {
		return time.Time{}
	}
	t, err := parseTime(v)
	if err != nil {
		p.fail(invalidParam(name, "must be an RFC 3339 time (2026-01-02T15:04:05Z) or a date (2026-01-02)"))
	}
	return t
}

func parseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// times reads from_time (inclusive) and to_time (exclusive).
func (p *params) times() (from, to time.Time) {
	from, to = p.time("from_time"), p.time("to_time")
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		p.fail(invalidParam("to_time", "must not be before from_time"))
	}
	return from, to
}

// desc reads order=asc|desc (default asc).
func (p *params) desc() bool {
	switch strings.ToLower(p.str("order")) {
	case "", "asc":
		return false
	case "desc":
		return true
	default:
		p.fail(invalidParam("order", "must be asc or desc"))
		return false
	}
}

// limit reads limit; given reports whether the client set it.
func (p *params) limit() (n int, given bool) {
	v := p.str("limit")
	if v == "" {
		return store.DefaultLimit, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > store.MaxLimit {
		p.fail(invalidParam("limit", "must be between 1 and %d", store.MaxLimit))
		return store.DefaultLimit, false
	}
	return n, true
}

// location reads tz, an IANA time zone name (default UTC).
func (p *params) location() *time.Location {
	v := p.str("tz")
	if v == "" {
		return time.UTC
	}
	// time.LoadLocation also accepts "Local", which would make answers
	// depend on the server's configuration.
	if v == "Local" || strings.Contains(v, "..") {
		p.fail(invalidParam("tz", "%q is not an IANA time zone name (e.g. Europe/Berlin)", v))
		return time.UTC
	}
	loc, err := time.LoadLocation(v)
	if err != nil {
		p.fail(invalidParam("tz", "%q is not an IANA time zone name (e.g. Europe/Berlin)", v))
		return time.UTC
	}
	return loc
}
