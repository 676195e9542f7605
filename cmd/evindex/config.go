package main

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5/pgconn"
	"gopkg.in/yaml.v3"

	"github.com/evindex/evindex/httpapi"
	"github.com/evindex/evindex/indexer"
)

// Config is the whole configuration of `evindex run` (CONFIG.md).
type Config struct {
	DataDir string `yaml:"data_dir" doc:"directory of evindex.db (file mode 0600, directory 0700); bolt backend only"`
	// Instance names this process where several share one database: it
	// is the owner shown on /v1/sources and written in the lease rows.
	// Empty: hostname:pid.
	Instance string         `yaml:"instance" doc:"this process's name as a source owner where several share a PostgreSQL database (empty: hostname:pid)"`
	Log      LogConfig      `yaml:"log" doc:"logging"`
	HTTP     HTTPConfig     `yaml:"http" doc:"the REST API and dashboard listener"`
	Store    StoreConfig    `yaml:"store" doc:"storage backend and write batching"`
	Memory   MemoryConfig   `yaml:"memory" doc:"the Go collector's memory budget"`
	Alerts   AlertsConfig   `yaml:"alerts" doc:"where alert notifications are sent"`
	Sources  []SourceConfig `yaml:"sources" doc:"the upstreams to index; empty: serve the stored data only"`

	// lines is where each field's value is in the file it was read from,
	// by path, so a Validate error names the line too. A flag or variable
	// that overrides a field removes it (see forget).
	lines map[string]int
}

// forget drops a field's line once something other than the file set it.
func (c *Config) forget(path string) { delete(c.lines, path) }

// recordLines notes the line of every value under n, by path.
func recordLines(n *yaml.Node, path string, into map[string]int) {
	if path != "" {
		into[path] = n.Line
	}
	switch n.Kind {
	case yaml.SequenceNode:
		for i, c := range n.Content {
			recordLines(c, fmt.Sprintf("%s[%d]", path, i), into)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			recordLines(n.Content[i+1], joinPath(path, n.Content[i].Value), into)
		}
	}
}

// LogConfig selects the log level and encoding.
type LogConfig struct {
	Level  string `yaml:"level" doc:"debug, info, warn or error"`                                      // debug|info|warn|error
	Format string `yaml:"format" doc:"auto (console on a terminal, else JSON lines), console or json"` // auto|console|json
}

// HTTPConfig is the API listener.
type HTTPConfig struct {
	Listen string `yaml:"listen" doc:"host:port of the API; off loopback a token is required"`
	Token  string `yaml:"token" doc:"bearer token the API requires (at least 16 characters; evindex token prints one); usually ${EVINDEX_TOKEN}"`
	// Insecure allows a non-loopback listen address without a token.
	// Anyone who can reach the address can then read everything and
	// download the whole database.
	Insecure bool `yaml:"insecure" doc:"allow a non-loopback listen address without a token: anyone who reaches it reads everything"`
	// AllowedHosts are Host names, besides localhost, 127.0.0.1 and
	// [::1], that a request reaching a loopback address may carry: a
	// reverse proxy's public name. Others are refused (421), which stops
	// a web page from rebinding its name to 127.0.0.1 to read the API.
	AllowedHosts []string `yaml:"allowed_hosts" doc:"Host names besides localhost a request to a loopback listener may carry (a reverse proxy's name)"`
	// MaxStreams caps concurrent streamed exports (ndjson, csv, parquet)
	// and MaxBackups concurrent backups; past them a request gets 429.
	MaxStreams int `yaml:"max_streams" doc:"concurrent streamed exports (ndjson, csv, parquet); more get 429"`
	MaxBackups int `yaml:"max_backups" doc:"concurrent backups; more get 429"`
}

