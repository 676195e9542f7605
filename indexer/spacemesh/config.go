package spacemesh

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/indexer/spacemesh/internal/bech32"
)

// Defaults for the fields of Config left at zero.
const (
	// DefaultReconcileLayers is Hdist: a revert can change at most this many
	// of the newest layers, so every heartbeat re-reads them.
	DefaultReconcileLayers = 10
	// MaxPageLimit is the most rewards one RewardService.List call returns
	// (go-spacemesh rejects a larger limit).
	MaxPageLimit         = 100
	DefaultChunkLayers   = 1000
	DefaultStatusEvery   = 10 * time.Second
	DefaultPollInterval  = 30 * time.Second
	DefaultCallTimeout   = 30 * time.Second
	DefaultStreamRetry   = 200 * time.Millisecond
	DefaultStreamBackoff = 10 * time.Second
)

// knownHRPs are the bech32 prefixes of the public Spacemesh networks.
var knownHRPs = []string{"sm", "stest"}

// Config describes one Spacemesh node to index. Zero values take the
// defaults above. The yaml tags are the keys of a spacemesh source in the
// config file (CONFIG.md); fields tagged "-" are set by code only.
type Config struct {
	// Name identifies the source in the store and the API ([a-z0-9-]).
	Name string `yaml:"-"`
	// PublicEndpoint is the node's public gRPC listener (host:port, default
	// port 9092): NodeService, MeshService, GlobalStateService and the
	// v2alpha1 queries.
	PublicEndpoint string `yaml:"public_endpoint" doc:"the node's public gRPC listener (host:port, usually port 9092)"`
	// PrivateEndpoint is the node's private listener (usually
	// 127.0.0.1:9093), optional: with it, AdminService.EventsStream events
	// are stored as events.
	PrivateEndpoint string `yaml:"private_endpoint" doc:"the node's private listener (usually 127.0.0.1:9093), optional: admin events and the reward stream"`
	// Coinbases are the bech32 accounts ("sm1...") whose rewards are
	// indexed.
	Coinbases []string `yaml:"coinbases" doc:"bech32 accounts (sm1...) whose rewards are indexed"`
	// Smeshers are smesher ids (64 hex digits) whose rewards are indexed,
	// whatever coinbase they pay. A node without the v2alpha1 API can only
	// list rewards by coinbase, so there they match within Coinbases only.
	Smeshers []string `yaml:"smeshers" doc:"smesher ids (64 hex digits) whose rewards are indexed, whatever coinbase they pay"`
	// StartLayer is where the first run begins; later runs resume at
	// checkpoint + 1.
	StartLayer uint64 `yaml:"start_layer" doc:"where the first run begins; later runs resume at checkpoint + 1"`
	// TLS dials with TLS and the system's root certificates.
	TLS bool `yaml:"tls" doc:"dial with TLS and the system's root certificates"`
	// HRP is the expected network prefix of the coinbases; empty accepts
	// the public networks' "sm" and "stest". The node's own HRP is checked
	// at start either way.
	HRP string `yaml:"-"`
	// NodeName names the node in /v1/nodes; empty means Name.
	NodeName string `yaml:"-"`
	// Now is the clock for node status snapshots; nil means time.Now.
	Now func() time.Time `yaml:"-"`

	// ReconcileLayers is how many of the newest indexed layers each
	// heartbeat re-reads to catch reverts (Hdist).
	ReconcileLayers uint64 `yaml:"-"`
	// PageLimit is the page size of reward queries (1..100).
	PageLimit uint64 `yaml:"-"`
	// ChunkLayers is the most layers one catch-up batch covers.
	ChunkLayers uint64 `yaml:"-"`
	// StatusEvery is the least time between two stored node status
	// snapshots; a change in between is stored when it has passed.
	StatusEvery time.Duration `yaml:"-"`
	// PollInterval is how often the node is asked for its status when the
	// streams are quiet or broken; the streams only speed things up.
	PollInterval time.Duration `yaml:"-"`
	// CallTimeout bounds one query.
	CallTimeout time.Duration `yaml:"-"`
	// StreamRetry and StreamBackoff bound the wait before a closed stream
	// (Canceled "buffer is full", a dropped connection) is reopened.
	StreamRetry, StreamBackoff time.Duration `yaml:"-"`
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	c := Config{}
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.ReconcileLayers == 0 {
		c.ReconcileLayers = DefaultReconcileLayers
	}
	if c.PageLimit == 0 {
		c.PageLimit = MaxPageLimit
	}
	if c.ChunkLayers == 0 {
		c.ChunkLayers = DefaultChunkLayers
	}
	if c.StatusEvery == 0 {
		c.StatusEvery = DefaultStatusEvery
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.StreamRetry == 0 {
		c.StreamRetry = DefaultStreamRetry
	}
	if c.StreamBackoff == 0 {
		c.StreamBackoff = DefaultStreamBackoff
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the configuration; zero values are accepted (they take
// the defaults). The error names the offending field as the config file
// spells it, e.g. "coinbases[0]: invalid bech32 checksum".
func (c *Config) Validate() error {
	if c.Name == "" {
		return errors.New("name: required")
	}
	if !indexer.ValidName(c.Name) {
		return fmt.Errorf("name: %q must use only a-z, 0-9 and -", c.Name)
	}
	if err := validEndpoint(c.PublicEndpoint); err != nil {
		return fmt.Errorf("public_endpoint: %w", err)
	}
	if c.PrivateEndpoint != "" {
		if err := validEndpoint(c.PrivateEndpoint); err != nil {
			return fmt.Errorf("private_endpoint: %w", err)
		}
	}
	if c.HRP != "" && !validHRP(c.HRP) {
		return fmt.Errorf("hrp: %q must be lowercase letters and digits", c.HRP)
	}
	seenHRP := ""
	for i, a := range c.Coinbases {
		hrp, err := parseAddress(a)
		if hrp == "" {
			return fmt.Errorf("coinbases[%d]: %w", i, err)
		}
		// A wrong network says more than a wrong length, so it goes first.
		switch {
		case c.HRP != "" && hrp != c.HRP:
			return fmt.Errorf("coinbases[%d]: prefix %q is not the network's %q", i, hrp, c.HRP)
		case c.HRP == "" && !contains(knownHRPs, hrp):
			return fmt.Errorf("coinbases[%d]: prefix %q is not a Spacemesh network's (%s); set hrp for another network", i, hrp, strings.Join(knownHRPs, ", "))
		case seenHRP != "" && hrp != seenHRP:
			return fmt.Errorf("coinbases[%d]: prefix %q differs from the other coinbases' %q", i, hrp, seenHRP)
		}
		if err != nil {
			return fmt.Errorf("coinbases[%d]: %w", i, err)
		}
		seenHRP = hrp
	}
	for i, s := range c.Smeshers {
		if _, err := parseSmesher(s); err != nil {
			return fmt.Errorf("smeshers[%d]: %w", i, err)
		}
	}
	if c.NodeName != "" && strings.ContainsRune(c.NodeName, 0) {
		return errors.New("node_name: must not contain a NUL byte")
	}
	if c.PageLimit > MaxPageLimit {
		return fmt.Errorf("page_limit: %d exceeds the node's limit of %d", c.PageLimit, MaxPageLimit)
	}
	if c.StatusEvery < 0 || c.PollInterval < 0 || c.CallTimeout < 0 || c.StreamRetry < 0 || c.StreamBackoff < 0 {
		return errors.New("intervals: must not be negative")
	}
	return nil
}

// parseAddress checks a coinbase as go-spacemesh does (bech32, 24 bytes
// whose first 4 are zero) and returns its prefix. The prefix is returned
// with a payload error too (it is empty when the string is not bech32).
func parseAddress(a string) (string, error) {
	if a == "" {
		return "", errors.New("empty address")
	}
	hrp, data, err := bech32.Decode(a)
	if err != nil {
		return "", err
	}
	if len(data) != 24 {
		return hrp, fmt.Errorf("not a Spacemesh address: %d bytes, want 24", len(data))
	}
	for _, b := range data[:4] {
		if b != 0 {
			return hrp, errors.New("not a Spacemesh address: the 4 reserved bytes are not zero")
		}
	}
	return hrp, nil
}

// normalizeAddress is the lowercase form the node reports.
func normalizeAddress(a string) string { return strings.ToLower(a) }

// parseSmesher decodes a smesher id: 32 bytes as 64 hex digits, with or
// without 0x.
func parseSmesher(s string) ([]byte, error) {
	h := strings.TrimPrefix(strings.ToLower(s), "0x")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("%q is not a smesher id (64 hex digits)", s)
	}
	return b, nil
}

func validEndpoint(e string) error {
	switch {
	case strings.TrimSpace(e) == "":
		return errors.New("required")
	case strings.Contains(e, "://"):
		return fmt.Errorf("%q must be host:port, without a scheme", e)
	case !strings.Contains(e, ":"):
		return fmt.Errorf("%q must be host:port", e)
	}
	return nil
}

func validHRP(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
