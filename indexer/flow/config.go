package flow

import (
	"fmt"
	"math"
	"strings"

	"github.com/evindex/evindex/indexer"
)

// Defaults for the fields of Config left at zero.
const (
	DefaultHeartbeatInterval = 1
	DefaultStakingContract   = "8624b52f9ddcd04a"
	DefaultBackfillWorkers   = 4
	DefaultBackfillRPS       = 50
	DefaultBackfillDistance  = 500
	// MaxRange is the most heights one GetEventsForHeightRange call may span
	// (flow-go rejects end - start >= 250).
	MaxRange = 250
)

// Config describes one Flow access node to index. Zero values take the
// defaults above. The yaml tags are the keys of a flow source in the
// config file (CONFIG.md); a new key is a new tagged field here.
type Config struct {
	// Name identifies the source in the store and the API ([a-z0-9-]).
	Name string `yaml:"-"`
	// Endpoint is the access node's gRPC address (host:port), serving both
	// AccessAPI and ExecutionDataAPI.
	Endpoint string `yaml:"endpoint" doc:"the access node's gRPC address (host:port), serving AccessAPI and ExecutionDataAPI"`
	// HistoryEndpoints are further access nodes (host:port): earlier
	// sporks' nodes, or more nodes of a spork for failover. Each is asked
	// which heights it serves; every height is read from a node that
	// serves it.
	HistoryEndpoints []string `yaml:"history_endpoints" doc:"more access nodes (host:port): earlier sporks' nodes or failover nodes; each is asked which heights it serves"`
	// TLS dials with TLS and the system's root certificates.
	TLS bool `yaml:"tls" doc:"dial with TLS and the system's root certificates"`
	// StartHeight is where the first run begins; 0 means the node's latest
	// sealed height at that moment. Later runs resume at checkpoint + 1.
	StartHeight uint64 `yaml:"start_height" doc:"where the first run begins; 0: the node's latest sealed height then. Later runs resume at checkpoint + 1"`
	// EventTypes, Contracts and Addresses select events as the access
	// node's EventFilter does (OR-ed); all empty means every event.
	EventTypes []string `yaml:"event_types" doc:"event types to index (A.<address>.<Contract>.<Event>); with contracts and addresses OR-ed; all empty: every event"`
	Contracts  []string `yaml:"contracts" doc:"contracts whose events to index (A.<address>.<Contract>)"`
	Addresses  []string `yaml:"addresses" doc:"addresses whose events to index (hex, with or without 0x)"`
	// HeartbeatInterval asks the node for a response at least every this
	// many heights, so quiet ranges still advance the checkpoint.
	HeartbeatInterval uint64 `yaml:"heartbeat_interval" doc:"the node answers at least every this many heights, so quiet ranges still advance the checkpoint"`
	// StakingContract is the address of FlowIDTableStaking, whose
	// RewardsPaid and DelegatorRewardsPaid events become rewards.
	StakingContract string `yaml:"staking_contract" doc:"address of FlowIDTableStaking, whose RewardsPaid and DelegatorRewardsPaid events become rewards"`
	// Backfill tunes the catch-up through GetEventsForHeightRange.
	Backfill BackfillConfig `yaml:"backfill" doc:"catch-up through GetEventsForHeightRange when far behind (needs event_types)"`
}

// BackfillConfig tunes how history is fetched when the source is far
// behind. A backfill needs EventTypes: the range call takes one event type
// and cannot select by contract or address, so with no EventTypes, or with
// Contracts or Addresses set, the event stream walks the history instead.
type BackfillConfig struct {
	// Workers is the number of range calls in flight.
	Workers int `yaml:"workers" doc:"range calls in flight"`
	// MaxRange is the most heights per call (at most 250).
	MaxRange uint64 `yaml:"max_range" doc:"most heights per range call (at most 250)"`
	// RequestsPerSecond caps range calls across all workers (public access
	// nodes allow about 100 per client).
	RequestsPerSecond float64 `yaml:"requests_per_second" doc:"cap on range calls across all workers (public nodes allow about 100 per client)"`
	// Distance starts a backfill when the resume height is more than this
	// many heights below the sealed head.
	Distance uint64 `yaml:"distance" doc:"a backfill starts when the resume height is more than this many heights below the sealed head"`
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	c := Config{}
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.StakingContract == "" {
		c.StakingContract = DefaultStakingContract
	}
	if c.Backfill.Workers == 0 {
		c.Backfill.Workers = DefaultBackfillWorkers
	}
	if c.Backfill.MaxRange == 0 {
		c.Backfill.MaxRange = MaxRange
	}
	if c.Backfill.RequestsPerSecond == 0 {
		c.Backfill.RequestsPerSecond = DefaultBackfillRPS
	}
	if c.Backfill.Distance == 0 {
		c.Backfill.Distance = DefaultBackfillDistance
	}
}