// StoreConfig picks the storage backend and sizes write transactions.
type StoreConfig struct {
	BatchMaxRecords int           `yaml:"batch_max_records" doc:"records per write transaction"`
	BatchMaxDelay   time.Duration `yaml:"batch_max_delay" doc:"longest a received record waits before its transaction commits"`
	// Backend is bolt (one file in data_dir, one process) or postgres
	// (a server that several evindex processes share).
	Backend  string         `yaml:"backend" doc:"bolt (one file in data_dir, one process) or postgres (a server several processes share)"`
	Postgres PostgresConfig `yaml:"postgres" doc:"the PostgreSQL backend, with backend: postgres"`
}

// MemoryConfig is the Go runtime's memory budget (see
// indexer.SetMemoryBudget). When the environment sets GOMEMLIMIT or GOGC,
// the runtime's reading of them stands and this block is not applied.
type MemoryConfig struct {
	// LimitMB is the soft memory limit in MiB; 0: none. It bounds the Go
	// heap, not the store's mapped file pages.
	LimitMB int `yaml:"limit_mb" doc:"soft limit of the Go heap in MiB (debug.SetMemoryLimit); the collector works harder near it; 0: none"`
	// GCPercent is GOGC: the heap growth that triggers a collection
	// below the limit; -1 collects only at the limit.
	GCPercent int `yaml:"gc_percent" doc:"heap growth in percent that triggers a collection below the limit (GOGC); -1: only at the limit"`
}

// The storage backends of store.backend.
const (
	BackendBolt     = "bolt"
	BackendPostgres = "postgres"
)

// PostgresConfig is the store.postgres block, read with backend: postgres.
type PostgresConfig struct {
	// DSN is the primary, where ingestion writes. It usually holds a
	// password: it is never logged or shown, only its redacted form.
	DSN string `yaml:"dsn" doc:"the primary's connection string, where ingestion writes; usually ${EVINDEX_PG_DSN} (holds a password, never shown)"`
	// ReadDSN, when set, is a streaming replica the API reads from.
	ReadDSN string `yaml:"read_dsn" doc:"optional streaming replica the API reads from"`
	// LeaseTTL is how long a source's owner may be silent before another
	// process takes the source over; the owner renews every third of it.
	// Shorter fails over sooner and costs more renewals; a pause (GC,
	// SIGSTOP, a partition) longer than it makes the owner lose its sources.
	LeaseTTL time.Duration `yaml:"lease_ttl" doc:"how long a source's owner may be silent before another process takes the source over"`
	// MaxReplayLag is how far the replica of read_dsn may trail the
	// primary before /readyz answers 503.
	MaxReplayLag time.Duration `yaml:"max_replay_lag" doc:"how far the read_dsn replica may trail before /readyz answers 503"`
}

// DefaultConfig is the configuration before the file and flags apply.
func DefaultConfig() Config {
	return Config{
		DataDir: "./data",
		Log:     LogConfig{Level: "info", Format: "auto"},
		HTTP:    HTTPConfig{Listen: "127.0.0.1:8080", MaxStreams: httpapi.DefaultMaxStreams, MaxBackups: httpapi.DefaultMaxBackups},
		Store: StoreConfig{BatchMaxRecords: 5000, BatchMaxDelay: 100 * time.Millisecond, Backend: BackendBolt,
			Postgres: PostgresConfig{LeaseTTL: 10 * time.Second, MaxReplayLag: 30 * time.Second}},
		Memory: MemoryConfig{LimitMB: indexer.DefaultMemoryLimitMB, GCPercent: indexer.DefaultGCPercent},
		Alerts: defaultAlerts(),
	}
}

// ConfigError names the configuration field that is wrong.
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Msg }

// envRef is a ${VAR} or ${VAR:-default} reference. An unset (or empty)
// VAR without a default is an error: a config that means to take a token
// or key from the environment must not start without it.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// envReference is one ${...} of a config file.
type envReference struct {
	name, def  string
	hasDefault bool
}

