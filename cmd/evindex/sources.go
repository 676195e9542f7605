package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/indexer/flow"
	"github.com/evindex/evindex/indexer/presearch"
	"github.com/evindex/evindex/indexer/spacemesh"
)

// builtSource is a configured source ready for a Runner.
type builtSource struct {
	src          indexer.Source
	lagThreshold uint64
}

// sourceClock overrides a source's clock; the demo runs Presearch on the
// simulator's fast clock.
type sourceClock struct {
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// Default lag thresholds for /readyz, in each kind's height unit.
const (
	flowLagThreshold      = 30   // blocks: about half a minute
	spacemeshLagThreshold = 2    // layers
	presearchLagThreshold = 7200 // seconds: the last hourly window plus its delay
)

// buildSources turns the config's sources into indexer sources, checking
// each kind's keys; errors name the field (sources[1].coinbases[0]: ...).
func buildSources(cfg Config, clocks map[string]sourceClock) ([]builtSource, error) {
	out := make([]builtSource, 0, len(cfg.Sources))
	for i, sc := range cfg.Sources {
		b, err := buildSource(sc, clocks[sc.Name])
		if err != nil {
			field := fmt.Sprintf("sources[%d]", i)
			var ce *ConfigError
			if errors.As(err, &ce) {
				if ce.Field != "" {
					field += "." + ce.Field
				}
				return nil, &ConfigError{Field: field, Msg: ce.Msg}
			}
			return nil, &ConfigError{Field: field, Msg: err.Error()}
		}
		out = append(out, b)
	}
	return out, nil
}

func buildSource(sc SourceConfig, clock sourceClock) (builtSource, error) {
	b := builtSource{lagThreshold: sc.LagThreshold}
	var err error
	switch sc.Kind {
	case "flow":
		f := sc.Flow
		c := flow.Config{Name: sc.Name, Endpoint: f.Endpoint, TLS: f.TLS, StartHeight: f.StartHeight,
			EventTypes: f.EventTypes, Contracts: f.Contracts, Addresses: f.Addresses,
			HeartbeatInterval: f.HeartbeatInterval, StakingContract: f.StakingContract,
			Backfill: flow.BackfillConfig{Workers: f.Backfill.Workers, MaxRange: f.Backfill.MaxRange,
				RequestsPerSecond: f.Backfill.RequestsPerSecond, Distance: f.Backfill.Distance}}
		if err := c.Validate(); err != nil {
			return b, fieldError(err)
		}
		b.src, err = flow.New(c)
		if b.lagThreshold == 0 {
			b.lagThreshold = flowLagThreshold
		}
	case "spacemesh":
		s := sc.Spacemesh
		c := spacemesh.Config{Name: sc.Name, PublicEndpoint: s.PublicEndpoint, PrivateEndpoint: s.PrivateEndpoint,
			Coinbases: s.Coinbases, Smeshers: s.Smeshers, StartLayer: s.StartLayer, TLS: sc.Flow.TLS}
		if err := c.Validate(); err != nil {
			return b, fieldError(err)
		}
		b.src, err = spacemesh.New(c)
		if b.lagThreshold == 0 {
			b.lagThreshold = spacemeshLagThreshold
		}
	case "presearch":
		p := sc.Presearch
		c := presearch.DefaultConfig()
		c.Name, c.BaseURL, c.APIKey, c.APIKeyFile, c.PublicKeys = sc.Name, p.BaseURL, p.APIKey, p.APIKeyFile, p.PublicKeys
		if c.BaseURL == "" {
			c.BaseURL = presearch.DefaultBaseURL
		}
		if p.StatusInterval != 0 {
			c.StatusInterval = p.StatusInterval
		}
		if p.StatsWindow != 0 {
			c.StatsWindow = p.StatsWindow
		}
		if p.BackfillDays != 0 {
			c.BackfillDays = p.BackfillDays
		}
		c.Now, c.Sleep = clock.now, clock.sleep
		if err := c.Validate(); err != nil {
			return b, fieldError(err)
		}
		b.src, err = presearch.New(c)
		if b.lagThreshold == 0 {
			b.lagThreshold = presearchLagThreshold
		}
	default:
		return b, &ConfigError{Field: "kind", Msg: fmt.Sprintf("%q: want flow, spacemesh or presearch", sc.Kind)}
	}
	if err != nil {
		return b, err
	}
	return b, nil
}

// fieldError turns a source package's "field: message" validation error
// into a ConfigError, so the caller can prefix the source's path. Of
// several problems (one per line) the first is named and the rest counted.
func fieldError(err error) error {
	msg, rest, _ := strings.Cut(err.Error(), "\n")
	if rest != "" {
		msg += fmt.Sprintf(" (and %d more problems in this source)", strings.Count(rest, "\n")+1)
	}
	for i := 0; i+1 < len(msg); i++ {
		if msg[i] == ':' && msg[i+1] == ' ' {
			return &ConfigError{Field: msg[:i], Msg: msg[i+2:]}
		}
	}
	return &ConfigError{Field: "", Msg: msg}
}
