package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evindex/evindex/indexer/alerts"
	"github.com/evindex/evindex/store/postgres/pgtest"
	"github.com/evindex/evindex/store/storetest"
)

// hookReceiver is a webhook receiver on loopback, written as a receiver
// for Alertmanager would be: it decodes version 4 messages. It can be up,
// answer 503, or be down (its port refuses connections), and records each
// message it answered 2xx.
type hookReceiver struct {
	t                                *testing.T
	addr                             string // kept across restarts, so evindex's URL stays valid
	path, token, header, headerValue string

	mu      sync.Mutex
	srv     *http.Server
	unavail bool
	delay   time.Duration // before each 2xx answer
	taken   []alerts.Message
	// refused counts the 503s; badAuth the requests without the
	// credentials (never expected).
	refused, badAuth int
}

func startHookReceiver(t *testing.T, path, token, header, value string) *hookReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &hookReceiver{t: t, addr: ln.Addr().String(), path: path, token: token, header: header, headerValue: value, delay: 50 * time.Millisecond}
	r.serve(ln)
	t.Cleanup(r.down)
	return r
}

func (r *hookReceiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle)}
	r.srv = srv
	go func() { _ = srv.Serve(ln) }()
}

func (r *hookReceiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err != nil:
		w.WriteHeader(http.StatusBadRequest)
	case req.Method != http.MethodPost || req.URL.Path != r.path || req.URL.Query().Get("token") != r.token ||
		req.Header.Get(r.header) != r.headerValue || req.Header.Get("Content-Type") != "application/json":
		r.badAuth++
		w.WriteHeader(http.StatusUnauthorized)
	case r.unavail:
		r.refused++
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
	default:
		var m alerts.Message
		if err := json.Unmarshal(body, &m); err != nil || m.Version != "4" || len(m.Alerts) != 1 {
			r.t.Errorf("not an Alertmanager v4 message of one alert (%v): %s", err, body)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.taken = append(r.taken, m)
		// A slow answer: a kill often lands after the receiver took a
		// message and before evindex heard so, and it comes again.
		r.mu.Unlock()
		time.Sleep(r.delay)
		r.mu.Lock()
	}
}

// down closes the port: connections are refused until up.
func (r *hookReceiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// up serves again on the same port; unavailable answers every message 503.
func (r *hookReceiver) up(unavailable bool) {
	r.t.Helper()
	r.mu.Lock()
	r.unavail = unavailable
	running := r.srv != nil
	r.mu.Unlock()
	if running {
		return
	}
	var ln net.Listener
	var err error
	for i := 0; i < 100; i++ { // the closed port may linger a moment
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("receiver cannot listen on %s again: %v", r.addr, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.serve(ln)
}

func (r *hookReceiver) messages() []alerts.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.taken)
}

// notice is one notification as a receiver deduplicates it.
type notice struct {
	fingerprint, status string
	startsAt            time.Time
}

func (n notice) String() string {
	return fmt.Sprintf("%s %s %s", n.fingerprint, n.status, n.startsAt.Format(time.RFC3339Nano))
}

// alertView is an item of /v1/alerts.
type alertView struct {
	Source      string            `json:"source"`
	Rule        string            `json:"rule"`
	Subject     string            `json:"subject"`
	State       string            `json:"state"`
	StartsAt    time.Time         `json:"starts_at"`
	EndsAt      *time.Time        `json:"ends_at"`
	Fingerprint string            `json:"fingerprint"`
	Labels      map[string]string `json:"labels"`
}

// alertHistory reads every page of /v1/alerts.
func alertHistory(addr string) ([]alertView, error) {
	return listPages[alertView](addr, "/v1/alerts?")
}

// metricValue reads one sample of /metrics, by its name and labels as
// written there (evindex_x{webhook="a"}); found is false when absent.
func metricValue(addr, series string) (v float64, found bool, err error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			return v, err == nil, err
		}
	}
	return 0, false, sc.Err()
}

