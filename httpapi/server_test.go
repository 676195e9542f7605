package httpapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/bolt"
	"github.com/evindex/evindex/store/storetest"
)

func TestHealthz(t *testing.T) {
	e := newEnv(t, withToken("s3cret"))
	e.token = "" // healthz needs no token
	var body map[string]string
	e.getOK("/healthz").json(t, &body)
	if body["status"] != "ok" {
		t.Fatalf("healthz = %v", body)
	}
	// Load balancers often probe with HEAD.
	res, err := http.Head(e.srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("HEAD /healthz: %d", res.StatusCode)
	}
}

func TestHealthzClosedStore(t *testing.T) {
	st, err := bolt.Open(t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvStore(t, st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if r := e.get("/healthz"); r.status != http.StatusServiceUnavailable {
		t.Fatalf("healthz on a closed store: %d %s", r.status, r.body)
	}
	if r := e.get("/readyz"); r.status != http.StatusServiceUnavailable {
		t.Fatalf("readyz on a closed store: %d %s", r.status, r.body)
	}
}

// stalledSource is a live source within its lag threshold whose head has
// been past its checkpoint, with nothing committed, for d.
func stalledSource(d, threshold time.Duration) store.SourceStatus {
	return store.SourceStatus{Name: "a", Kind: "flow", State: store.StateLive, Checkpoint: &store.Checkpoint{Height: 1000},
		HeadHeight: 1003, Lag: 3, LagThreshold: 5, StalledSince: testNow.Add(-d), StallThreshold: threshold}
}

func TestReadyz(t *testing.T) {
	live := func(name string, lag, threshold uint64) store.SourceStatus {
		return store.SourceStatus{Name: name, Kind: "flow", State: store.StateLive, Lag: lag, LagThreshold: threshold}
	}
	tests := []struct {
		name    string
		sources []store.SourceStatus
		ready   bool
		reason  string // expected in the failing source's reason
	}{
		{"NoSources", nil, true, ""},
		{"AllLive", []store.SourceStatus{live("a", 0, 5), live("b", 5, 5)}, true, ""},
		{"Starting", []store.SourceStatus{live("a", 0, 5), {Name: "b", State: store.StateStarting}}, false, "not live: starting"},
		{"Backfilling", []store.SourceStatus{{Name: "a", State: store.StateBackfilling, Progress: &store.Progress{Done: 10, Total: 100}}}, false, "not live: backfilling (10 of 100)"},
		{"LagOverThreshold", []store.SourceStatus{live("a", 6, 5)}, false, "lag 6 exceeds threshold 5"},
		{"Retrying", []store.SourceStatus{{Name: "a", State: store.StateRetrying, LastError: "dial 10.0.0.1: refused"}}, false, "not live: retrying"},
		{"Failed", []store.SourceStatus{{Name: "a", State: store.StateFailed}}, false, "not live: failed"},
		// Live, within its lag, yet nothing committed for 3 minutes while
		// the head is past the checkpoint: a store write that hangs.
		{"Stalled", []store.SourceStatus{stalledSource(3*time.Minute, 2*time.Minute)}, false,
			"stalled: source a has committed nothing for 3m0s (threshold 2m0s) while its upstream's head 1003 is 3 past its checkpoint 1000"},
		{"StalledWithinThreshold", []store.SourceStatus{stalledSource(time.Minute, 2*time.Minute)}, true, ""},
		{"StallNotJudged", []store.SourceStatus{stalledSource(time.Hour, 0)}, true, ""},
	}
	e := newEnv(t, withToken("tok"))
	e.token = ""
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.status.set(tt.sources...)
			r := e.get("/readyz")
			var body struct {
				Status  string `json:"status"`
				Sources []struct {
					Name, State, Reason string
				} `json:"sources"`
			}
			r.json(t, &body)
			if tt.ready {
				if r.status != http.StatusOK || body.Status != "ok" {
					t.Fatalf("readyz = %d %s, want 200", r.status, r.body)
				}
				return
			}
			if r.status != http.StatusServiceUnavailable || body.Status != "unavailable" {
				t.Fatalf("readyz = %d %s, want 503", r.status, r.body)
			}
			if !strings.Contains(string(r.body), tt.reason) {
				t.Fatalf("readyz body %s lacks reason %q", r.body, tt.reason)
			}
			if strings.Contains(string(r.body), "10.0.0.1") {
				t.Fatalf("readyz (served without a token) shows a source's last error: %s", r.body)
			}
		})
	}
	t.Run("Transitions", func(t *testing.T) {
		st := store.SourceStatus{Name: "flow-main", State: store.StateStarting, LagThreshold: 10}
		for _, step := range []struct {
			state store.SourceState
			lag   uint64
			want  int
		}{
			{store.StateStarting, 0, 503}, {store.StateBackfilling, 5000, 503}, {store.StateLive, 3, 200},
			{store.StateLive, 50, 503}, {store.StateLive, 10, 200}, {store.StateRetrying, 0, 503}, {store.StateLive, 0, 200},
		} {
			st.State, st.Lag = step.state, step.lag
			e.status.set(st)
			if r := e.get("/readyz"); r.status != step.want {
				t.Fatalf("state %s lag %d: readyz %d, want %d: %s", step.state, step.lag, r.status, step.want, r.body)
			}
		}
	})
}

