package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWebhookConfigErrors checks that each wrong alerts.webhooks entry is
// a configuration error (exit 2) naming its field, and that neither the
// errors nor a sound file's summary show a URL's credentials, a token or
// a header value.
func TestWebhookConfigErrors(t *testing.T) {
	const secret = "S3CRETVALUE"
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	empty := filepath.Join(dir, "empty")
	for path, content := range map[string]string{token: secret + "\n", empty: " \n"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, hooks, want string
	}{
		{"NoURL", `[{name: pager}]`, "alerts.webhooks[0].url: required"},
		{"NotAURL", `[{url: "hooks.example.org/` + secret + `"}]`, "alerts.webhooks[0].url: not an absolute http or https URL"},
		{"BadScheme", `[{url: "ftp://u:` + secret + `@h.example.org/x"}]`, "alerts.webhooks[0].url: not an absolute http or https URL (the scheme is ftp)"},
		{"Fragment", `[{url: "https://h.example.org/x#` + secret + `"}]`, "alerts.webhooks[0].url: not an absolute http or https URL (a #fragment is never sent)"},
		{"MissingTokenFile", `[{url: "https://h.example.org/x", token_file: ` + filepath.Join(dir, "nope") + `}]`, "alerts.webhooks[0].token_file: " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"EmptyTokenFile", `[{url: "https://h.example.org/x", token_file: ` + empty + `}]`, "alerts.webhooks[0].token_file: " + empty + ": holds no token"},
		{"TokenFileAndHeader", `[{url: "https://h.example.org/x", token_file: ` + token + `, header: "X-Key: ` + secret + `"}]`, "alerts.webhooks[0].header: set together with token_file: use one of them"},
		{"BadHeader", `[{url: "https://h.example.org/x", header: "` + secret + `"}]`, `alerts.webhooks[0].header: want one "Name: value" header`},
		{"ReservedHeader", `[{url: "https://h.example.org/x", header: "Host: ` + secret + `"}]`, "alerts.webhooks[0].header: want one \"Name: value\" header: Host is set by evindex itself"},
		{"SameHost", `[{url: "https://h.example.org/a?t=` + secret + `"}, {url: "https://h.example.org/b"}]`, "alerts.webhooks[1].name: required: alerts.webhooks[0] has the same host (h.example.org); give each a name"},
		{"SameName", `[{name: x, url: "https://a.example.org/"}, {name: x, url: "https://b.example.org/"}]`, `alerts.webhooks[1].name: "x" is already the name of alerts.webhooks[0]`},
		{"BadName", `[{name: "a b", url: "https://a.example.org/"}]`, `alerts.webhooks[0].name: "a b": use letters, digits and . _ : -`},
		{"NegativeTimeout", `[{url: "https://a.example.org/", timeout: -1s}]`, "alerts.webhooks[0].timeout: must be positive"},
		{"UnknownKey", `[{url: "https://a.example.org/", tokenfile: x}]`, "alerts.webhooks[0].tokenfile: unknown key (line 2) (did you mean token_file?)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := configCheck(t, "alerts:\n  webhooks: "+tc.hooks+"\n", nil)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant %q", code, stdout, stderr, tc.want)
			}
			if strings.Contains(stdout+stderr, secret) {
				t.Errorf("the output shows the secret:\n%s%s", stdout, stderr)
			}
		})
	}
	t.Run("Delivery", func(t *testing.T) {
		code, _, stderr := configCheck(t, "alerts:\n  delivery: {concurrency: 0, min_backoff: 0s, max_backoff: -1s, poll_interval: 0s}\n  external_url: evindex.example.org\n", nil)
		for _, want := range []string{"alerts.delivery.concurrency: must be at least 1", "alerts.delivery.min_backoff: must be positive",
			"alerts.delivery.max_backoff: -1s: must be at least min_backoff (0s)", "alerts.delivery.poll_interval: must be positive", "alerts.external_url: not an absolute"} {
			if code != 2 || !strings.Contains(stderr, want) {
				t.Errorf("exit %d, stderr lacks %q:\n%s", code, want, stderr)
			}
		}
	})
	t.Run("Sound", func(t *testing.T) {
		text := "alerts:\n  webhooks:\n    - {name: pager, url: \"https://bot:" + secret + "@pager.example.org/v1/" + secret + "?token=" + secret + "\", token_file: " + token + "}\n" +
			"    - {url: \"${HOOK_URL}\", header: \"X-Api-Key: ${HOOK_KEY}\"}\n"
		code, stdout, stderr := configCheck(t, text, map[string]string{"HOOK_URL": "https://chat.example.org/hooks/" + secret, "HOOK_KEY": secret})
		want := "sound; 0 sources; 2 webhooks: pager (https://REDACTED@pager.example.org/REDACTED?token=REDACTED), chat.example.org (https://chat.example.org/REDACTED)\n"
		if code != 0 || !strings.HasSuffix(stdout, want) || stderr != "" {
			t.Errorf("exit %d, stdout %q, stderr %q; want %q", code, stdout, stderr, want)
		}
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("the output shows the secret:\n%s%s", stdout, stderr)
		}
		cfg, err := ParseConfig([]byte(text), func(k string) string {
			return map[string]string{"HOOK_URL": "https://chat.example.org/x", "HOOK_KEY": "k"}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		hooks := cfg.Alerts.webhooks()
		if len(hooks) != 2 || hooks[0].Name != "pager" || hooks[1].Name != "chat.example.org" || hooks[1].Header != "X-Api-Key: k" {
			t.Errorf("webhooks %+v", hooks)
		}
	})
}

// TestREADMEWebhookConfigPassesCheck runs `evindex config check` on the
// README's webhook configuration: sound once its variables are set, with
// the webhooks listed by name and redacted URL.
func TestREADMEWebhookConfigPassesCheck(t *testing.T) {
	text := readmeBlock(t, "A webhook configuration (", "yaml")
	env := map[string]string{"EVINDEX_CHAT_HOOK_URL": "https://hooks.example.org/services/T0/B0/S3CRETVALUE", "EVINDEX_PAGER_TOKEN": "S3CRETVALUE"}
	code, stdout, stderr := configCheck(t, text, env)
	want := "sound; 0 sources; 2 webhooks: chat (https://hooks.example.org/REDACTED), pager (https://pager.example.org/REDACTED)\n"
	if code != 0 || !strings.HasSuffix(stdout, want) || strings.Contains(stdout+stderr, "S3CRET") {
		t.Fatalf("the README's webhook config: exit %d\n%s%s", code, stdout, stderr)
	}
	code, _, stderr = configCheck(t, text, nil)
	for v := range env {
		if code != 2 || !strings.Contains(stderr, "${"+v+"} is not set") {
			t.Errorf("without %s: exit %d\n%s", v, code, stderr)
		}
	}
}
