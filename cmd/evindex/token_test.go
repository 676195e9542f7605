package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnsetVariableIsAnError: a config that takes a value from an unset
// variable names the field and the variable and exits 2, instead of
// starting with the value empty (for the token: with no authentication);
// ${VAR:-default} is how a value is made optional.
func TestUnsetVariableIsAnError(t *testing.T) {
	env := func(k string) string { return map[string]string{"SET_TOKEN": "a-token-of-sixteen+"}[k] }
	for _, tt := range []struct {
		yaml, field, variable string
	}{
		{"http:\n  token: ${EVINDEX_TOKEN}\n", "http.token", "EVINDEX_TOKEN"},
		{"http: {listen: 0.0.0.0:8080, token: \"${EVINDEX_TOKEN}\"}\n", "http.token", "EVINDEX_TOKEN"},
		{"sources:\n  - {name: p, kind: presearch, api_key: \"key-${PRE_KEY}\"}\n", "sources[0].api_key", "PRE_KEY"},
		{"data_dir: ${DATA}/x\n", "data_dir", "DATA"},
	} {
		_, err := ParseConfig([]byte(tt.yaml), env)
		ce, ok := asConfigError(err)
		if !ok || ce.Field != tt.field || !strings.Contains(ce.Msg, "${"+tt.variable+"} is not set") || !strings.Contains(ce.Msg, "${"+tt.variable+":-}") {
			t.Errorf("%q: %v; want an error naming %s and ${%s}", tt.yaml, err, tt.field, tt.variable)
		}
	}
	for yaml, token := range map[string]string{
		"http: {token: \"${EVINDEX_TOKEN:-}\"}\n":                    "",
		"http: {token: \"${EVINDEX_TOKEN:-fallback-token-0123}\"}\n": "fallback-token-0123",
		"http: {token: \"${SET_TOKEN:-fallback-token-0123}\"}\n":     "a-token-of-sixteen+",
		"http: {token: ${SET_TOKEN}}\n":                              "a-token-of-sixteen+",
	} {
		cfg, err := ParseConfig([]byte(yaml), env)
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil || cfg.HTTP.Token != token {
			t.Errorf("%q: token %q (%v), want %q", yaml, cfg.HTTP.Token, err, token)
		}
	}

	// The whole command: exit 2, the field and variable named, nothing created.
	dir := t.TempDir()
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"run", "--config", writeConfig(t, dir, "data_dir: "+filepath.Join(dir, "data")+"\nhttp: {token: ${EVINDEX_TOKEN}}\n")},
		noEnv, io.Discard, &stderr)
	if code := exitCode(err, &stderr); code != 2 || !strings.Contains(stderr.String(), "http.token: ${EVINDEX_TOKEN} is not set") {
		t.Fatalf("run with EVINDEX_TOKEN unset: exit %d: %s", code, stderr.String())
	}
}

// TestWeakTokensAreRefused starts `evindex run` with tokens that protect
// nothing: blank, padded with spaces no client can send, or short. Each
// exits 2 naming http.token, whatever the listen address.
func TestWeakTokensAreRefused(t *testing.T) {
	for _, tok := range []string{"   ", "\t", "a", "s3cret", "fifteen-chars-x", " padded-token-0123456 ", "padded-token-0123456\t"} {
		for _, listen := range []string{"0.0.0.0:8080", "127.0.0.1:8080"} {
			dir := t.TempDir()
			cfg := writeConfig(t, dir, fmt.Sprintf("data_dir: %s\nhttp: {listen: %q, token: %q}\n", filepath.Join(dir, "data"), listen, tok))
			var stderr bytes.Buffer
			err := run(context.Background(), []string{"run", "--config", cfg}, noEnv, io.Discard, &stderr)
			if code := exitCode(err, &stderr); code != 2 || !strings.Contains(stderr.String(), "http.token") {
				t.Errorf("token %q on %s: exit %d: %s", tok, listen, code, stderr.String())
			}
			var flagErr bytes.Buffer
			err = run(context.Background(), []string{"run", "--data-dir", filepath.Join(dir, "data"), "--http-listen", listen, "--http-token", tok}, noEnv, io.Discard, &flagErr)
			if code := exitCode(err, &flagErr); code != 2 || !strings.Contains(flagErr.String(), "--http-token: ") {
				t.Errorf("--http-token %q on %s: exit %d: %s", tok, listen, code, flagErr.String())
			}
		}
	}
}

// TestTokenCommand prints tokens the config accepts, a new one each time.
func TestTokenCommand(t *testing.T) {
	seen := map[string]bool{}
	for range 3 {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"token"}, noEnv, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		tok := strings.TrimSuffix(out.String(), "\n")
		if len(tok) != 43 || strings.ContainsAny(tok, " \n+/=") || checkToken(tok) != nil || seen[tok] {
			t.Fatalf("evindex token printed %q", out.String())
		}
		seen[tok] = true
	}
}
