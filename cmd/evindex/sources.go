package main

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/evindex/evindex/httpapi"
	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/indexer/alerts"
	"github.com/evindex/evindex/indexer/flow"
	"github.com/evindex/evindex/indexer/presearch"
	"github.com/evindex/evindex/indexer/spacemesh"
)

// sourceKinds are the kinds of upstream evindex indexes, one line each.
// The config file's `kind` values, their keys, `evindex demo`, `evindex
// sim` and the error messages naming the kinds all come from this table.
var sourceKinds = []indexer.SourceKind{
	flow.SourceKind,
	spacemesh.SourceKind,
	presearch.SourceKind,
}

// lookupKind finds a kind of sourceKinds by name.
func lookupKind(name string) (indexer.SourceKind, bool) {
	for _, k := range sourceKinds {
		if k.Name == name {
			return k, true
		}
	}
	return indexer.SourceKind{}, false
}

// kindNames lists the kinds as "flow, spacemesh, presearch".
func kindNames() string { return kindList(", ") }

// kindList joins the kinds' names with sep ("|" for a usage line).
func kindList(sep string) string {
	names := make([]string, len(sourceKinds))
	for i, k := range sourceKinds {
		names[i] = k.Name
	}
	return strings.Join(names, sep)
}

// kindError is the message for a `kind` value that is not in
// sourceKinds.
func kindError(kind string) string {
	if kind == "" {
		return fmt.Sprintf("required (%s)", kindNames())
	}
	return fmt.Sprintf("%q is not a source kind (%s)%s", kind, kindNames(), httpapi.DidYouMean(kind, strings.Split(kindList(","), ",")))
}

// SourceConfig is one entry of `sources`: the keys every source has, and
// Settings, the kind's own configuration that the other keys decode into.
type SourceConfig struct {
	Name string `yaml:"name" doc:"unique source name: lowercase letters, digits and -"`
	Kind string `yaml:"kind" doc:"the source's kind, which decides its other keys"`
	// LagThreshold is how far behind the head a live source may be and
	// still count as ready on /readyz (0: the kind's default).
	LagThreshold uint64 `yaml:"lag_threshold" doc:"how far behind its head a live source may be and count as ready on /readyz, in its height unit (0: the kind's default)"`
	// StallThreshold is how long a source may commit nothing while its
	// upstream's head is ahead of its checkpoint and still count as ready
	// on /readyz (0: the kind's default).
	StallThreshold time.Duration `yaml:"stall_threshold" doc:"how long a source may commit nothing while its upstream's head is ahead of its checkpoint and count as ready on /readyz, e.g. 2m (0: the kind's default: flow 2m, spacemesh 15m, presearch 2h)"`
	// Alerts is what differs for this source from the alerts block's
	// rules.
	Alerts alerts.SourceRules `yaml:"alerts" doc:"this source's own alert rules: what differs from the alerts block's"`
	// Settings holds the kind's keys; its type is the kind's (a
	// *flow.Config for a flow source).
	Settings indexer.SourceConfig `yaml:"-"`
}

// UnmarshalYAML decodes the common keys, then the rest into the
// configuration of the named kind, over that kind's defaults. checkKeys
// has already reported unknown keys and kinds by their path.
func (sc *SourceConfig) UnmarshalYAML(n *yaml.Node) error {
	type common SourceConfig // without this method
	var c common
	if err := n.Decode(&c); err != nil {
		return err
	}
	*sc = SourceConfig(c)
	k, ok := lookupKind(sc.Kind)
	if !ok {
		return nil // Validate names the missing or unknown kind
	}
	sc.Settings = k.NewConfig(sc.Name)
	return n.Decode(sc.Settings)
}

// builtSource is a configured source ready for a Runner.
type builtSource struct {
	src            indexer.Source
	lagThreshold   uint64
	stallThreshold time.Duration
	alerts         alerts.SourceRules
}

// buildSources builds the sources of a configuration Validate accepted;
// errors name the field (sources[1].api_key_file: ...).
func buildSources(cfg Config) ([]builtSource, error) {
	out := make([]builtSource, 0, len(cfg.Sources))
	for i, sc := range cfg.Sources {
		k, ok := lookupKind(sc.Kind)
		if !ok || sc.Settings == nil {
			// Validate reports both; building an unchecked config is a bug.
			return nil, &ConfigError{Field: fmt.Sprintf("sources[%d].kind", i), Msg: kindError(sc.Kind)}
		}
		src, err := sc.Settings.NewSource()
		if err != nil {
			return nil, sourceError(i, err)
		}
		b := builtSource{src: src, lagThreshold: sc.LagThreshold, stallThreshold: sc.StallThreshold, alerts: sc.Alerts}
		if b.lagThreshold == 0 {
			b.lagThreshold = k.LagThreshold
		}
		if b.stallThreshold == 0 {
			b.stallThreshold = k.StallThreshold
		}
		out = append(out, b)
	}
	return out, nil
}

// sourceError turns a source package's "field: message" error into a
// ConfigError under sources[i]. Of several problems (one per line) the
// first is named and the rest counted.
func sourceError(i int, err error) error {
	field := fmt.Sprintf("sources[%d]", i)
	msg, rest, _ := strings.Cut(err.Error(), "\n")
	if rest != "" {
		msg += fmt.Sprintf(" (and %d more problems in this source)", strings.Count(rest, "\n")+1)
	}
	if k, m, ok := strings.Cut(msg, ": "); ok {
		return &ConfigError{Field: field + "." + k, Msg: m}
	}
	return &ConfigError{Field: field, Msg: msg}
}