// Validate checks the configuration; zero values are accepted (they take
// the defaults). The error names the offending field as the config file
// spells it, e.g. "endpoint: required".
func (c *Config) Validate() error {
	if c.Name == "" {
		return fmt.Errorf("name: required")
	}
	if !indexer.ValidName(c.Name) {
		return fmt.Errorf("name: %q must use only a-z, 0-9 and -", c.Name)
	}
	if strings.TrimSpace(c.Endpoint) == "" {
		return fmt.Errorf("endpoint: required")
	}
	if strings.Contains(c.Endpoint, "://") {
		return fmt.Errorf("endpoint: %q must be host:port, without a scheme", c.Endpoint)
	}
	seen := map[string]string{strings.TrimSpace(c.Endpoint): "endpoint"}
	for i, e := range c.HistoryEndpoints {
		field := fmt.Sprintf("history_endpoints[%d]", i)
		switch {
		case strings.TrimSpace(e) == "":
			return fmt.Errorf("%s: empty", field)
		case strings.Contains(e, "://"):
			return fmt.Errorf("%s: %q must be host:port, without a scheme", field, e)
		case seen[strings.TrimSpace(e)] != "":
			return fmt.Errorf("%s: %q repeats %s", field, e, seen[strings.TrimSpace(e)])
		}
		seen[strings.TrimSpace(e)] = field
	}
	for i, t := range c.EventTypes {
		if !validEventType(t) {
			return fmt.Errorf("event_types[%d]: %q is not an event type (A.<address>.<Contract>.<Event> or flow.<Event>)", i, t)
		}
	}
	for i, ct := range c.Contracts {
		if !validContract(ct) {
			return fmt.Errorf("contracts[%d]: %q is not a contract (A.<address>.<Contract> or flow)", i, ct)
		}
	}
	for i, a := range c.Addresses {
		if _, ok := normalizeAddress(a); !ok {
			return fmt.Errorf("addresses[%d]: %q is not a Flow address (up to 16 hex digits)", i, a)
		}
	}
	if c.StakingContract != "" {
		if _, ok := normalizeAddress(c.StakingContract); !ok {
			return fmt.Errorf("staking_contract: %q is not a Flow address (up to 16 hex digits)", c.StakingContract)
		}
	}
	b := c.Backfill
	if b.Workers < 0 || b.Workers > 64 {
		return fmt.Errorf("backfill.workers: %d must be between 1 and 64", b.Workers)
	}
	if b.MaxRange > MaxRange {
		return fmt.Errorf("backfill.max_range: %d exceeds the access node's limit of %d heights", b.MaxRange, MaxRange)
	}
	if math.IsNaN(b.RequestsPerSecond) || math.IsInf(b.RequestsPerSecond, 0) || b.RequestsPerSecond < 0 {
		return fmt.Errorf("backfill.requests_per_second: %v must be a positive number", b.RequestsPerSecond)
	}
	return nil
}

// canBackfill reports whether range calls can fetch exactly what the live
// filter selects.
func (c *Config) canBackfill() bool {
	return len(c.EventTypes) > 0 && len(c.Contracts) == 0 && len(c.Addresses) == 0
}

// validEventType accepts "flow.<Event>" and "A.<address>.<Contract>.<Event>".
func validEventType(t string) bool {
	parts := strings.Split(t, ".")
	switch {
	case len(parts) == 2 && parts[0] == "flow":
		return parts[1] != ""
	case len(parts) == 4 && parts[0] == "A":
		_, ok := normalizeAddress(parts[1])
		return ok && !strings.HasPrefix(parts[1], "0x") && parts[2] != "" && parts[3] != ""
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