// text is the reference as the file spells it.
func (r envReference) text() string {
	if r.hasDefault {
		return "${" + r.name + ":-" + r.def + "}"
	}
	return "${" + r.name + "}"
}

// value is what the reference expands to, or ok false when its variable
// is unset and it has no default.
func (r envReference) value(getenv func(string) string) (v string, ok bool) {
	if v := getenv(r.name); v != "" {
		return v, true
	}
	return r.def, r.hasDefault
}

// LoadConfigFile reads a YAML file over DefaultConfig, expanding ${VAR}
// from getenv. Unknown keys, keys of another source kind and unknown
// kinds are errors naming the key.
func LoadConfigFile(path string, getenv func(string) string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, &ConfigError{Field: "--config", Msg: err.Error()}
	}
	return ParseConfig(raw, getenv)
}

// ParseConfig parses YAML configuration text over DefaultConfig. ${VAR}
// references are expanded from getenv into the parsed values, so a value
// (a token, an API key) is taken verbatim whatever characters it holds:
// '#', ': ', '*' or quotes in a secret never change the YAML around it.
func ParseConfig(raw []byte, getenv func(string) string) (Config, error) {
	var p problemList
	cfg := parseConfig(raw, getenv, &p)
	if err := p.first(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// problemList collects the problems of a configuration, one per field:
// the first is what run reports, all of them what `config check` lists.
type problemList struct {
	errs []error
	// all lists each of a source's problems on its own instead of the
	// first with a count of the rest.
	all bool
	// fromEnv holds the file's text of each value that a ${VAR} was
	// expanded into: an error about such a value names the reference,
	// never the environment's value.
	fromEnv map[*yaml.Node]string
}

func (p *problemList) add(err error) {
	if err == nil {
		return
	}
	if ce, ok := asConfigError(err); ok {
		for _, e := range p.errs {
			if prev, ok := asConfigError(e); ok && prev.Field == ce.Field {
				return // one problem per field: the rest follow from it
			}
		}
	}
	p.errs = append(p.errs, err)
}

func (p *problemList) first() error {
	if len(p.errs) == 0 {
		return nil
	}
	return p.errs[0]
}

// parseConfig parses the text as far as it can, adding every problem to
// p: a syntax error stops it, an unset variable or a bad key does not.
func parseConfig(raw []byte, getenv func(string) string, p *problemList) Config {
	cfg := DefaultConfig()
	// Each reference becomes a placeholder that is a plain scalar in any
	// YAML context (flow mappings included) until the text is parsed.
	var refs []envReference
	marked := envRef.ReplaceAllFunc(raw, func(m []byte) []byte {
		sub := envRef.FindSubmatch(m)
		r := envReference{name: string(sub[1])}
		if len(sub[2]) > 0 {
			r.def, r.hasDefault = string(sub[2][2:]), true
		}
		refs = append(refs, r)
		return []byte(envPlaceholder(len(refs) - 1))
	})
	var doc yaml.Node
	if err := yaml.Unmarshal(marked, &doc); err != nil {
		p.add(&ConfigError{Field: "config", Msg: strings.TrimPrefix(err.Error(), "yaml: ")})
		return cfg
	}
	if len(doc.Content) == 0 {
		return cfg
	}
	expandEnv(doc.Content[0], refs, getenv, "", p)
	if err := checkValue(doc.Content[0], reflect.TypeOf(cfg), "config"); err != nil {
		p.add(err)
		return cfg
	}
	checkKeys(doc.Content[0], reflect.TypeOf(cfg), "", p)
	if len(p.errs) > 0 && !p.all {
		return cfg // run stops at the first problem
	}
	if err := doc.Decode(&cfg); err != nil {
		p.add(decodeError(doc.Content[0], err))
		return cfg
	}
	cfg.lines = map[string]int{}
	recordLines(doc.Content[0], "", cfg.lines)
	return cfg
}

// decoded reports whether a parsed configuration holds the file's values
// (its lines are known), so validating it says something about the file.
func (c *Config) decoded() bool { return c.lines != nil }

var typeErrorLine = regexp.MustCompile(`(?s)^line ([0-9]+): cannot unmarshal !!\w+ .* into (.+)$`)

// decodeError turns yaml's type error into a ConfigError naming the field
// and the kind of value it wants. yaml quotes the offending value, which
// may be a secret in the wrong place, so the value is never repeated.
func decodeError(root *yaml.Node, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		return &ConfigError{Field: "config", Msg: "cannot be read"}
	}
	m := typeErrorLine.FindStringSubmatch(te.Errors[0])
	if m == nil {
		return &ConfigError{Field: "config", Msg: "a value has the wrong type"}
	}
	line, _ := strconv.Atoi(m[1])
	field := fieldAtLine(root, line, "")
	if field == "" {
		field = "config"
	}
	want := map[string]string{
		"int": "a whole number", "uint64": "a whole number", "float64": "a number", "bool": "true or false",
		"time.Duration": "a duration such as 100ms or 15s", "string": "text", "[]string": "a list",
	}[m[2]]
	if want == "" {
		want = "a value of another kind"
	}
	return &ConfigError{Field: field, Msg: fmt.Sprintf("want %s (line %d)", want, line)}
}

// fieldAtLine is the path of the value that starts on line, or "".
func fieldAtLine(n *yaml.Node, line int, path string) string {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinPath(path, k.Value)
			if v.Line == line && v.Kind == yaml.ScalarNode {
				return p
			}
			if f := fieldAtLine(v, line, p); f != "" {
				return f
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if c.Line == line && c.Kind == yaml.ScalarNode {
				return p
			}
			if f := fieldAtLine(c, line, p); f != "" {
				return f
			}
		}
	}
	if n.Line == line && path != "" {
		return path
	}
	return ""
}