// transitions are the notifications the alert history implies: each
// episode's firing, and its resolution once resolved.
func transitions(history []alertView) map[notice]alertView {
	out := map[notice]alertView{}
	for _, a := range history {
		out[notice{a.Fingerprint, "firing", a.StartsAt.UTC()}] = a
		if a.State == "resolved" {
			out[notice{a.Fingerprint, "resolved", a.StartsAt.UTC()}] = a
		}
	}
	return out
}

// TestWebhooksGetEveryTransitionAcrossCrashes is issue 14's webhook test
// on the real binary: evindex indexes the simulated world with missed
// Spacemesh rewards firing and resolving alerts throughout, is killed
// with SIGKILL 5 times, and its webhook receiver is down (refusing
// connections) for two of the runs and answers 503 for another. In the
// end the receiver has every firing and resolution the alert history
// (/v1/alerts) shows, each at least once, in a form that deduplicates by
// fingerprint, status and startsAt, each alert's firing before its
// resolution, with the labels and times of the history; none is lost.
// The webhook's URL token and header never reach a log, /v1/sources or
// /metrics.
func TestWebhooksGetEveryTransitionAcrossCrashes(t *testing.T) {
	webhookCrashes(t, false)
}

// TestWebhooksOnPostgresAcrossCrashes is the same on PostgreSQL with two
// processes, each ingesting the sources it holds the lease of and both
// draining the one outbox, one of them killed each time.
func TestWebhooksOnPostgresAcrossCrashes(t *testing.T) {
	webhookCrashes(t, true)
}

