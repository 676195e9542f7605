package httpapi

import (
	"net/url"
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
}

func newParams(q url.Values) *params { return &params{q: q} }

func (p *params) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// str returns a single-valued parameter, trimmed.
func (p *params) str(name string) string {
	return strings.TrimSpace(p.q.Get(name))
}

// maxListValues caps the values of one repeatable parameter. Each value is
// a separate index scan merged into the answer: 1,200 type values took 4 s
// to answer, work anyone can ask for in one short URL.
const maxListValues = 100

// list returns a repeatable parameter; each value may also hold several
// comma-separated items. More than maxListValues items is a 400.
func (p *params) list(name string) []string {
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
