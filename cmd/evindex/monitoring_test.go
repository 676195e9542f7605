package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/httpapi"
	"github.com/evindex/evindex/indexer/spacemesh/smsim"
)

// needTool finds a Prometheus binary; CI installs Debian's prometheus, so
// there a missing one fails the test instead of skipping it.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (.ci/run installs Debian's prometheus)", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

func runOut(t *testing.T, args ...string) []byte {
	t.Helper()
	var out, errs bytes.Buffer
	if err := run(context.Background(), args, func(string) string { return "" }, &out, &errs); err != nil {
		t.Fatalf("evindex %s: %v\n%s", strings.Join(args, " "), err, errs.String())
	}
	return out.Bytes()
}

// TestPrometheusRules checks the generated rules with promtool and runs
// the rule unit tests of testdata/rules_test.yml against them.
func TestPrometheusRules(t *testing.T) {
	promtool := needTool(t, "promtool")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yml"), runOut(t, "monitoring", "prometheus-rules"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join("testdata", "rules_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules_test.yml"), tests, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check", "rules", "rules.yml"}, {"test", "rules", "rules_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestGrafanaDashboard: one panel per metric definition, each querying it.
func TestGrafanaDashboard(t *testing.T) {
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(runOut(t, "monitoring", "grafana-dashboard"), &d); err != nil {
		t.Fatal(err)
	}
	defs := httpapi.MonitoringMetrics()
	if len(d.Panels) != len(defs) {
		t.Fatalf("%d panels for %d metrics", len(d.Panels), len(defs))
	}
	for i, m := range defs {
		if p := d.Panels[i]; p.Title != m.Name || len(p.Targets) != 1 || !strings.Contains(p.Targets[0].Expr, m.Name+"{") {
			t.Errorf("panel %d: %+v, want a query of %s", i, p, m.Name)
		}
	}
	if err := run(context.Background(), []string{"monitoring", "rules"}, func(string) string { return "" }, io.Discard, io.Discard); !isUsage(err) {
		t.Fatalf("monitoring rules: %v, want a usage error", err)
	}
}

func isUsage(err error) bool { return err != nil && exitCode(err, io.Discard) == 2 }

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestPrometheusScrapesEvindex starts a real Prometheus on loopback that
// scrapes a running evindex indexing a simulated Spacemesh node, and reads
// a per-node metric back through Prometheus's HTTP API.
func TestPrometheusScrapesEvindex(t *testing.T) {
	prom := needTool(t, "prometheus")
	sim, err := smsim.Start(context.Background(), "127.0.0.1:0", "127.0.0.1:0", smsim.Config{Seed: 3, Layers: 40, LayersPerEpoch: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`data_dir: %s
sources:
  - name: sm-test
    kind: spacemesh
    public_endpoint: %s
    coinbases: [%s]
`, filepath.Join(dir, "data"), sim.PublicAddr(), strings.Join(sim.Coinbases(), ", ")))
	d := startDaemon(t, cfg)
	t.Cleanup(d.stop)

	promAddr := freePort(t)
	promCfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promCfg, []byte(fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: evindex
    static_configs: [{targets: ['%s']}]
`, d.addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(prom, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	query := url.Values{"query": {`evindex_node_peers{source="sm-test",job="evindex"}`}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var answer struct {
			Status string `json:"status"`
			Data   struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Value  [2]any            `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		res, err := http.Get("http://" + promAddr + "/api/v1/query?" + query.Encode())
		if err == nil {
			err = json.NewDecoder(res.Body).Decode(&answer)
			res.Body.Close()
		}
		if err == nil && answer.Status == "success" && len(answer.Data.Result) == 1 {
			r := answer.Data.Result[0]
			if r.Metric["node"] != "sm-test" || r.Value[1] == "" {
				t.Fatalf("Prometheus answered %+v", r)
			}
			res, err := http.Get("http://" + d.addr + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			metrics := string(body)
			if want := fmt.Sprintf(`evindex_node_peers{node="sm-test",source="sm-test"} %v`, r.Value[1]); !strings.Contains(metrics, want) {
				t.Fatalf("Prometheus has %v peers, /metrics does not say %q", r.Value[1], want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus has no evindex_node_peers (last answer %+v, %v)\n%s", answer, err, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