func webhookCrashes(t *testing.T, shared bool) {
	const (
		pathSecret   = "pathS3CRET"
		tokenSecret  = "queryS3CRET"
		headerSecret = "headerS3CRET"
		kills        = 5
	)
	bin := evindexBinary(t)
	rcv := startHookReceiver(t, "/hook/"+pathSecret, tokenSecret, "X-Hook-Token", headerSecret)
	w := startWorld(t, worldOptions{flowHistory: 2000, blockInterval: 50 * time.Millisecond, layerInterval: 100 * time.Millisecond})
	dir := t.TempDir()
	cfgText := w.config(filepath.Join(dir, "data"))
	if shared {
		cfgText = w.pgConfig(pgtest.DSN(t), 2*time.Second)
	}
	hookURL := "http://" + rcv.addr + "/hook/" + pathSecret + "?token=" + tokenSecret
	cfgText = strings.Replace(cfgText, "sources:\n", fmt.Sprintf(`alerts:
  interval: 200ms
  webhooks:
    - name: receiver
      url: %q
      header: "X-Hook-Token: %s"
      timeout: 2s
  delivery: {min_backoff: 50ms, max_backoff: 400ms, poll_interval: 50ms}
sources:
`, hookURL, headerSecret), 1)
	// Misses resolve after 3 s of chain time (3 layers of 1 s), so
	// alerts fire and resolve all through the run.
	cfgText = strings.Replace(cfgText, "    smeshers: [", "    alerts: {missed_reward_resolve_after: 3s}\n    smeshers: [", 1)
	cfg := writeConfig(t, dir, cfgText)
	args := []string{"run", "--config", cfg, "--http-listen", "127.0.0.1:0"}

	var logs []*process
	start := func() (*process, string) {
		p := startProcess(t, bin, args...)
		logs = append(logs, p)
		return p, p.waitServing()
	}
	// procs run at once: one on the bbolt file, two sharing PostgreSQL.
	var procs []*process
	var addrs []string
	if shared {
		for range 2 {
			p, addr := start()
			procs, addrs = append(procs, p), append(addrs, addr)
		}
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill moments from seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0xbeef))
	for i := 1; i <= kills; i++ {
		switch i {
		case 2, 3:
			rcv.down()
		case 4:
			rcv.up(true) // up, but 503 with Retry-After
		default:
			rcv.up(false)
		}
		victim := i % 2
		if !shared {
			p, addr := start()
			procs, addrs, victim = []*process{p}, []string{addr}, 0
		}
		after := 800*time.Millisecond + time.Duration(rng.Int64N(int64(1500*time.Millisecond)))
		select {
		case <-procs[victim].done:
			t.Fatalf("run %d: evindex exited on its own (%v):\n%s", i, procs[victim].err, procs[victim].logs.String())
		case <-time.After(after):
		}
		h, _ := alertHistory(addrs[victim])
		procs[victim].kill()
		t.Logf("kill %d after %s: %d transitions in the history, the receiver has %d notifications", i, after.Round(time.Millisecond), len(transitions(h)), len(rcv.messages()))
		if shared {
			procs[victim], addrs[victim] = start()
		}
	}

	// The last run, with the receiver up: once the world is caught up the
	// Spacemesh node goes away, so its chain time (which resolves the
	// missed-reward alerts) stops and the history comes to rest.
	rcv.up(false)
	if !shared {
		p, addr := start()
		procs, addrs = []*process{p}, []string{addr}
	}
	p, addr := procs[0], addrs[0]
	heads := w.heads()
	eventually(t, "the sources catch up", 90*time.Second, func() bool {
		srcs, err := sourcesOf(addr)
		if err != nil {
			return false
		}
		for name, h := range heads {
			if s := srcs[name]; s.Checkpoint == nil || s.Checkpoint.Height < h {
				return false
			}
		}
		return true
	}, procs...)
	w.sm.Close()

	// A quiet moment: the history read before and after the receiver's
	// messages is the same, and the outbox is empty.
	var history []alertView
	var got []alerts.Message
	quiet := func() (string, bool) {
		before, err := alertHistory(addr)
		if err != nil {
			return err.Error(), false
		}
		pending, found, err := metricValue(addr, `evindex_webhook_deliveries_pending{webhook="receiver"}`)
		if err != nil || !found || pending != 0 {
			return fmt.Sprintf("%v notifications pending (%v)", pending, err), false
		}
		got = rcv.messages()
		after, err := alertHistory(addr)
		if err != nil || fmt.Sprint(before) != fmt.Sprint(after) {
			return "the history changed meanwhile", false
		}
		history = after
		want := transitions(history)
		seen := map[notice]bool{}
		for _, m := range got {
			a := m.Alerts[0]
			seen[notice{a.Fingerprint, a.Status, a.StartsAt.UTC()}] = true
		}
		var missing []string
		for n := range want {
			if !seen[n] {
				missing = append(missing, n.String())
			}
		}
		if len(missing) > 0 || len(want) == 0 {
			return fmt.Sprintf("the receiver lacks %d of the history's %d transitions: %v", len(missing), len(want), missing), false
		}
		return "", true
	}
	for deadline := time.Now().Add(90 * time.Second); ; {
		why, ok := quiet()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no quiet moment with every transition delivered within 90s: %s\n%s", why, tailLines(p.logs.String(), 30))
		}
		time.Sleep(50 * time.Millisecond)
	}

	want := transitions(history)
	first := map[notice]int{}
	for i, m := range got {
		a := m.Alerts[0]
		n := notice{a.Fingerprint, a.Status, a.StartsAt.UTC()}
		h, ok := want[n]
		if !ok {
			t.Errorf("received %s, which the history does not show", n)
			continue
		}
		if _, dup := first[n]; !dup {
			first[n] = i
		}
		if m.Status != a.Status || m.Receiver != "receiver" || a.Labels["alertname"] != h.Rule || a.Labels["source"] != h.Source ||
			fmt.Sprint(a.Labels) != fmt.Sprint(h.Labels) {
			t.Errorf("%s: message %+v does not match the history's %+v", n, m, h)
		}
		switch {
		case a.Status == "firing" && !a.EndsAt.IsZero():
			t.Errorf("%s: a firing alert with endsAt %s, want Alertmanager's zero time", n, a.EndsAt)
		case a.Status == "resolved" && (h.EndsAt == nil || !a.EndsAt.Equal(*h.EndsAt)):
			t.Errorf("%s: endsAt %s, the history says %v", n, a.EndsAt, h.EndsAt)
		}
	}
	for n := range want {
		if n.status != "resolved" {
			continue
		}
		fired := notice{n.fingerprint, "firing", n.startsAt}
		if first[fired] > first[n] {
			t.Errorf("%s arrived before its firing", n)
		}
	}
	rules := map[string]int{}
	for _, a := range history {
		rules[a.Rule+"/"+a.State]++
	}
	rcv.mu.Lock()
	refused, badAuth := rcv.refused, rcv.badAuth
	rcv.mu.Unlock()
	t.Logf("history: %d episodes %v; the receiver took %d messages for %d transitions, %d of them again after a kill (%d answered 503, refused while down in runs 2-3)",
		len(history), rules, len(got), len(want), len(got)-len(first), refused)
	if rules["missed_reward/resolved"] == 0 || rules["missed_reward/firing"]+rules["missed_reward/resolved"] < 3 {
		t.Errorf("too few alerts to show anything: %v", rules)
	}
	if badAuth != 0 {
		t.Errorf("%d requests came without the URL token or the header", badAuth)
	}

	// The secrets stay with the receiver.
	var shown strings.Builder
	for _, path := range []string{"/v1/sources", "/metrics", "/v1/alerts"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		shown.Write(body)
	}
	for _, q := range procs {
		q.stop()
	}
	for _, q := range logs {
		shown.WriteString(q.logs.String())
		shown.WriteString(q.out.String())
	}
	for _, secret := range []string{pathSecret, tokenSecret, headerSecret} {
		if strings.Contains(shown.String(), secret) {
			t.Errorf("%s appears in a log or an API answer", secret)
		}
	}
	if !strings.Contains(shown.String(), `"webhook":"receiver"`) {
		t.Errorf("no log line names the webhook")
	}
}