func envPlaceholder(i int) string { return fmt.Sprintf("EVINDEXENVREF%dFERVNEXEDNIVE", i) }

var envPlaceholderRef = regexp.MustCompile(`EVINDEXENVREF([0-9]+)FERVNEXEDNIVE`)

// expandEnv puts the environment's values where the placeholders of refs
// are under n, the node at path. An unquoted value is typed again after
// the expansion (batch_max_records: ${N} is a number), except that it
// never becomes null: an expanded "~" or "null" is that text. A reference
// to an unset variable without a default is a ConfigError naming the
// field and the variable.
func expandEnv(n *yaml.Node, refs []envReference, getenv func(string) string, path string, p *problemList) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expandEnv(c, refs, getenv, path, p)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandEnv(c, refs, getenv, fmt.Sprintf("%s[%d]", path, i), p)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			// Keys are names, never expanded: a key spelled ${X} is
			// named as the file spells it (and is unknown).
			if k := n.Content[i]; k.Kind == yaml.ScalarNode {
				k.Value = envPlaceholderRef.ReplaceAllStringFunc(k.Value, func(m string) string {
					i, err := strconv.Atoi(envPlaceholderRef.FindStringSubmatch(m)[1])
					if err != nil || i >= len(refs) {
						return m
					}
					return refs[i].text()
				})
			}
			expandEnv(n.Content[i+1], refs, getenv, joinPath(path, n.Content[i].Value), p)
		}
	case yaml.ScalarNode:
		if !envPlaceholderRef.MatchString(n.Value) {
			return
		}
		var unset *envReference
		text := envPlaceholderRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			if i, err := strconv.Atoi(envPlaceholderRef.FindStringSubmatch(m)[1]); err == nil && i < len(refs) {
				return refs[i].text()
			}
			return m
		})
		if p.fromEnv == nil {
			p.fromEnv = map[*yaml.Node]string{}
		}
		p.fromEnv[n] = text
		n.Value = envPlaceholderRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			i, err := strconv.Atoi(envPlaceholderRef.FindStringSubmatch(m)[1])
			if err != nil || i >= len(refs) {
				return m
			}
			v, ok := refs[i].value(getenv)
			if !ok && unset == nil {
				unset = &refs[i]
			}
			return v
		})
		if unset != nil {
			field := path
			if field == "" {
				field = "config"
			}
			p.add(&ConfigError{Field: field, Msg: fmt.Sprintf("${%s} is not set (line %d); set it, or write ${%s:-} where an empty value is meant",
				unset.name, n.Line, unset.name)})
			return
		}
		if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			n.Tag = ""
			if n.ShortTag() == "!!null" {
				n.Tag = "!!str"
			}
		}
	}
}

