package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/evindex/evindex/httpapi"
)

// runConfigCmd is `evindex config` (the annotated reference of every key)
// and `evindex config check FILE` (validate a file without starting).
func runConfigCmd(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "config", "| evindex config check FILE",
		"Without arguments, prints every key of the config file, per source kind: its type,\n"+
			"default and meaning, as YAML with comments (generated from the structs that parse\n"+
			"the file). 'evindex config check FILE' validates FILE without starting anything:\n"+
			"exit 0 when it is sound, else 2 with every problem listed.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch rest := fs.Args(); {
	case len(rest) == 0:
		writeReference(e.stdout)
		return nil
	case rest[0] == "check" && len(rest) == 2:
		return checkConfigFile(e, rest[1])
	case rest[0] == "check":
		return usagef("config check: name one file (evindex config check evindex.yaml)")
	default:
		return usagef("config: unknown subcommand %q%s (evindex config, or evindex config check FILE)", rest[0], httpapi.DidYouMean(rest[0], []string{"check"}))
	}
}

// checkConfigFile is `evindex config check FILE`.
func checkConfigFile(e env, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return &ConfigError{Field: path, Msg: err.Error()}
	}
	cfg, problems := CheckConfig(raw, e.getenv)
	if len(problems) == 0 {
		names := make([]string, len(cfg.Sources))
		for i, s := range cfg.Sources {
			names[i] = s.Name + " (" + s.Kind + ")"
		}
		hooks := make([]string, len(cfg.Alerts.Webhooks))
		for i, w := range cfg.Alerts.webhooks() {
			hooks[i] = w.Name + " (" + w.RedactedURL() + ")"
		}
		webhooks := ""
		if len(hooks) > 0 {
			webhooks = fmt.Sprintf("; %d webhooks%s", len(hooks), listAfterColon(hooks))
		}
		fmt.Fprintf(e.stdout, "%s: sound; %d sources%s%s\n", path, len(names), listAfterColon(names), webhooks)
		return nil
	}
	// One problem a line, then the command's own last line counts them.
	for _, p := range problems {
		fmt.Fprintf(e.stderr, "%s: %s\n", path, p)
	}
	word := "problems"
	if len(problems) == 1 {
		word = "problem"
	}
	return &configProblems{first: problems[0], text: fmt.Sprintf("%s: %d %s", path, len(problems), word)}
}

func listAfterColon(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return ": " + strings.Join(names, ", ")
}

// configProblems is a config file's problems, already listed: a
// configuration error (exit 2) whose text counts them.
type configProblems struct {
	first error
	text  string
}

func (e *configProblems) Error() string { return e.text }
func (e *configProblems) Unwrap() error { return e.first }

// writeReference prints the config file's keys as commented YAML: each
// key's type, default and meaning from its struct field (the yaml and doc
// tags), and a source entry per kind with the kind's defaults.
func writeReference(w io.Writer) {
	fmt.Fprintln(w, "# evindex configuration: every key, with its type, default and meaning.")
	fmt.Fprintln(w, "# Generated from the structs that read the file (evindex config).")
	fmt.Fprintln(w, "# ${VAR} is read from the environment (${VAR:-default} when it may be unset);")
	fmt.Fprintln(w, "# unknown keys are errors. Check a file with: evindex config check FILE")
	def := DefaultConfig()
	v := reflect.ValueOf(def)
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Name == "Sources" {
			continue
		}
		writeField(w, f, v.Field(i), "")
	}
	src, _ := t.FieldByName("Sources")
	fmt.Fprintf(w, "\n# %s (a list). One entry per source; every entry has the keys of its kind.\n", src.Tag.Get("doc"))
	fmt.Fprintln(w, "sources:")
	for _, k := range sourceKinds {
		fmt.Fprintf(w, "\n  # a %s source: %s\n", k.Name, k.Simulator.About)
		common := reflect.TypeFor[SourceConfig]()
		first := true
		for i := range common.NumField() {
			f := common.Field(i)
			key := yamlKey(f)
			if key == "" {
				continue
			}
			val := reflect.Zero(f.Type)
			switch key {
			case "name":
				val = reflect.ValueOf(k.Name + "-main")
			case "kind":
				val = reflect.ValueOf(k.Name)
			}
			writeFieldAs(w, f, val, "    ", first)
			first = false
		}
		cv := reflect.ValueOf(k.NewConfig(k.Name + "-main")).Elem()
		for i := range cv.NumField() {
			writeField(w, cv.Type().Field(i), cv.Field(i), "    ")
		}
	}
}

