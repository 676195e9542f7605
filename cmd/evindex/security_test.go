package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/indexer/presearch/presim"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/storetest"
)

func TestListenIsLoopbackByDefault(t *testing.T) {
	host, _, err := net.SplitHostPort(DefaultConfig().HTTP.Listen)
	if err != nil || net.ParseIP(host) == nil || !net.ParseIP(host).IsLoopback() {
		t.Fatalf("default listen address %q is not a loopback address", DefaultConfig().HTTP.Listen)
	}
	cfg, err := ParseConfig([]byte("data_dir: x\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Listen != DefaultConfig().HTTP.Listen || cfg.HTTP.Token != "" {
		t.Fatalf("a config without http: listen %q, token %q", cfg.HTTP.Listen, cfg.HTTP.Token)
	}
}

// TestPublicListenWithoutTokenIsRefused starts `evindex run` on addresses
// others can reach, set by flag, environment and config file: without a
// token it must exit 2 naming http.token, before it creates anything.
func TestPublicListenWithoutTokenIsRefused(t *testing.T) {
	refused := []string{"0.0.0.0:8080", ":8080", "[::]:8080", "192.0.2.7:8080", "example.org:8080", "[2001:db8::1]:8080"}
	for _, addr := range refused {
		for _, how := range []string{"flag", "env", "config"} {
			t.Run(how+"_"+addr, func(t *testing.T) {
				dir := t.TempDir()
				data := filepath.Join(dir, "data")
				args := []string{"run", "--data-dir", data}
				env := map[string]string{}
				switch how {
				case "flag":
					args = append(args, "--http-listen", addr)
				case "env":
					env["EVINDEX_HTTP_LISTEN"] = addr
				case "config":
					args = append(args, "--config", writeConfig(t, dir, fmt.Sprintf("http: {listen: %q}\n", addr)))
				}
				var stderr bytes.Buffer
				err := run(context.Background(), args, func(k string) string { return env[k] }, io.Discard, &stderr)
				code := exitCode(err, &stderr)
				if code != 2 || !strings.Contains(stderr.String(), "http.token") {
					t.Fatalf("exit %d: %s", code, stderr.String())
				}
				if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("the refused run created its data dir (%v)", err)
				}
			})
		}
	}
	// What is allowed: loopback in any spelling, or an address with a
	// token, or one explicitly marked insecure.
	allowed := []string{
		"http: {listen: 127.0.0.1:8080}", "http: {listen: 127.0.0.2:8080}", "http: {listen: localhost:8080}",
		"http: {listen: '[::1]:8080'}", "http: {listen: 0.0.0.0:8080, token: t0ken-0123456789ab}", "http: {listen: ':8080', insecure: true}",
	}
	for _, y := range allowed {
		cfg, err := ParseConfig([]byte(y+"\n"), noEnv)
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			t.Errorf("%s: %v", y, err)
		}
	}
}

// getAuth is a GET with a bearer token (empty: none).
func getAuth(t *testing.T, addr, path, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// TestBackupNeedsTheToken runs `evindex backup` against a daemon with a
// token: without it or with a wrong one it fails with the 401 and leaves
// no file; with it (flag or EVINDEX_TOKEN) it writes a private copy.
func TestBackupNeedsTheToken(t *testing.T) {
	const token = "backup-t0ken-3f9a"
	dir := t.TempDir()
	d := startDaemon(t, writeConfig(t, dir, fmt.Sprintf("data_dir: %s\nhttp: {token: %s}\n", filepath.Join(dir, "data"), token)))
	defer d.stop()
	if code, _ := getAuth(t, d.addr, "/v1/admin/backup", ""); code != 401 {
		t.Fatalf("/v1/admin/backup without the token: %d", code)
	}
	out := filepath.Join(dir, "copy.db")
	for name, c := range map[string]struct {
		args []string
		env  map[string]string
		ok   bool
	}{
		"NoToken":    {nil, nil, false},
		"WrongToken": {[]string{"--token", "guess"}, nil, false},
		"WrongEnv":   {nil, map[string]string{"EVINDEX_TOKEN": token + "x"}, false},
		"Flag":       {[]string{"--token", token}, nil, true},
		"Env":        {nil, map[string]string{"EVINDEX_TOKEN": token}, true},
	} {
		t.Run(name, func(t *testing.T) {
			os.Remove(out)
			args := append([]string{"backup", "--url", "http://" + d.addr, "-o", out}, c.args...)
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, func(k string) string { return c.env[k] }, &stdout, &stderr)
			if !c.ok {
				if err == nil || !strings.Contains(err.Error(), "401") {
					t.Fatalf("backup: %v", err)
				}
				if strings.Contains(err.Error(), token) {
					t.Fatalf("the error shows the token: %v", err)
				}
				if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("a refused backup left %s (%v)", out, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("backup: %v\n%s", err, stderr.String())
			}
			fi, err := os.Stat(out)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("backup file: %v, mode %v", err, fi.Mode().Perm())
			}
		})
	}
}