// checkKeys walks a YAML mapping against a struct's yaml tags so an
// unknown key is reported by its path (sources[1].coinbase), with the
// line, before decoding. A source's keys are the common ones of
// SourceConfig and those of its kind's configuration type.
func checkKeys(n *yaml.Node, t reflect.Type, path string, p *problemList) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), p)
		}
	case t.Kind() == reflect.Struct && t != reflect.TypeOf(time.Time{}) && n.Kind == yaml.MappingNode:
		fields := map[string]reflect.StructField{}
		collectFields(t, fields)
		kind := ""
		if t == reflect.TypeOf(SourceConfig{}) {
			var err error
			if kind, err = sourceKeys(n, path, fields, p); err != nil {
				// Which keys are right depends on the kind: only the kind
				// is named, not every key that follows it.
				p.add(err)
				return
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Value == "" {
				field := path
				if field == "" {
					field = "config"
				}
				p.add(&ConfigError{Field: field, Msg: fmt.Sprintf("a key must be a plain name (line %d)", k.Line)})
				continue
			}
			field := joinPath(path, k.Value)
			f, ok := fields[k.Value]
			if !ok && kind != "" && isSourceKey(k.Value) {
				p.add(&ConfigError{Field: field, Msg: fmt.Sprintf("not a key of a %s source (line %d)%s", kind, k.Line, suggestKey(k.Value, fields))})
				continue
			}
			if !ok {
				p.add(&ConfigError{Field: field, Msg: fmt.Sprintf("unknown key (line %d)%s", k.Line, suggestKey(k.Value, fields))})
				continue
			}
			if err := checkValue(v, f.Type, field); err != nil {
				p.add(err)
				continue
			}
			checkKeys(v, f.Type, field, p)
		}
	}
}

// suggestKey is " (did you mean KEY?)" for the key of fields closest to
// key, or "" when none is close.
func suggestKey(key string, fields map[string]reflect.StructField) string {
	names := slices.Sorted(maps.Keys(fields))
	return httpapi.DidYouMean(key, names)
}

// sourceKeys adds the keys of the source n's kind to fields and returns
// the kind; a missing or unknown kind is an error, since it decides
// which keys are known.
func sourceKeys(n *yaml.Node, path string, fields map[string]reflect.StructField, p *problemList) (string, error) {
	kind := ""
	var kindNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "kind" {
			kindNode = n.Content[i+1]
			kind = kindNode.Value
		}
	}
	k, ok := lookupKind(kind)
	if !ok {
		if text, env := p.fromEnv[kindNode]; env && kindNode != nil {
			return "", &ConfigError{Field: joinPath(path, "kind"), Msg: fmt.Sprintf("the value of %s is not a source kind (%s)", text, kindNames())}
		}
		return "", &ConfigError{Field: joinPath(path, "kind"), Msg: kindError(kind)}
	}
	collectFields(reflect.TypeOf(k.NewConfig("")), fields)
	return kind, nil
}

// isSourceKey reports whether key is a key of some source kind.
func isSourceKey(key string) bool {
	for _, k := range sourceKinds {
		fields := map[string]reflect.StructField{}
		collectFields(reflect.TypeOf(k.NewConfig("")), fields)
		if _, ok := fields[key]; ok {
			return true
		}
	}
	return false
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	durationType    = reflect.TypeFor[time.Duration]()
	timeType        = reflect.TypeFor[time.Time]()
)

