package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evindex/evindex/indexer/flow/flowsim"
	"github.com/evindex/evindex/indexer/presearch/presim"
	"github.com/evindex/evindex/indexer/spacemesh/smsim"
)

// episodeView is one item of GET /v1/alerts, with its annotations.
type episodeView struct {
	Source      string            `json:"source"`
	Rule        string            `json:"rule"`
	Subject     string            `json:"subject"`
	State       string            `json:"state"`
	StartsAt    time.Time         `json:"starts_at"`
	EndsAt      *time.Time        `json:"ends_at"`
	Fingerprint string            `json:"fingerprint"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// listPages reads every page of the list at path (a path with a query,
// without limit or cursor) from the API at addr.
func listPages[T any](addr, path string) ([]T, error) {
	var out []T
	cursor := ""
	for range 1000 {
		resp, err := http.Get("http://" + addr + path + "&limit=500&cursor=" + url.QueryEscape(cursor))
		if err != nil {
			return nil, err
		}
		var page struct {
			Items      []T    `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		out = append(out, page.Items...)
		if cursor = page.NextCursor; cursor == "" {
			return out, nil
		}
	}
	return nil, fmt.Errorf("GET %s: the list does not end", path)
}

// alertsOf reads every alert episode the API at addr lists for query.
func alertsOf(t *testing.T, addr, query string) []episodeView {
	t.Helper()
	out, err := listPages[episodeView](addr, "/v1/alerts?"+query)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitAlerts polls the alerts of query until ok accepts them, for at most
// limit, and returns them.
func waitAlerts(t *testing.T, p *process, addr, query, what string, limit time.Duration, ok func([]episodeView) bool) []episodeView {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		as := alertsOf(t, addr, query)
		if ok(as) {
			return as
		}
		if p.exited() {
			t.Fatalf("evindex exited (%v) while waiting for %s:\n%s", p.err, what, p.logs.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s; alerts %+v\n%s", what, limit, as, p.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitLive polls /v1/sources until source is live.
func waitLive(t *testing.T, p *process, addr, source string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if srcs, err := sourcesOf(addr); err == nil && srcs[source].State == "live" {
			return
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("%s is not live (exited %v):\n%s", source, p.exited(), p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// receiver is a webhook receiver written for Alertmanager: it keeps
// every notification it is sent.
type receiver struct {
	mu  sync.Mutex
	got []notification
}

type notification struct {
	Status      string    `json:"status"`
	Fingerprint string    `json:"fingerprint"`
	StartsAt    time.Time `json:"startsAt"`
	Labels      map[string]string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var msg struct {
		Version string         `json:"version"`
		Alerts  []notification `json:"alerts"`
	}
	if err := json.NewDecoder(req.Body).Decode(&msg); err != nil || msg.Version != "4" {
		http.Error(w, "not an Alertmanager v4 message", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.got = append(r.got, msg.Alerts...)
	r.mu.Unlock()
}

// distinct is what the receiver got, deduplicated as the payload says a
// receiver should: by fingerprint, startsAt and status.
func (r *receiver) distinct(fingerprint string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, n := range r.got {
		k := n.Status + "@" + n.StartsAt.UTC().Format(time.RFC3339Nano)
		if n.Fingerprint == fingerprint && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// nodeTamper makes the simulated Presearch API say what a test wants of
// its nodes: every node connected but those in down, and no earnings in
// the stats of those in idle.
type nodeTamper struct {
	mu         sync.Mutex
	down, idle map[string]bool
}

func (nt *nodeTamper) set(down, idle []string) {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	nt.down, nt.idle = map[string]bool{}, map[string]bool{}
	for _, n := range down {
		nt.down[n] = true
	}
	for _, n := range idle {
		nt.idle[n] = true
	}
}

func (nt *nodeTamper) rewrite(stats bool, raw []byte) []byte {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	var nodes map[string]map[string]any
	if json.Unmarshal(raw, &nodes) != nil {
		return raw
	}
	for key, n := range nodes {
		if st, ok := n["status"].(map[string]any); ok {
			st["connected"] = !nt.down[key]
		}
		if p, ok := n["period"].(map[string]any); ok && stats && nt.idle[key] {
			p["total_pre_earned"] = 0
		}
	}
	out, err := json.Marshal(nodes)
	if err != nil {
		return raw
	}
	return out
}

// TestPresearchAlertsAcrossKill9 runs the real binary against the
// simulated Presearch API: a node that goes down fires node_down after
// `for` and resolves when it is back, across a kill -9 in between that
// neither loses the firing alert nor fires it again; a connected node
// whose windows earn nothing fires earnings_stopped; a webhook receiver
// gets each transition, deduplicable by fingerprint.
func TestPresearchAlertsAcrossKill9(t *testing.T) {
	bin := evindexBinary(t)
	srv, err := presim.Start(context.Background(), "127.0.0.1:0", presim.Config{Seed: 21, Nodes: 3, History: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	keys := srv.Sim.NodeKeys()
	downNode, idleNode := keys[0], keys[1]
	tamper := &nodeTamper{}
	tamper.set(nil, []string{idleNode})
	srv.Sim.TamperWith(tamper.rewrite)
	recv := &receiver{}
	hook := httptest.NewServer(recv)
	t.Cleanup(hook.Close)

	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`data_dir: %s
log: {level: info, format: json}
alerts:
  interval: 200ms
  node_down: {for: 2s}
  earnings_stopped: {windows: 3}
  webhooks:
    - {name: test-receiver, url: %s}
  delivery: {poll_interval: 100ms, min_backoff: 100ms, max_backoff: 1s}
sources:
  - name: pre
    kind: presearch
    base_url: %s
    api_key: %s
    status_interval: 15s
    backfill_days: 1
`, filepath.Join(dir, "data"), hook.URL, srv.URL, srv.Sim.APIKey()))
	args := []string{"run", "--config", cfg, "--http-listen", "127.0.0.1:0"}

	p := startProcess(t, bin, args...)
	addr := p.waitServing()
	idle := waitAlerts(t, p, addr, "rule=earnings_stopped", "earnings_stopped of the idle node", 2*time.Minute, func(as []episodeView) bool {
		return len(as) > 0
	})
	if len(idle) != 1 || idle[0].Subject != idleNode || idle[0].State != "firing" || idle[0].Labels["node"] != idleNode {
		t.Fatalf("earnings_stopped %+v: want one, firing, of %s only (the others earn)", idle, idleNode)
	}

	wentDown := time.Now()
	tamper.set([]string{downNode}, []string{idleNode})
	fired := waitAlerts(t, p, addr, "rule=node_down&state=firing", "node_down firing", 2*time.Minute, func(as []episodeView) bool {
		return len(as) > 0
	})
	if len(fired) != 1 || fired[0].Subject != downNode {
		t.Fatalf("node_down %+v: want the one node made to go down, %s", fired, downNode)
	}
	down := fired[0]
	since, err := time.Parse(time.RFC3339Nano, down.Annotations["down_since"])
	if err != nil || !down.StartsAt.Equal(since.Add(2*time.Second)) || since.Before(wentDown.Add(-time.Second)) {
		t.Fatalf("node_down %+v: want it to fire 2s after the snapshot that showed the node down (after %s)", down, wentDown)
	}

	// kill -9 while it fires; the next process, started while the node
	// is still down, finds it firing, the same episode, and does not
	// fire it again; the node comes back and it resolves.
	p.kill()
	p = startProcess(t, bin, args...)
	addr = p.waitServing()
	waitLive(t, p, addr, "pre")
	if again := alertsOf(t, addr, "rule=node_down"); len(again) != 1 || again[0].State != "firing" || !again[0].StartsAt.Equal(down.StartsAt) {
		t.Fatalf("node_down after the kill: %+v, want the one firing episode of %s", again, down.StartsAt)
	}
	tamper.set(nil, []string{idleNode})
	all := waitAlerts(t, p, addr, "rule=node_down", "node_down resolved", 2*time.Minute, func(as []episodeView) bool {
		return len(as) > 0 && as[len(as)-1].State == "resolved"
	})
	if len(all) != 1 || !all[0].StartsAt.Equal(down.StartsAt) || all[0].Fingerprint != down.Fingerprint || all[0].EndsAt == nil || all[0].EndsAt.Before(all[0].StartsAt) {
		t.Fatalf("node_down history %+v: want the one episode that fired before the kill (%s), resolved after it", all, down.StartsAt)
	}
	want := []string{"firing@" + down.StartsAt.UTC().Format(time.RFC3339Nano), "resolved@" + down.StartsAt.UTC().Format(time.RFC3339Nano)}
	deadline := time.Now().Add(time.Minute)
	for fmt.Sprint(recv.distinct(down.Fingerprint)) != fmt.Sprint(want) {
		if time.Now().After(deadline) {
			t.Fatalf("the receiver got %v of node_down, want %v", recv.distinct(down.Fingerprint), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := recv.distinct(idle[0].Fingerprint); len(got) != 1 || got[0] != "firing@"+idle[0].StartsAt.UTC().Format(time.RFC3339Nano) {
		t.Errorf("the receiver got %v of earnings_stopped, want its firing", got)
	}
	if again := alertsOf(t, addr, "rule=earnings_stopped"); len(again) != 1 || !again[0].StartsAt.Equal(idle[0].StartsAt) {
		t.Errorf("earnings_stopped after the kill: %+v, want the same one episode", again)
	}
	p.stop()
}

// missedView is one item of GET /v1/rewards/missed.
type missedView struct {
	Account string `json:"account"`
	Height  uint64 `json:"height"`
	Reason  string `json:"reason"`
}

// missedEpisodesDiff says how the missed_reward episodes of the API at
// addr fail to tell of every missed reward exactly once, or "": per
// account, in order, each episode starts at the first miss past the
// last one its predecessor told of (annotation height, then last_height
// once resolved), and only the newest may still fire.
func missedEpisodesDiff(t *testing.T, addr, source string) (string, int, int) {
	t.Helper()
	misses, err := listPages[missedView](addr, "/v1/rewards/missed?source="+source)
	if err != nil {
		t.Fatal(err)
	}
	byAccount := map[string][]uint64{}
	for _, m := range misses {
		byAccount[m.Account] = append(byAccount[m.Account], m.Height)
	}
	episodes := map[string][]episodeView{}
	for _, a := range alertsOf(t, addr, "rule=missed_reward&source="+source) {
		episodes[a.Subject] = append(episodes[a.Subject], a) // (source, starts_at) order
	}
	resolved := 0
	for acct, hs := range byAccount {
		eps := episodes[acct]
		i := 0
		for j, e := range eps {
			if i >= len(hs) || e.Annotations["height"] != fmt.Sprint(hs[i]) {
				return fmt.Sprintf("%s: episode %d tells of height %s, the next untold miss is %v (misses %v)", acct, j, e.Annotations["height"], hs[i:], hs), 0, 0
			}
			if e.State == "firing" {
				if j != len(eps)-1 {
					return fmt.Sprintf("%s: episode %d fires but is not the newest", acct, j), 0, 0
				}
				i = len(hs)
				break
			}
			resolved++
			for i < len(hs) && fmt.Sprint(hs[i]) != e.Annotations["last_height"] {
				i++
			}
			if i == len(hs) {
				return fmt.Sprintf("%s: episode %d ends at height %s, not a miss", acct, j, e.Annotations["last_height"]), 0, 0
			}
			i++
		}
		if i < len(hs) {
			return fmt.Sprintf("%s: misses %v told of by no episode", acct, hs[i:]), 0, 0
		}
	}
	for acct := range episodes {
		if byAccount[acct] == nil {
			return fmt.Sprintf("episodes of %s, which missed nothing", acct), 0, 0
		}
	}
	return "", len(misses), resolved
}

// TestMissedRewardAlertsAcrossKill9 runs the real binary against the
// simulated Spacemesh node with its injected misses of both kinds: every
// missed reward is told of by exactly one missed_reward episode of its
// smesher, episodes resolve after resolve_after of chain time without a
// new miss, and a kill -9 in the middle neither loses an episode nor
// fires one twice (the webhook receiver gets each once, deduplicated).
func TestMissedRewardAlertsAcrossKill9(t *testing.T) {
	bin := evindexBinary(t)
	sim, err := smsim.Start(context.Background(), "127.0.0.1:0", "127.0.0.1:0", smsim.Config{Seed: 5, Layers: 60, LayersPerEpoch: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	recv := &receiver{}
	hook := httptest.NewServer(recv)
	t.Cleanup(hook.Close)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`data_dir: %s
log: {level: info, format: json}
alerts:
  interval: 200ms
  missed_reward: {resolve_after: 6s}
  webhooks:
    - {name: test-receiver, url: %s}
  delivery: {poll_interval: 100ms, min_backoff: 100ms, max_backoff: 1s}
sources:
  - name: sm
    kind: spacemesh
    public_endpoint: %s
    private_endpoint: %s
    smeshers: [%s]
`, filepath.Join(dir, "data"), hook.URL, sim.PublicAddr(), sim.PrivateAddr(), strings.Join(sim.OwnSmeshers(), ", ")))
	args := []string{"run", "--config", cfg, "--http-listen", "127.0.0.1:0"}

	// settled waits until the source has indexed every applied layer and
	// the episodes tell of every miss exactly once.
	settled := func(p *process, addr, what string) (misses, resolved int) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			diff := "not caught up"
			if srcs, err := sourcesOf(addr); err == nil && srcs["sm"].Checkpoint != nil && srcs["sm"].Checkpoint.Height >= uint64(sim.AppliedLayer()) {
				if diff, misses, resolved = missedEpisodesDiff(t, addr, "sm"); diff == "" {
					return misses, resolved
				}
			}
			if p.exited() || time.Now().After(deadline) {
				t.Fatalf("%s: %s\n%s", what, diff, p.logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	p := startProcess(t, bin, args...)
	addr := p.waitServing()
	settled(p, addr, "the history")
	sim.Advance(12)
	settled(p, addr, "12 layers on")
	sim.Advance(12)
	p.kill() // while it indexes the new layers
	p = startProcess(t, bin, args...)
	addr = p.waitServing()
	sim.Advance(12)
	misses, resolved := settled(p, addr, "after the kill")
	truth := map[string]bool{}
	for _, m := range sim.Missed(0, sim.AppliedLayer()) {
		truth[fmt.Sprintf("%s/%d", m.Smesher, m.Layer)] = true
	}
	eps := alertsOf(t, addr, "rule=missed_reward")
	for _, e := range eps {
		if !truth[e.Subject+"/"+e.Annotations["height"]] {
			t.Errorf("episode %+v tells of no miss of the simulator", e)
		}
	}
	if misses < 5 || resolved == 0 || len(eps) < 2 {
		t.Fatalf("%d misses, %d episodes, %d resolved: too few to show anything", misses, len(eps), resolved)
	}
	// The receiver gets every transition the history shows (an episode
	// may resolve meanwhile: the history is read again).
	deadline := time.Now().Add(time.Minute)
	for {
		diff := ""
		for _, e := range alertsOf(t, addr, "rule=missed_reward") {
			at := "@" + e.StartsAt.UTC().Format(time.RFC3339Nano)
			want := []string{"firing" + at}
			if e.State == "resolved" {
				want = append(want, "resolved"+at)
			}
			var mine []string
			for _, g := range recv.distinct(e.Fingerprint) {
				if strings.HasSuffix(g, at) {
					mine = append(mine, g)
				}
			}
			if fmt.Sprint(mine) != fmt.Sprint(want) {
				diff = fmt.Sprintf("episode %s%s: the receiver got %v, want %v", e.Subject, at, mine, want)
				break
			}
		}
		if diff == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(diff)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d misses told of by %d episodes (%d resolved)", misses, len(eps), resolved)
	p.stop()
}

// TestSourceStalledAlert runs the real binary against a simulated Flow
// access node whose event stream answers only every few seconds while
// the chain is hundreds of blocks ahead: the source stays live but
// commits nothing for longer than source_stalled's for, the alert
// fires, and the next commit resolves it.
func TestSourceStalledAlert(t *testing.T) {
	bin := evindexBinary(t)
	scfg := flowsim.DefaultConfig()
	scfg.History, scfg.BlockInterval = 300, 50*time.Millisecond
	sim, err := flowsim.Start(context.Background(), "127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	sim.SlowStreams(1000, 3*time.Second)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`data_dir: %s
log: {level: info, format: json}
alerts:
  interval: 200ms
sources:
  - name: fl
    kind: flow
    endpoint: %s
    start_height: 1
    lag_threshold: 30
    alerts: {source_stalled_for: 1s}
`, filepath.Join(dir, "data"), sim.Addr()))
	p := startProcess(t, bin, "run", "--config", cfg, "--http-listen", "127.0.0.1:0")
	addr := p.waitServing()
	fired := waitAlerts(t, p, addr, "rule=source_stalled", "source_stalled firing", time.Minute, func(as []episodeView) bool { return len(as) > 0 })
	a := fired[0]
	head, _ := strconv.ParseUint(a.Annotations["head"], 10, 64)
	cp, _ := strconv.ParseUint(a.Annotations["checkpoint"], 10, 64)
	if a.Source != "fl" || a.Subject != "" || head <= cp+30 {
		t.Fatalf("source_stalled %+v: want fl, behind by more than 30", a)
	}
	done := waitAlerts(t, p, addr, "rule=source_stalled", "source_stalled resolved", time.Minute, func(as []episodeView) bool {
		return len(as) > 0 && as[0].State == "resolved"
	})
	if r := done[0]; !r.StartsAt.Equal(a.StartsAt) || r.EndsAt == nil || r.EndsAt.Before(r.StartsAt) {
		t.Fatalf("resolved %+v: want the episode that fired (%s), ended by a commit after it", r, a.StartsAt)
	}
	p.stop()
}
