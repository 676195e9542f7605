package flowsim

import (
	"fmt"
	"strings"

	"github.com/onflow/flow/protobuf/go/flow/entities"
)

// Filter selects events the way the access node's EventFilter does: an event
// matches when its type is in EventTypes, OR its contract (A.addr.Name) is in
// Contracts, OR its contract's address is in Addresses. An empty filter
// matches everything.
type Filter struct {
	EventTypes []string
	Contracts  []string
	Addresses  []string // hex, with or without 0x
}

// compiledFilter is a validated Filter ready for matching.
type compiledFilter struct {
	all       bool
	types     map[string]bool
	contracts map[string]bool
	addresses map[string]bool
}

// compile validates f; the error names the offending entry (the access node
// answers InvalidArgument for it).
func (f Filter) compile() (*compiledFilter, error) {
	cf := &compiledFilter{
		types:     map[string]bool{},
		contracts: map[string]bool{},
		addresses: map[string]bool{},
	}
	for _, t := range f.EventTypes {
		if !validEventType(t) {
			return nil, fmt.Errorf("invalid event type %q", t)
		}
		cf.types[t] = true
	}
	for _, c := range f.Contracts {
		if !validContract(c) {
			return nil, fmt.Errorf("invalid contract %q", c)
		}
		cf.contracts[c] = true
	}
	for _, a := range f.Addresses {
		norm, ok := normalizeAddress(a)
		if !ok {
			return nil, fmt.Errorf("invalid address %q", a)
		}
		cf.addresses[norm] = true
	}
	cf.all = len(cf.types) == 0 && len(cf.contracts) == 0 && len(cf.addresses) == 0
	return cf, nil
}

func (cf *compiledFilter) match(ev *entities.Event) bool {
	if cf.all || cf.types[ev.Type] {
		return true
	}
	parts := strings.Split(ev.Type, ".")
	if len(parts) == 4 && parts[0] == "A" {
		return cf.contracts[strings.Join(parts[:3], ".")] || cf.addresses[parts[1]]
	}
	if len(parts) == 2 && parts[0] == "flow" {
		return cf.contracts["flow"]
	}
	return false
}

func (cf *compiledFilter) apply(evs []*entities.Event) []*entities.Event {
	if cf.all {
		return evs
	}
	var out []*entities.Event
	for _, ev := range evs {
		if cf.match(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// validEventType accepts "flow.Name" and "A.<address>.<Contract>.<Event>".
func validEventType(t string) bool {
	parts := strings.Split(t, ".")
	switch {
	case len(parts) == 2 && parts[0] == "flow":
		return parts[1] != ""
	case len(parts) == 4 && parts[0] == "A":
		_, ok := normalizeAddress(parts[1])
		return ok && parts[2] != "" && parts[3] != "" && !strings.HasPrefix(parts[1], "0x")
	}
	return false
}

// validContract accepts "flow" and "A.<address>.<Contract>".
func validContract(c string) bool {
	if c == "flow" {
		return true
	}
	parts := strings.Split(c, ".")
	if len(parts) != 3 || parts[0] != "A" || parts[2] == "" || strings.HasPrefix(parts[1], "0x") {
		return false
	}
	_, ok := normalizeAddress(parts[1])
	return ok
}

// normalizeAddress lowercases a Flow address and drops 0x; it must be at most
// 16 hex digits.
func normalizeAddress(a string) (string, bool) {
	a = strings.TrimPrefix(strings.ToLower(a), "0x")
	if a == "" || len(a) > 16 {
		return "", false
	}
	for _, r := range a {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return "", false
		}
	}
	return strings.Repeat("0", 16-len(a)) + a, true
}