// checkValue reports a value whose YAML shape does not fit the field's Go
// type, by the field's path and line: a list where text belongs, a mapping
// for a list, -1 for a height, or a bool spelled other than true or false.
// yaml's own error for these names neither (and quotes the value, which
// may be a secret in the wrong place, so no message here repeats one).
// A bool takes true or false, quoted or not, in any case, and nothing
// else: yaml took "yes" for true yet refused "false" in quotes.
func checkValue(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null") {
		return nil
	}
	if t != reflect.TypeFor[SourceConfig]() && reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil // the type reads its own shapes
	}
	wrong := func() error {
		return &ConfigError{Field: path, Msg: fmt.Sprintf("want %s (line %d)", describeType(t), n.Line)}
	}
	switch {
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return wrong()
		}
	case t.Kind() == reflect.Map || (t.Kind() == reflect.Struct && t != timeType):
		if n.Kind != yaml.MappingNode {
			return wrong()
		}
	case t.Kind() == reflect.Interface:
	case n.Kind != yaml.ScalarNode:
		return wrong()
	case t.Kind() == reflect.Bool:
		switch strings.ToLower(n.Value) {
		case "true", "false":
			n.Value, n.Tag, n.Style = strings.ToLower(n.Value), "!!bool", 0
		default:
			return wrong()
		}
	default:
		if n.Decode(reflect.New(t).Interface()) != nil {
			return wrong()
		}
	}
	return nil
}

// describeType is what a value of t looks like, for an error message.
func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 100ms or 15s"
	case t == timeType:
		return "a time such as 2026-01-02T15:04:05Z"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, not negative"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "text"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping of keys"
	}
	return "a value of another kind"
}

func collectFields(t reflect.Type, into map[string]reflect.StructField) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" {
			collectFields(f.Type, into)
			continue
		}
		if name != "" && name != "-" {
			into[name] = f
		}
	}
}

