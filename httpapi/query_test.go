package httpapi

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/evindex/evindex/store"
)

// apiError is the error body as a client reads it.
func errorOf(t *testing.T, r response) errorDetail {
	t.Helper()
	var body struct{ Error errorDetail }
	r.json(t, &body)
	return body.Error
}

// TestQueryMistakesAreErrors sends the mistakes that used to answer as if
// the parameter were absent (an unfiltered or an empty list): each is now
// a 400 that names the parameter and says what to do.
func TestQueryMistakesAreErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, path, param, message string
	}{
		{"Typo", "/v1/events?from_heigth=5", "from_heigth", "from_heigth: unknown parameter (did you mean from_height?)"},
		{"TypoInCase", "/v1/rewards?Account=x", "Account", "Account: unknown parameter (did you mean account?)"},
		{"Dashes", "/v1/blocks?from-height=5", "from-height", "from-height: unknown parameter (did you mean from_height?)"},
		{"Unknown", "/v1/blocks?foo=bar", "foo", "foo: unknown parameter; blocks takes source, from_height, to_height, order, limit, cursor, format"},
		{"TimeOnEvents", "/v1/events?from_time=2026-11-01", "from_time", "from_time: not supported by events, which are selected by height: use from_height and to_height"},
		{"HeightOnSummary", "/v1/rewards/summary?from_height=1", "from_height", "from_height: not supported by rewards-summary, which are selected by time"},
		{"LimitOnSummary", "/v1/rewards/summary?limit=5", "limit", "limit: not supported by rewards-summary, which takes source, account, kind, from_time, to_time, group_by, tz, format"},
		{"CursorOnNodes", "/v1/nodes?cursor=abc", "cursor", "cursor: not supported by nodes"},
		{"ParamOnSource", "/v1/sources/flow-main?limit=1", "limit", "limit: not supported by a source, which takes no parameters"},
		{"ParamOnBlock", "/v1/blocks/flow-main/1000?format=csv", "format", "format: not supported by a block"},
		{"ParamOnCoverage", "/v1/sources/flow-main/coverage?from_height=1", "from_height", "from_height: not supported by coverage"},
		{"Malformed", "/v1/events?cursor=%%%garbage", "cursor", `cursor: malformed query string: the value "%%%garbage" is not percent-encoded`},
		{"MalformedName", "/v1/rewards?acc%zzount=1", "acc%zzount", `acc%zzount: malformed query string: the name "acc%zzount"`},
		{"MalformedOnHistory", "/v1/nodes/presearch/x/history?from_time=%zz", "from_time", "from_time: malformed query string"},
		{"Semicolon", "/v1/events?limit=5;order=desc", "limit", "limit: malformed query string"},
		{"Repeated", "/v1/events?limit=5&limit=7", "limit", "limit: given 2 times; it takes one value"},
		{"RepeatedSource", "/v1/rewards/summary?source=sm-node&source=presearch", "source", "source: given 2 times"},
		{"RepeatedFormat", "/v1/sources?format=csv&format=json", "format", "format: given 2 times"},
		{"BadKind", "/v1/rewards?kind=smesher_rewards", "kind", `kind: "smesher_rewards" is not one of flow_node_reward, flow_delegator_reward, smesher_reward, presearch_period (did you mean smesher_reward?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.get(tt.path)
			d := errorOf(t, r)
			if r.status != 400 || d.Code != "invalid_argument" || d.Param != tt.param || !strings.HasPrefix(d.Message, tt.message) {
				t.Fatalf("GET %s: %d %s\nwant 400, param %q, message starting %q", tt.path, r.status, r.body, tt.param, tt.message)
			}
		})
	}
	// A list several values may select still takes them repeated.
	var p page
	e.getOK("/v1/rewards?account="+flowNodeA+"&account="+flowNodeB+"&limit=1000").json(t, &p)
	if len(p.Items) != flowBlocks/10 {
		t.Fatalf("two accounts: %d rewards, want %d", len(p.Items), flowBlocks/10)
	}
}

// TestUnknownSourceIsNotFound checks that a source that is neither stored
// nor configured is a 404 naming the sources there are, on every list, in
// every format and on every route with a source in its path, while a
// configured source with nothing stored yet is an empty list.
func TestUnknownSourceIsNotFound(t *testing.T) {
	e := newEnv(t)
	e.status.set(store.SourceStatus{Name: "eth-new", Kind: "flow", State: store.StateStarting})
	const names = "the sources are eth-new, flow-main, presearch, sm-node"
	for _, path := range []string{
		"/v1/events?source=flow-mian", "/v1/blocks?source=flow-mian", "/v1/rewards?source=flow-mian",
		"/v1/rewards/summary?source=flow-mian", "/v1/nodes?source=flow-mian", "/v1/rejected?source=flow-mian",
		"/v1/rewards?source=flow-mian&format=csv", "/v1/events?source=flow-mian&format=parquet", "/v1/nodes?source=flow-mian&format=ndjson",
	} {
		r := e.get(path)
		d := errorOf(t, r)
		want := `source: no source named "flow-mian" (did you mean flow-main?); ` + names
		if r.status != 404 || d.Code != "not_found" || d.Param != "source" || d.Message != want {
			t.Errorf("GET %s: %d %s\nwant 404 %q", path, r.status, r.body, want)
		}
	}
	for _, path := range []string{"/v1/sources/nope", "/v1/sources/nope/coverage", "/v1/blocks/nope/1", "/v1/nodes/nope/x/history"} {
		r := e.get(path)
		if d := errorOf(t, r); r.status != 404 || !strings.Contains(d.Message, `no source named "nope"; `+names) {
			t.Errorf("GET %s: %d %s, want 404 naming the sources", path, r.status, r.body)
		}
	}
	for _, path := range []string{"/v1/events?source=eth-new", "/v1/rewards?source=eth-new", "/v1/nodes?source=eth-new"} {
		var p page
		if e.getOK(path).json(t, &p); len(p.Items) != 0 {
			t.Errorf("GET %s: %d items from a source with nothing stored", path, len(p.Items))
		}
	}
}

// TestCursorBelongsToItsQuery checks that a next_cursor resumes only the
// query that handed it out: with the other order or other filters it is a
// 400, not a list that silently ends or skips rows; with another page size
// or format it resumes.
func TestCursorBelongsToItsQuery(t *testing.T) {
	e := newEnv(t)
	var p page
	e.getOK("/v1/events?limit=5").json(t, &p)
	asc := p.NextCursor
	e.getOK("/v1/rewards?account="+flowNodeA+"&limit=2").json(t, &p)
	acct := p.NextCursor
	e.getOK("/v1/nodes/presearch/"+url.PathEscape(preNodeA)+"/history?limit=1").json(t, &p)
	hist := p.NextCursor
	for _, path := range []string{
		"/v1/events?order=desc&limit=5&cursor=" + asc,
		"/v1/events?source=flow-main&limit=5&cursor=" + asc,
		"/v1/events?format=csv&type=" + rewardsType + "&cursor=" + asc,
		"/v1/blocks?cursor=" + asc,
		"/v1/rewards?account=" + flowNodeB + "&limit=2&cursor=" + acct,
		"/v1/rewards?account=" + flowNodeA + "&kind=flow_node_reward&cursor=" + acct,
		"/v1/nodes/presearch/" + url.PathEscape(preNodeB) + "/history?cursor=" + hist,
		"/v1/nodes/presearch/" + url.PathEscape(preNodeA) + "/history?order=desc&cursor=" + hist,
	} {
		r := e.get(path)
		if d := errorOf(t, r); r.status != 400 || d.Param != "cursor" || !strings.Contains(d.Message, "same filters and order") {
			t.Errorf("GET %s: %d %s, want 400 naming the cursor", path, r.status, r.body)
		}
	}
	// The same query resumes, whatever the page size or format.
	e.getOK("/v1/events?limit=7&cursor="+asc).json(t, &p)
	if len(p.Items) != 7 || p.Items[0]["height"] != float64(flowFrom+1) {
		t.Fatalf("resumed page %v", p.Items[:1])
	}
	if rows := csvRecords(t, e.getOK("/v1/rewards?account="+flowNodeA+"&format=csv&cursor="+acct).body); len(rows) != 1+flowBlocks/20-2 {
		t.Fatalf("csv from a cursor: %d rows", len(rows))
	}
	// A desc walk still reaches every row.
	if n := len(e.allPages("/v1/blocks?order=desc&source=sm-node", 50)); n != smLayers {
		t.Fatalf("desc walk: %d blocks, want %d", n, smLayers)
	}
}

// TestIdsInAnyForm checks that ids match in the forms people paste them:
// Flow addresses and hex ids with or without 0x and in any case, bech32 in
// upper case, and a Presearch key whose '+' an unencoded URL turned into a
// space.
func TestIdsInAnyForm(t *testing.T) {
	e := newEnv(t)
	count := func(path string) int {
		t.Helper()
		return len(e.allPages(path, 1000))
	}
	addr := "f8d6e0586b0a20c9" // flowEvents: every fifth height
	want := count("/v1/events?address=" + addr)
	if want == 0 {
		t.Fatal("fixture has no events of the address")
	}
	for _, a := range []string{"0x" + addr, "0X" + strings.ToUpper(addr), strings.ToUpper(addr)} {
		if got := count("/v1/events?address=" + a); got != want {
			t.Errorf("address=%s: %d events, want %d", a, got, want)
		}
	}
	rewards := count("/v1/events?type=" + rewardsType)
	for _, typ := range []string{"A.0x" + stakingAddr + ".FlowIDTableStaking.RewardsPaid", "A.0X" + strings.ToUpper(stakingAddr) + ".FlowIDTableStaking.RewardsPaid"} {
		if got := count("/v1/events?type=" + typ); got != rewards || got == 0 {
			t.Errorf("type=%s: %d events, want %d", typ, got, rewards)
		}
		contract := strings.TrimSuffix(typ, ".RewardsPaid")
		if got := count("/v1/events?contract=" + contract); got != rewards {
			t.Errorf("contract=%s: %d events, want %d", contract, got, rewards)
		}
	}
	nodeA := count("/v1/rewards?account=" + flowNodeA)
	for _, a := range []string{"0x" + flowNodeA, strings.ToUpper(flowNodeA)} {
		if got := count("/v1/rewards?account=" + a); got != nodeA || got == 0 {
			t.Errorf("account=%s: %d rewards, want %d", a, got, nodeA)
		}
	}
	sm := count("/v1/rewards?account=" + smCoinbase)
	for _, a := range []string{strings.ToUpper(smCoinbase), "0x" + strings.ToUpper(smSmesher)} {
		if got := count("/v1/rewards?account=" + a); got != sm || got == 0 {
			t.Errorf("account=%s: %d rewards, want %d", a, got, sm)
		}
	}
	// preNodeA holds a '+': unencoded in a query string it arrives as a
	// space, in a path as itself or %20.
	pre := count("/v1/rewards?account=" + url.QueryEscape(preNodeA))
	if got := count("/v1/rewards?account=" + preNodeA); got != pre || got == 0 {
		t.Errorf("unencoded presearch key: %d rewards, want %d", got, pre)
	}
	if got := count("/v1/rewards?source=presearch&account=" + strings.ToLower(url.QueryEscape(preNodeA))); got != 0 {
		t.Errorf("a presearch key in another case matched %d rewards: base64 is case sensitive", got)
	}
	hist := count("/v1/nodes/presearch/" + url.PathEscape(preNodeA) + "/history")
	spaced := strings.ReplaceAll(url.PathEscape(preNodeA), "+", "%20")
	if got := count("/v1/nodes/presearch/" + spaced + "/history"); got != hist || got == 0 {
		t.Errorf("history of a key with a space: %d, want %d", got, hist)
	}
	if got := len(e.getOK("/v1/rewards/summary?group_by=month&account="+preNodeA).body) - len(`{"items":[]}`+"\n"); got == 0 {
		t.Error("summary of an unencoded presearch key is empty")
	}
}

// TestRewardKindFilter checks /v1/rewards and its summary by kind.
func TestRewardKindFilter(t *testing.T) {
	e := newEnv(t)
	for kind, want := range map[string]int{
		"flow_node_reward": flowBlocks / 10, "smesher_reward": smLayers / 4, "presearch_period": 2 * preHours,
		"flow_delegator_reward": 0, "smesher_reward,presearch_period": smLayers/4 + 2*preHours,
	} {
		items := e.allPages("/v1/rewards?kind="+kind, 1000)
		if len(items) != want {
			t.Errorf("kind=%s: %d rewards, want %d", kind, len(items), want)
		}
		for _, it := range items {
			if !slices.Contains(strings.Split(kind, ","), it["kind"].(string)) {
				t.Fatalf("kind=%s: a %v reward", kind, it["kind"])
			}
		}
	}
	var s struct{ Items []map[string]any }
	e.getOK("/v1/rewards/summary?group_by=month&kind=smesher_reward").json(t, &s)
	if len(s.Items) == 0 {
		t.Fatal("summary by kind is empty")
	}
	for _, it := range s.Items {
		if it["unit"] != "SMH" {
			t.Fatalf("summary of smesher rewards holds %v", it)
		}
	}
}

// TestDocumentedParametersAreTheAccepted checks every route of the
// OpenAPI document against the server: each parameter the document lists
// is taken, and every other parameter of the API is refused as
// unsupported, so the document and the 400s cannot drift apart.
func TestDocumentedParametersAreTheAccepted(t *testing.T) {
	e := newEnv(t)
	doc := loadOpenAPI(t)
	fill := strings.NewReplacer("{name}", "flow-main", "{source}", "presearch", "{height}", "1", "{node}", url.PathEscape(preNodeA))
	for path, item := range doc.Paths.Map() {
		if !strings.HasPrefix(path, "/v1/") || path == "/v1/admin/backup" {
			continue
		}
		documented := map[string]bool{}
		for _, p := range item.Get.Parameters {
			if p.Value.In == openapi3.ParameterInQuery {
				documented[p.Value.Name] = true
			}
		}
		for _, name := range queryParams {
			r := e.get(fill.Replace(path) + "?" + name + "=")
			refused := r.status == 400 && errorOf(t, r).Param == name && strings.Contains(errorOf(t, r).Message, "not supported")
			if documented[name] == refused {
				t.Errorf("%s?%s=: %d %s; documented: %v", path, name, r.status, r.body, documented[name])
			}
		}
	}
}
