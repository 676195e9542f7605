package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestConfigReferenceCoversEveryKey checks that `evindex config` cannot
// drift from the parser: every key the parser reads, of every source kind,
// has a meaning (its doc tag) and appears in the reference, and the
// reference, being YAML of those keys, is read back without an unknown key.
func TestConfigReferenceCoversEveryKey(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"config"}, noEnv, &out, &out); err != nil {
		t.Fatal(err)
	}
	ref := out.String()
	var walk func(tp reflect.Type, path string)
	walk = func(tp reflect.Type, path string) {
		for tp.Kind() == reflect.Pointer {
			tp = tp.Elem()
		}
		for i := range tp.NumField() {
			f := tp.Field(i)
			key := yamlKey(f)
			if key == "" {
				continue
			}
			if f.Tag.Get("doc") == "" {
				t.Errorf("%s%s: no doc tag, so evindex config cannot say what it means", path, key)
			}
			if !regexp.MustCompile(`(?m)^\s*(- )?` + key + `:`).MatchString(ref) {
				t.Errorf("%s%s is missing from evindex config", path, key)
			}
			if f.Type.Kind() == reflect.Struct && f.Type != timeType {
				walk(f.Type, path+key+".")
			}
			if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct && f.Type.Elem() != reflect.TypeFor[SourceConfig]() {
				walk(f.Type.Elem(), path+key+"[].")
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	walk(reflect.TypeFor[SourceConfig](), "sources[].")
	for _, k := range sourceKinds {
		walk(reflect.TypeOf(k.NewConfig("")), "sources[kind="+k.Name+"].")
		if !strings.Contains(ref, "    kind: "+k.Name+"\n") {
			t.Errorf("no %s source entry in the reference", k.Name)
		}
	}
	// Read back: every key is one the parser knows, with a value of its type.
	var p problemList
	parseConfig(out.Bytes(), noEnv, &p)
	if len(p.errs) != 0 {
		t.Fatalf("the reference does not parse as a config: %v", p.errs)
	}
	for _, want := range []string{"# duration (100ms, 15s, 1h): longest a received record waits", "batch_max_delay: 100ms", "staking_contract: 8624b52f9ddcd04a"} {
		if !strings.Contains(ref, want) {
			t.Errorf("reference lacks %q", want)
		}
	}
}

// configCheck runs `evindex config check` on text.
func configCheck(t *testing.T, text string, env map[string]string) (code int, stdout, stderr string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "evindex.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"config", "check", path}, func(k string) string { return env[k] }, &out, &errOut)
	return exitCode(err, &errOut), out.String(), strings.ReplaceAll(errOut.String(), path, "FILE")
}

// TestConfigCheckListsEveryProblem checks `evindex config check`: exit 0 on
// a sound file, else 2 with every problem on its own line: each unset
// ${VAR}, each unknown key (with a suggestion), an unknown kind named as
// such (not the keys after it), and what validation refuses elsewhere.
func TestConfigCheckListsEveryProblem(t *testing.T) {
	code, stdout, stderr := configCheck(t, "sources:\n  - {name: a, kind: flow, endpoint: 127.0.0.1:3569}\n", nil)
	if code != 0 || stdout != "FILE: sound; 1 sources: a (flow)\n" && !strings.HasSuffix(stdout, ": sound; 1 sources: a (flow)\n") || stderr != "" {
		t.Fatalf("a sound file: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	bad := `log: {level: loud}
http:
  token: ${EVINDEX_TOKEN}
  listne: 127.0.0.1:9000
store:
  batch_max_records: 0
sources:
  - name: sm
    kind: spacmesh
    coinbase: sm1x
    public_endpoint: 127.0.0.1:9092
  - name: pre
    kind: presearch
    api_key: ${PRESEARCH_API_KEY}
    status_interval: 1s
`
	code, stdout, stderr = configCheck(t, bad, nil)
	want := []string{
		"FILE: http.token: ${EVINDEX_TOKEN} is not set (line 3)",
		"FILE: sources[1].api_key: ${PRESEARCH_API_KEY} is not set (line 14)",
		"FILE: http.listne: unknown key (line 4) (did you mean listen?)",
		`FILE: sources[0].kind: "spacmesh" is not a source kind (flow, spacemesh, presearch) (did you mean spacemesh?)`,
		"FILE: log.level: \"loud\": want debug, info, warn or error",
		"FILE: store.batch_max_records: must be at least 1 (line 6)",
		"FILE: sources[1].status_interval:",
		"evindex: FILE: 7 problems\n",
	}
	if code != 2 || stdout != "" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
	if strings.Contains(stderr, "coinbase") || strings.Contains(stderr, "public_endpoint") {
		t.Errorf("the keys of a source of an unknown kind are blamed:\n%s", stderr)
	}
	if n := strings.Count(stderr, "\n"); n != 8 {
		t.Errorf("%d lines, want the count and 7 problems:\n%s", n, stderr)
	}
}

// readmeBlock is the first fenced block of lang after the line holding
// marker in the README.
func readmeBlock(t *testing.T, marker, lang string) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	i := strings.Index(s, marker)
	if i < 0 {
		t.Fatalf("README has no %q", marker)
	}
	start := strings.Index(s[i:], "```"+lang+"\n")
	if start < 0 {
		t.Fatalf("README has no ```%s block after %q", lang, marker)
	}
	body := s[i+start+len("```"+lang+"\n"):]
	return body[:strings.Index(body, "```")]
}

// TestREADMEConfigPassesCheck runs `evindex config check` on exactly the
// README's configuration: sound once the variables it names are set, and
// each unset one named when not.
func TestREADMEConfigPassesCheck(t *testing.T) {
	text := readmeBlock(t, "A configuration (", "yaml")
	vars := regexp.MustCompile(`\$\{([A-Z_]+)\}`).FindAllStringSubmatch(text, -1)
	if len(vars) == 0 {
		t.Fatal("the README's config names no variable")
	}
	env := map[string]string{}
	for _, v := range vars {
		env[v[1]] = "readme-placeholder-" + strings.ToLower(v[1]) // 16+ characters, a valid token
	}
	code, stdout, stderr := configCheck(t, text, env)
	if code != 0 || !strings.Contains(stdout, "sound; 3 sources") {
		t.Fatalf("the README's config: exit %d\n%s%s", code, stdout, stderr)
	}
	code, _, stderr = configCheck(t, text, nil)
	for _, v := range vars {
		if code != 2 || !strings.Contains(stderr, "${"+v[1]+"} is not set") {
			t.Errorf("without %s: exit %d\n%s", v[1], code, stderr)
		}
	}
}