// TestREADMEWebhookReceiver runs the README's minimal Python receiver and
// sends it what evindex sends: a firing, the same firing again (as after
// a crash) and the resolution. It prints one line per notification, the
// repeat ignored, so the README's deduplication works on the format.
func TestREADMEWebhookReceiver(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is missing")
		}
		t.Skip("no python3")
	}
	text := readmeBlock(t, "A\n  minimal receiver", "py")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	if !strings.Contains(text, "9095") {
		t.Fatalf("the README's receiver listens on no port 9095:\n%s", text)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-u", "-c", strings.Replace(text, "9095", port, 1))
	var out, errOut storetest.LogBuffer // stderr: http.server's access log
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	starts := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	fire := alerts.Notification{Status: "firing", StartsAt: starts, Fingerprint: "3f9a0c2e1b7d4a65",
		Labels: map[string]string{"alertname": "missed_reward", "source": "sm-demo"}, Annotations: map[string]string{"summary": "sm-demo: a missed reward"}}
	resolve := fire
	resolve.Status, resolve.EndsAt = "resolved", starts.Add(time.Hour)
	for _, n := range []alerts.Notification{fire, fire, resolve} {
		body, err := alerts.NewMessage("chat", "", n).Encode()
		if err != nil {
			t.Fatal(err)
		}
		var resp *http.Response
		eventually(t, "the receiver answers", 30*time.Second, func() bool {
			resp, err = http.Post("http://127.0.0.1:"+port+"/", "application/json", bytes.NewReader(body))
			return err == nil
		})
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("the receiver answered %s", resp.Status)
		}
	}
	want := "FIRING missed_reward sm-demo: a missed reward\nRESOLVED missed_reward sm-demo: a missed reward\n"
	eventually(t, "two lines", 30*time.Second, func() bool { return strings.Count(out.String(), "\n") >= 2 })
	if got := out.String(); got != want {
		t.Errorf("the receiver printed %q, want %q\n%s", got, want, errOut.String())
	}
}
