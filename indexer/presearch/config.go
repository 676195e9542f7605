package presearch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/evindex/evindex/indexer"
)

// Defaults and bounds of Config.
const (
	DefaultBaseURL        = "https://nodes.presearch.com"
	DefaultStatusInterval = 60 * time.Second
	// MinStatusInterval keeps status polling within the API's limit of 4
	// requests per minute per node.
	MinStatusInterval     = 15 * time.Second
	DefaultStatsWindow    = time.Hour
	DefaultBackfillDays   = 7
	DefaultStatsDelay     = 5 * time.Minute
	DefaultRequestTimeout = 30 * time.Second
	// MaxBackfillDays bounds the first start's history (ten years).
	MaxBackfillDays = 3650
)

// Config describes one Presearch source: an API key and the nodes it
// watches. Build it with DefaultConfig and check it with Validate. The
// yaml tags are the keys of a presearch source in the config file
// (CONFIG.md); fields tagged "-" are set by code only.
type Config struct {
	// Name is the source's unique name ([a-z0-9-]).
	Name string `yaml:"-"`
	// BaseURL is the API's scheme and host, e.g. https://nodes.presearch.com.
	BaseURL string `yaml:"base_url" doc:"the API's scheme and host"`
	// APIKey is the node API key from the dashboard. It is a secret: it is
	// sent in the URL path and never logged or shown. Alternatively,
	// APIKeyFile names a file holding it (surrounding space is trimmed).
	APIKey     string `yaml:"api_key" doc:"the node API key from the Presearch dashboard; a secret, never logged or shown (or use api_key_file)"`
	APIKeyFile string `yaml:"api_key_file" doc:"a file holding the API key instead of api_key (surrounding space is trimmed)"`
	// PublicKeys restricts the source to these nodes; empty means every
	// node of the key.
	PublicKeys []string `yaml:"public_keys" doc:"only these nodes; empty: every node of the key"`
	// StatusInterval is how often node status is polled (default 60 s,
	// at least 15 s).
	StatusInterval time.Duration `yaml:"status_interval" doc:"how often node status is polled (at least 15s: 4 requests a minute)"`
	// StatsWindow is the length of the aligned UTC windows earnings are
	// read in (default 1 h). It must be whole minutes and divide a day.
	StatsWindow time.Duration `yaml:"stats_window" doc:"length of the aligned UTC windows earnings are read in; whole minutes dividing a day (at most 4 stats requests an hour)"`
	// BackfillDays is how many days before today's UTC midnight the first
	// start reads earnings from (DefaultConfig sets 7; 0 starts with the
	// current window). It matters only while no checkpoint exists.
	BackfillDays int `yaml:"backfill_days" doc:"days before today's UTC midnight the first start reads earnings from (0: the current window only)"`
	// StatsDelay is how long after a window ends its stats are read, so
	// the API has finished aggregating it (default 5 minutes). Too short
	// a delay can store an incomplete window that is never read again.
	StatsDelay time.Duration `yaml:"-"`
	// RequestTimeout bounds each HTTP request (default 30 s).
	RequestTimeout time.Duration `yaml:"-"`
	// HTTPClient sends the requests (default: a client without a timeout
	// of its own; RequestTimeout applies).
	HTTPClient *http.Client `yaml:"-"`
	// Now and Sleep are the source's clock; tests inject a fake one so a
	// simulated week runs in seconds. Defaults: time.Now and a timer.
	Now   func() time.Time                                 `yaml:"-"`
	Sleep func(ctx context.Context, d time.Duration) error `yaml:"-"`
}

// DefaultConfig returns a Config with every default filled in; the caller
// sets Name and the API key.
func DefaultConfig() Config {
	return Config{
		Name:           "presearch",
		BaseURL:        DefaultBaseURL,
		StatusInterval: DefaultStatusInterval,
		StatsWindow:    DefaultStatsWindow,
		BackfillDays:   DefaultBackfillDays,
		StatsDelay:     DefaultStatsDelay,
		RequestTimeout: DefaultRequestTimeout,
	}
}

// Validate fills zero durations and the clock with their defaults and
// checks the rest. Its error names every offending field by its config
// name (e.g. "status_interval: must be at least 15s"); it never contains
// the API key.
func (c *Config) Validate() error {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = DefaultStatusInterval
	}
	if c.StatsWindow == 0 {
		c.StatsWindow = DefaultStatsWindow
	}
	if c.StatsDelay == 0 {
		c.StatsDelay = DefaultStatsDelay
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = indexer.Sleep
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}

	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if c.Name == "" {
		bad("name", "required")
	} else if !indexer.ValidName(c.Name) {
		bad("name", "%q must contain only a-z, 0-9 and -", c.Name)
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("base_url", "must be an http or https URL such as %s", DefaultBaseURL)
	} else if u.RawQuery != "" || u.Fragment != "" {
		bad("base_url", "must not have a query or fragment")
	}
	switch {
	case c.APIKey == "" && c.APIKeyFile == "":
		bad("api_key", "required (or api_key_file)")
	case c.APIKey != "" && c.APIKeyFile != "":
		bad("api_key", "set either api_key or api_key_file, not both")
	case c.APIKey != "" && strings.TrimSpace(c.APIKey) != c.APIKey:
		bad("api_key", "has leading or trailing space")
	}
	for i, k := range c.PublicKeys {
		if strings.TrimSpace(k) == "" || strings.Contains(k, ",") {
			bad(fmt.Sprintf("public_keys[%d]", i), "must be a node public key (not empty, no comma)")
		}
	}
	if c.StatusInterval < MinStatusInterval {
		bad("status_interval", "%s is below the minimum %s (the API allows 4 requests per minute)", c.StatusInterval, MinStatusInterval)
	}
	if c.StatsWindow < time.Minute || c.StatsWindow%time.Minute != 0 || (24*time.Hour)%c.StatsWindow != 0 {
		bad("stats_window", "%s must be whole minutes and divide a day (e.g. 15m, 1h, 6h, 24h)", c.StatsWindow)
	}
	if c.BackfillDays < 0 || c.BackfillDays > MaxBackfillDays {
		bad("backfill_days", "%d must be between 0 and %d", c.BackfillDays, MaxBackfillDays)
	}
	if c.StatsDelay < 0 {
		bad("stats_delay", "must not be negative")
	}
	if c.RequestTimeout < 0 {
		bad("request_timeout", "must not be negative")
	}
	return errors.Join(errs...)
}