// TestPrivateFiles checks the modes of what evindex creates: the data dir
// (and any parent it had to create) 0700, the database, backups and
// exports 0600, whatever the umask lets through.
func TestPrivateFiles(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "var", "lib", "evindex")
	d := startDaemon(t, writeConfig(t, dir, "data_dir: "+data+"\n"))
	backup := filepath.Join(dir, "copy.db")
	if err := run(context.Background(), []string{"backup", "--url", "http://" + d.addr, "-o", backup}, noEnv, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	export := filepath.Join(dir, "sources.csv")
	if err := run(context.Background(), []string{"export", "--url", "http://" + d.addr, "--format", "csv", "-o", export, "events"}, noEnv, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	d.stop()
	for path, want := range map[string]os.FileMode{
		filepath.Join(dir, "var"):          0o700,
		filepath.Join(dir, "var", "lib"):   0o700,
		data:                               0o700,
		filepath.Join(data, bolt.FileName): 0o600,
		backup:                             0o600,
		export:                             0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
	}
}

// TestSecretsStayOut runs a daemon with a token and three Presearch keys
// (one accepted, one rejected, one for an API that is down, behind a URL
// with a password) at debug level, then reads everything a user or a
// scraper can see: no log line, status, error or metric may hold a secret
// in any spelling.
func TestSecretsStayOut(t *testing.T) {
	const (
		token   = "tok-SECRET-a1b2c3"
		goodKey = "pre+SECRET/good=key"
		badKey  = "pre-SECRET-rejected"
		downKey = "pre-SECRET-down"
		pass    = "pw-SECRET-basic"
	)
	psim, err := presim.Start(context.Background(), "127.0.0.1:0", presim.Config{APIKey: goodKey, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer psim.Close()
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	dir := t.TempDir()
	env := map[string]string{"EVINDEX_TOKEN": token, "GOOD_KEY": goodKey}
	cfg := fmt.Sprintf(`data_dir: %s
log: {level: debug}
http: {token: "${EVINDEX_TOKEN}"}
sources:
  - {name: pre-good, kind: presearch, base_url: %s, api_key: "${GOOD_KEY}", backfill_days: 1, status_interval: 15s}
  - {name: pre-bad, kind: presearch, base_url: %s, api_key: %s}
  - {name: pre-down, kind: presearch, base_url: "http://user:%s@%s", api_key: %s}
`, filepath.Join(dir, "data"), psim.URL, psim.URL, badKey, pass, deadAddr, downKey)
	path := writeConfig(t, dir, cfg)

	logs := &storetest.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"run", "--config", path, "--log-format", "json", "--http-listen", "127.0.0.1:0"},
			func(k string) string { return env[k] }, io.Discard, logs)
	}()
	var addr string
	for i := 0; i < 2000 && addr == ""; i++ {
		addr = logField(logs.String(), "evindex serving", "addr")
		time.Sleep(10 * time.Millisecond)
	}
	if addr == "" {
		cancel()
		t.Fatalf("no daemon:\n%s", logs.String())
	}
	states := func() map[string]string {
		_, body := getAuth(t, addr, "/v1/sources?format=csv", token)
		out := map[string]string{}
		for _, line := range strings.Split(string(body), "\n") {
			f := strings.Split(line, ",")
			for _, st := range []string{"live", "backfilling", "failed", "retrying"} {
				if len(f) > 1 && strings.Contains(line, ","+st+",") {
					out[f[0]] = st
				}
			}
		}
		return out
	}
	for i := 0; ; i++ {
		s := states()
		if (s["pre-good"] == "live" || s["pre-good"] == "backfilling") && s["pre-bad"] == "failed" && s["pre-down"] == "retrying" {
			break
		}
		if i > 2000 {
			cancel()
			t.Fatalf("sources did not settle: %v\n%s", s, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	seen := map[string][]byte{}
	for _, p := range []string{"/v1/sources", "/v1/sources?format=csv", "/v1/sources?format=ndjson", "/v1/sources/pre-good",
		"/v1/sources/pre-bad", "/v1/sources/pre-down", "/v1/nodes", "/metrics", "/openapi.json", "/", "/readyz", "/healthz",
		"/v1/events?source=pre-good", "/v1/rewards?source=pre-good"} {
		code, body := getAuth(t, addr, p, token)
		if code != 200 && !(p == "/readyz" && code == 503) {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
		seen["GET "+p] = body
	}
	_, bad := getAuth(t, addr, "/v1/sources", token[:len(token)-1])
	seen["401 answer"] = bad
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seen["logs"] = []byte(logs.String())
	if !strings.Contains(string(seen["GET /v1/sources/pre-bad"]), "API key rejected") ||
		!strings.Contains(string(seen["GET /v1/sources/pre-down"]), "connection refused") {
		t.Fatalf("the failures do not show: %s\n%s", seen["GET /v1/sources/pre-bad"], seen["GET /v1/sources/pre-down"])
	}
	for _, secret := range []string{token, goodKey, badKey, downKey, pass} {
		for _, spelling := range []string{secret, url.PathEscape(secret), url.QueryEscape(secret), "SECRET"} {
			for where, text := range seen {
				if bytes.Contains(text, []byte(spelling)) {
					t.Errorf("%s shows %q", where, spelling)
				}
			}
		}
	}
}

// TestConfigErrorsKeepSecrets gives secrets with every character YAML
// treats specially, through ${VAR} as CONFIG.md suggests: each must arrive
// verbatim, and no configuration error may repeat one.
func TestConfigErrorsKeepSecrets(t *testing.T) {
	secrets := []string{"plain-S3cret", "#hash-start", "mid#hash", "a: b", "*alias", "&anchor", "!tag", "'single", `"double`,
		"{flow}", "[seq]", "%percent", "@at", "`tick", "|pipe", ">fold", "- dash", "~", "null", "true", "0x1F", "12345",
		"  padded  ", "trailing\\", "new\nline", "${NESTED}", "ünïcødé"}
	for _, secret := range secrets {
		env := func(k string) string {
			if k == "SECRET" {
				return secret
			}
			return ""
		}
		cfg, err := ParseConfig([]byte("http:\n  listen: 0.0.0.0:8080\n  token: ${SECRET}\n"), env)
		if err != nil {
			t.Errorf("token %q: %v", secret, err)
			continue
		}
		if cfg.HTTP.Token != secret {
			t.Errorf("token %q arrived as %q", secret, cfg.HTTP.Token)
		}
		// The same secret in configs with a mistake nearby, or in a
		// field of another type (an error there must not quote it).
		for _, y := range []string{
			"sources:\n  - {name: p, kind: presearch, api_key: \"${SECRET}\", status_interval: 1s}\n",
			"sources:\n  - {name: p, kind: presearch, api_key: ${SECRET}, base_url: ftp://x}\n",
			"sources:\n  - name: p\n    kind: presearch\n    api_key: ${SECRET}\n    api_kye: x\n",
			"sources:\n  - name: p\n    kind: flow\n    api_key: ${SECRET}\n",
			"http: {token: ${SECRET}, listen: nowhere}\n",
			"store: {batch_max_records: ${SECRET}, batch_max_delay: 0s}\n",
			"http: {insecure: ${SECRET}, listen: nowhere}\n",
		} {
			cfg, err := ParseConfig([]byte(y), env)
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil {
				_, err = buildSources(cfg)
			}
			if err == nil {
				t.Errorf("%q with %q: no error", y, secret)
				continue
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("%q with %q: the error is not one line: %v", y, secret, err)
			}
			if len(strings.TrimSpace(secret)) > 3 && strings.Contains(err.Error(), strings.TrimSpace(secret)) {
				t.Errorf("%q with %q: the error shows the secret: %v", y, secret, err)
			}
		}
	}
}