// yamlKey is a field's key in the file, or "" for a field no file sets.
func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

func writeField(w io.Writer, f reflect.StructField, v reflect.Value, indent string) {
	writeFieldAs(w, f, v, indent, false)
}

// writeFieldAs writes one key: its comment, then key: default; a mapping
// recurses. The first key of a list entry starts with "- ".
func writeFieldAs(w io.Writer, f reflect.StructField, v reflect.Value, indent string, listItem bool) {
	key := yamlKey(f)
	if key == "" {
		return
	}
	lead := indent
	if listItem {
		lead = indent[:len(indent)-2] + "- "
	}
	doc := f.Tag.Get("doc")
	if f.Type.Kind() == reflect.Struct && f.Type != timeType {
		fmt.Fprintf(w, "%s# %s\n%s%s:\n", indent, doc, lead, key)
		for i := range f.Type.NumField() {
			writeField(w, f.Type.Field(i), v.Field(i), indent+"  ")
		}
		return
	}
	if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
		// A list of entries: one example entry shows an entry's keys.
		fmt.Fprintf(w, "%s# %s (a list; one entry with every key, default empty)\n%s%s:\n", indent, doc, lead, key)
		writeEntry(w, f.Type.Elem(), indent+"    ")
		return
	}
	fmt.Fprintf(w, "%s# %s: %s\n%s%s: %s\n", indent, typeName(f.Type), doc, lead, key, yamlValue(v))
}

// writeEntry writes one list entry of type t: its keys with their zero
// values, or a field's example tag where an empty value would mislead.
func writeEntry(w io.Writer, t reflect.Type, indent string) {
	first := true
	for i := range t.NumField() {
		f := t.Field(i)
		if yamlKey(f) == "" {
			continue
		}
		v := reflect.Zero(f.Type)
		if ex := f.Tag.Get("example"); ex != "" && f.Type.Kind() == reflect.String {
			v = reflect.ValueOf(ex)
		}
		writeFieldAs(w, f, v, indent, first)
		first = false
	}
}

// typeName is a field's type as the reference names it.
func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration (100ms, 15s, 1h)"
	case t.Kind() == reflect.Slice:
		return "list of " + typeName(t.Elem())
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true|false"
	case reflect.Int, reflect.Int64:
		return "integer"
	case reflect.Uint, reflect.Uint32, reflect.Uint64:
		return "integer >= 0"
	case reflect.Float64:
		return "number"
	}
	return "text"
}

// yamlValue is a default as YAML text.
func yamlValue(v reflect.Value) string {
	switch {
	case v.Type() == durationType:
		return time.Duration(v.Int()).String()
	case v.Kind() == reflect.Slice:
		if v.Len() == 0 {
			return "[]"
		}
		parts := make([]string, v.Len())
		for i := range v.Len() {
			parts[i] = yamlValue(v.Index(i))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case v.Kind() == reflect.String:
		s := v.String()
		if s == "" {
			return `""`
		}
		var n yaml.Node
		if yaml.Unmarshal([]byte(s), &n) != nil || len(n.Content) != 1 || n.Content[0].Value != s || n.Content[0].ShortTag() != "!!str" {
			return strconv.Quote(s)
		}
		return s
	case v.Kind() == reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'f', -1, 64)
	}
	return fmt.Sprint(v.Interface())
}