func TestAuth(t *testing.T) {
	const token = "correct-horse-battery"
	e := newEnv(t, withToken(token))
	tests := []struct {
		path   string
		auth   string
		status int
	}{
		{"/healthz", "", 200},
		{"/readyz", "", 200},
		{"/", "", 200},
		{"/v1/sources", "", 401},
		{"/v1/sources", "Bearer wrong", 401},
		{"/v1/sources", "Basic " + token, 401},
		{"/v1/sources", token, 401},
		{"/v1/sources", "Bearer " + token, 200},
		{"/v1/sources", "bearer " + token, 200},
		{"/v1/events?limit=1", "", 401},
		{"/v1/events?limit=1", "Bearer " + token, 200},
		{"/v1/admin/backup", "", 401},
		{"/v1/admin/backup", "Bearer " + token + "x", 401},
		{"/metrics", "", 401},
		{"/metrics", "Bearer " + token, 200},
		{"/openapi.json", "", 401},
	}
	e.token = ""
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.path+" "+tt.auth, "/", "_"), func(t *testing.T) {
			r := e.get(tt.path, "Authorization", tt.auth)
			if r.status != tt.status {
				t.Fatalf("GET %s with %q: %d, want %d: %s", tt.path, tt.auth, r.status, tt.status, r.body)
			}
			if tt.status == 401 {
				var body struct{ Error errorDetail }
				r.json(t, &body)
				if body.Error.Code != "unauthorized" || r.header.Get("WWW-Authenticate") == "" {
					t.Fatalf("401 body %s, WWW-Authenticate %q", r.body, r.header.Get("WWW-Authenticate"))
				}
				if strings.Contains(string(r.body), token) {
					t.Fatal("401 body shows the token")
				}
			}
		})
	}
	t.Run("NoTokenConfigured", func(t *testing.T) {
		open := newEnvStore(t, e.st)
		open.getOK("/v1/sources")
		if r := open.get("/v1/admin/backup"); r.status != open.backupStatus() {
			t.Fatalf("/v1/admin/backup without a token configured: status %d", r.status)
		}
	})
}