func joinPath(path, key string) string {
	// A key with a line break or another control character in it (YAML
	// keeps one of two line breaks in a plain key) is quoted, so the error
	// that names it stays one line.
	if strings.ContainsFunc(key, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// Validate checks the configuration, each source's by its kind, and
// returns the first problem as a ConfigError naming the field, and its
// line when the field came from a file.
func (c *Config) Validate() error {
	err := c.validate()
	c.withLine(err)
	return err
}

// withLine adds the line of err's field to its message, when the field
// came from a file and the message has no line yet.
func (c *Config) withLine(err error) {
	if ce, ok := asConfigError(err); ok && !strings.Contains(ce.Msg, "(line ") {
		if line, ok := c.lines[ce.Field]; ok {
			ce.Msg += fmt.Sprintf(" (line %d)", line)
		}
	}
}

// CheckConfig validates configuration text without starting anything and
// returns every problem it finds, each a ConfigError naming the field and
// its line: unset ${VAR}s, unknown keys, an unknown kind (and not the
// keys after it), values of the wrong type, and what Validate refuses.
func CheckConfig(raw []byte, getenv func(string) string) (Config, []error) {
	p := problemList{all: true}
	cfg := parseConfig(raw, getenv, &p)
	if cfg.decoded() {
		// Past a bad key or an unset variable the rest is still checked;
		// a field already named is not named again.
		cfg.problems(&p)
		for _, err := range p.errs {
			cfg.withLine(err)
		}
	}
	return cfg, p.errs
}

func (c *Config) validate() error {
	var p problemList
	c.problems(&p)
	return p.first()
}

// problems adds every problem of the configuration to p, in the order of
// the file's sections: Validate reports the first, `config check` all.
func (c *Config) problems(p *problemList) {
	p.add(c.Store.validate(c.DataDir))
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add(&ConfigError{"log.level", fmt.Sprintf("%q: want debug, info, warn or error", c.Log.Level)})
	}
	switch c.Log.Format {
	case "auto", "console", "json":
	default:
		p.add(&ConfigError{"log.format", fmt.Sprintf("%q: want auto, console or json", c.Log.Format)})
	}
	p.add(checkDataDir(c.DataDir))
	host, port, err := net.SplitHostPort(c.HTTP.Listen)
	if err != nil {
		p.add(&ConfigError{"http.listen", fmt.Sprintf("%q: want host:port", c.HTTP.Listen)})
	} else if _, err := net.LookupPort("tcp", port); err != nil {
		p.add(&ConfigError{"http.listen", fmt.Sprintf("%q: the port must be a number from 0 to 65535", c.HTTP.Listen)})
	}
	p.add(checkToken(c.HTTP.Token))
	if err == nil && !isLoopback(host) && c.HTTP.Token == "" && !c.HTTP.Insecure {
		p.add(&ConfigError{"http.token", fmt.Sprintf("required when http.listen (%s) is not a loopback address (or set http.insecure: true)", c.HTTP.Listen)})
	}
	for i, h := range c.HTTP.AllowedHosts {
		if httpapi.NormalizeHost(h) == "" {
			p.add(&ConfigError{fmt.Sprintf("http.allowed_hosts[%d]", i), fmt.Sprintf("%q: want a host name or IP address without scheme, port or path", h)})
		}
	}
	if c.HTTP.MaxStreams < 1 {
		p.add(&ConfigError{"http.max_streams", "must be at least 1"})
	}
	if c.HTTP.MaxBackups < 1 {
		p.add(&ConfigError{"http.max_backups", "must be at least 1"})
	}
	if c.Store.BatchMaxRecords < 1 {
		p.add(&ConfigError{"store.batch_max_records", "must be at least 1"})
	}
	if c.Store.BatchMaxDelay <= 0 {
		p.add(&ConfigError{"store.batch_max_delay", "must be positive"})
	}
	if c.Memory.LimitMB < 0 {
		p.add(&ConfigError{"memory.limit_mb", "must be 0 (no limit) or more"})
	}
	switch {
	case c.Memory.GCPercent < -1 || c.Memory.GCPercent == 0:
		p.add(&ConfigError{"memory.gc_percent", fmt.Sprintf("%d: want a percentage of at least 1, or -1", c.Memory.GCPercent)})
	case c.Memory.GCPercent == -1 && c.Memory.LimitMB == 0:
		p.add(&ConfigError{"memory.gc_percent", "-1 (collect only at the limit) needs memory.limit_mb"})
	}
	c.Alerts.problems(p)
	c.alertRuleProblems(p)
	seen := map[string]int{}
	known := make([]bool, len(c.Sources))
	for i, s := range c.Sources {
		pfx := fmt.Sprintf("sources[%d]", i)
		switch j, dup := seen[s.Name]; {
		case s.Name == "":
			p.add(&ConfigError{pfx + ".name", "required"})
		case !indexer.ValidName(s.Name):
			p.add(&ConfigError{pfx + ".name", fmt.Sprintf("%q: use lowercase letters, digits and -", s.Name)})
		case dup:
			p.add(&ConfigError{pfx + ".name", fmt.Sprintf("%q is already the name of sources[%d]", s.Name, j)})
		default:
			seen[s.Name] = i
		}
		if s.StallThreshold < 0 {
			p.add(&ConfigError{pfx + ".stall_threshold", fmt.Sprintf("%s: must not be negative (0: the kind's default)", s.StallThreshold)})
		}
		k, ok := lookupKind(s.Kind)
		if !ok {
			p.add(&ConfigError{pfx + ".kind", kindError(s.Kind)})
			continue
		}
		known[i] = true
		if s.Settings == nil {
			c.Sources[i].Settings = k.NewConfig(s.Name) // no keys of its own: the kind's defaults
		}
	}
	// Each kind checks its own keys; a source of an unknown kind has none
	// to check.
	for i, s := range c.Sources {
		if !known[i] {
			continue
		}
		if err := s.Settings.Validate(); err != nil {
			if !p.all {
				p.add(sourceError(i, err))
				continue
			}
			for line := range strings.SplitSeq(err.Error(), "\n") {
				p.add(sourceError(i, errors.New(line)))
			}
		}
	}
}

// validate checks the backend and its keys. A DSN is never quoted in an
// error: it usually holds a password.
func (s *StoreConfig) validate(dataDir string) error {
	pg := s.Postgres
	switch s.Backend {
	case BackendBolt:
		if dataDir == "" {
			return &ConfigError{"data_dir", "required"}
		}
		if pg.DSN != "" || pg.ReadDSN != "" {
			return &ConfigError{"store.postgres", "set, but store.backend is bolt (set store.backend: postgres to use it)"}
		}
	case BackendPostgres:
		if pg.DSN == "" {
			return &ConfigError{"store.postgres.dsn", "required with store.backend: postgres"}
		}
		if _, err := pgconn.ParseConfig(pg.DSN); err != nil {
			return &ConfigError{"store.postgres.dsn", "not a PostgreSQL connection string (postgres://user:password@host:port/db or key=value pairs)"}
		}
		if pg.ReadDSN != "" {
			if _, err := pgconn.ParseConfig(pg.ReadDSN); err != nil {
				return &ConfigError{"store.postgres.read_dsn", "not a PostgreSQL connection string (postgres://user:password@host:port/db or key=value pairs)"}
			}
		}
		if pg.LeaseTTL < time.Second {
			return &ConfigError{"store.postgres.lease_ttl", fmt.Sprintf("%s: must be at least 1s", pg.LeaseTTL)}
		}
		if pg.MaxReplayLag <= 0 {
			return &ConfigError{"store.postgres.max_replay_lag", "must be positive"}
		}
	default:
		return &ConfigError{"store.backend", fmt.Sprintf("%q: want bolt or postgres", s.Backend)}
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// asConfigError finds a ConfigError in err's chain.
func asConfigError(err error) (*ConfigError, bool) {
	var ce *ConfigError
	ok := errors.As(err, &ce)
	return ce, ok
}

// minTokenLength is the shortest API token accepted: 16 characters, about
// 96 bits when drawn as `evindex token` draws them.
const minTokenLength = 16

// checkToken refuses a token that protects nothing: one of white space
// only (it reached the API as "no token" on some paths and refused every
// request on others), one that begins or ends with white space (a client
// cannot send it: the header value is trimmed), or a short one.
func checkToken(tok string) error {
	switch {
	case tok == "":
		return nil
	case strings.TrimSpace(tok) == "":
		return &ConfigError{"http.token", "blank: give a token of at least 16 characters (evindex token prints one), or none"}
	case strings.TrimSpace(tok) != tok:
		return &ConfigError{"http.token", "begins or ends with white space, which no client can send"}
	case len(tok) < minTokenLength:
		return &ConfigError{"http.token", fmt.Sprintf("too short: %d characters, at least %d (evindex token prints a random one)", len(tok), minTokenLength)}
	}
	return nil
}

// checkDataDir refuses a data_dir that can never be created: a symlink to
// nothing (creating it failed with "file exists") or a path under a file.
// One that does not exist yet is fine: it is created at start.
func checkDataDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		if _, err := os.Stat(dir); err != nil {
			target, _ := os.Readlink(dir)
			return &ConfigError{"data_dir", fmt.Sprintf("%s is a symlink to %s, which does not exist", dir, target)}
		}
		fi, _ = os.Stat(dir)
	}
	if !fi.IsDir() {
		return &ConfigError{"data_dir", fmt.Sprintf("%s is not a directory", dir)}
	}
	return nil
}