func TestErrorsHideInternals(t *testing.T) {
	st, err := bolt.Open(t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvStore(t, st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/events", "/v1/rewards", "/v1/sources", "/v1/blocks/flow-main/1", "/v1/rewards/summary"} {
		r := e.get(path, "X-Request-Id", "req-"+strings.ReplaceAll(path, "/", "-"))
		var body struct{ Error errorDetail }
		r.json(t, &body)
		want := "internal error (request id req-" + strings.ReplaceAll(path, "/", "-") + ")"
		if r.status != 500 || body.Error.Code != "internal" || body.Error.Message != want {
			t.Fatalf("GET %s: %d %s, want 500 %q", path, r.status, r.body, want)
		}
		if r.header.Get("X-Request-Id") != "req-"+strings.ReplaceAll(path, "/", "-") {
			t.Fatalf("GET %s: X-Request-Id %q", path, r.header.Get("X-Request-Id"))
		}
		if strings.Contains(string(r.body), "database") {
			t.Fatalf("GET %s: internal detail reaches the client: %s", path, r.body)
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "req--v1-events") || !strings.Contains(logs, "database not open") {
		t.Fatalf("internal errors not logged with request id and cause:\n%s", logs)
	}
}

func TestPanicIsInternalError(t *testing.T) {
	logs := &storetest.LogBuffer{}
	s := New(Config{Store: storetest.MustOpen(t), Logger: zerolog.New(logs)})
	r := s.router
	r.Get("/panic", func(http.ResponseWriter, *http.Request) { panic("boom: secret detail") })
	srv := httptest.NewServer(r)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/panic")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct{ Error errorDetail }
	if err := decodeJSON(res.Body, &body); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 500 || body.Error.Code != "internal" || strings.Contains(body.Error.Message, "secret") {
		t.Fatalf("panic answered %d %+v", res.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "boom: secret detail") {
		t.Fatalf("panic not logged: %s", logs)
	}
}

func TestNotFoundRoutes(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/v1/nope", "/v1/sources/nope", "/v1/sources/nope/coverage", "/v1/blocks/flow-main/999999",
		"/v1/blocks/nope/1000", "/v1/nodes/presearch/nope/history"} {
		r := e.get(path)
		var body struct{ Error errorDetail }
		r.json(t, &body)
		if r.status != 404 || body.Error.Code != "not_found" || body.Error.Message == "" {
			t.Fatalf("GET %s: %d %s, want 404 not_found", path, r.status, r.body)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/events", strings.NewReader("{}"))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /v1/events: %d", res.StatusCode)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "evindex_test_gauge", Help: "A test gauge."})
	g.Set(42)
	reg.MustRegister(g)
	st := storetest.MustOpen(t)
	e := newEnvStore(t, st, func(c *Config) { c.Gatherer = reg })
	r := e.getOK("/metrics")
	if !strings.Contains(string(r.body), "evindex_test_gauge 42") {
		t.Fatalf("metrics lack the gatherer's gauge:\n%s", r.body)
	}
}

func TestServeShutsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Store: storetest.MustOpen(t), Logger: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	res, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("healthz: %d", res.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after shutdown: %v", err)
		}
	case <-time.After(30 * time.Second): // a hang guard, not a timing assertion
		t.Fatal("Serve did not return after ctx ended")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Fatal("server still answers after shutdown")
	}
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	ln2.Close()
	if err := New(Config{Store: storetest.MustOpen(t)}).Serve(context.Background(), ln2); err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve on a closed listener: %v", err)
	}
}

// TestRequestDurationHistogram checks evindex_http_request_duration_seconds:
// one series per route pattern (never a path with an id in it) and status.
func TestRequestDurationHistogram(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, func(c *Config) { c.Gatherer, c.Registerer = reg, reg })
	e.getOK("/v1/events?limit=1")
	e.getOK("/v1/events?limit=2")
	e.get("/v1/events?from_heigth=1")
	e.getOK("/v1/nodes/presearch/" + url.PathEscape(preNodeA) + "/history")
	e.get("/no/such/route")
	body := string(e.getOK("/metrics").body)
	for _, want := range []string{
		`evindex_http_request_duration_seconds_count{route="/v1/events",status="200"} 2`,
		`evindex_http_request_duration_seconds_count{route="/v1/events",status="400"} 1`,
		`evindex_http_request_duration_seconds_count{route="/v1/nodes/{source}/{node}/history",status="200"} 1`,
		`evindex_http_request_duration_seconds_count{route="none",status="404"} 1`,
		`evindex_http_request_duration_seconds_bucket{route="/v1/events",status="200",le="+Inf"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, "MFkw") {
		t.Error("a node id is a label value")
	}
}
