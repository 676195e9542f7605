package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/go-chi/chi/v5"

	"github.com/evindex/evindex/store"
)

func init() {
	// Export bodies are opaque strings to the document; their rows are
	// checked against the item schemas separately below.
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/vnd.apache.parquet", openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/javascript", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/css", openapi3filter.PlainBodyDecoder)
}

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openapiDoc)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

// TestOpenAPIResponses validates real responses of every route, in every
// status the tests can provoke, against the served document, and checks
// that the document and the router list the same routes.
func TestOpenAPIResponses(t *testing.T) {
	const token = "doc-token"
	e := newEnv(t, withToken(token))
	e.status.set(
		store.SourceStatus{Name: flowSource, Kind: "flow", Endpoint: "127.0.0.1:3569", State: store.StateLive, HeadHeight: 2000, Lag: 1, LagThreshold: 5},
		store.SourceStatus{Name: smSource, Kind: "spacemesh", Endpoint: "127.0.0.1:9092", State: store.StateBackfilling,
			Progress: &store.Progress{Done: 1, Total: 9, Rate: 0.5, ETA: 16e9}},
	)
	served := e.getOK("/openapi.json")
	if !bytes.Equal(served.body, openapiDoc) {
		t.Fatal("/openapi.json does not serve the embedded document")
	}
	doc := loadOpenAPI(t)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}

	var p page
	e.getOK("/v1/events?limit=1").json(t, &p)
	preHist := "/v1/nodes/presearch/" + url.PathEscape(preNodeA) + "/history"
	itemSchema := map[string]string{
		"/v1/sources": "Source", "/v1/events": "Event", "/v1/blocks": "Block", "/v1/rewards": "Reward", "/v1/rewards/summary": "Summary", "/v1/rewards/epochs": "EpochTotal",
		"/v1/nodes": "NodeStatus", "/v1/nodes/{source}/{node}/history": "NodeStatus", "/v1/rejected": "Rejected",
		"/v1/rewards/missed": "MissedReward", "/v1/rewards/missed/coverage": "EpochCoverage", "/v1/alerts": "Alert",
	}
	cases := []struct {
		path   string
		status int
		header []string // extra request headers; "Authorization", "" drops the token
	}{
		{"/healthz", 200, []string{"Authorization", ""}},
		{"/readyz", 503, []string{"Authorization", ""}},
		{"/metrics", 200, nil},
		{"/metrics", 401, []string{"Authorization", ""}},
		{"/openapi.json", 200, nil},
		{"/openapi.json", 401, []string{"Authorization", "Bearer nope"}},
		{"/", 200, []string{"Authorization", ""}},
		{"/assets/app.js", 200, []string{"Authorization", ""}},
		{"/assets/app.css", 200, []string{"Authorization", ""}},
		{"/v1/sources", 200, nil},
		{"/v1/sources", 401, []string{"Authorization", ""}},
		{"/v1/sources?format=ndjson", 200, nil},
		{"/v1/sources?format=csv", 200, nil},
		{"/v1/sources?format=parquet", 200, nil},
		{"/v1/sources?format=tsv", 400, nil},
		{"/v1/sources/flow-main", 200, nil},
		{"/v1/sources/sm-node", 200, nil},
		{"/v1/sources/presearch", 200, nil},
		{"/v1/sources/nope", 404, nil},
		{"/v1/sources/flow-main/coverage", 200, nil},
		{"/v1/sources/nope/coverage", 404, nil},
		{"/v1/events?type=" + rewardsType + "&limit=5", 200, nil},
		{"/v1/events?cursor=" + p.NextCursor + "&limit=3&order=asc", 200, nil},
		{"/v1/events?limit=3&format=ndjson", 200, nil},
		{"/v1/events?limit=3&format=csv", 200, nil},
		{"/v1/events?limit=3&format=parquet", 200, nil},
		{"/v1/events?from_height=x", 400, nil},
		{"/v1/events?source=nope", 404, nil},
		{"/v1/events?from_heigth=1", 400, nil},
		{"/v1/events", 401, []string{"Authorization", ""}},
		{"/v1/blocks?source=sm-node&limit=5", 200, nil},
		{"/v1/blocks?limit=2", 200, []string{"Accept", "application/x-ndjson"}},
		{"/v1/blocks?limit=2&format=csv", 200, nil},
		{"/v1/blocks?limit=2&format=parquet", 200, nil},
		{"/v1/blocks?limit=5000", 400, nil},
		{"/v1/blocks/sm-node/80700", 200, nil},
		{"/v1/blocks/sm-node/1", 404, nil},
		{"/v1/blocks/sm-node/x", 400, nil},
		{"/v1/rewards?limit=1000", 200, nil},
		{"/v1/rewards?format=ndjson", 200, nil},
		{"/v1/rewards?format=csv&limit=4", 200, nil},
		{"/v1/rewards?format=parquet&limit=4", 200, nil},
		{"/v1/rewards?from_time=yesterday", 400, nil},
		{"/v1/rewards?kind=smesher_reward&kind=presearch_period&limit=3", 200, nil},
		{"/v1/rewards?source=nope&format=csv", 404, nil},
		{"/v1/rewards/summary?group_by=day", 200, nil},
		{"/v1/rewards/summary?group_by=epoch&source=sm-node", 200, nil},
		{"/v1/rewards/epochs?source=flow-main", 200, nil},
		{"/v1/rewards/epochs?from_epoch=3&to_epoch=2", 400, nil},
		{"/v1/rewards/epochs?format=csv", 200, nil},
		{"/v1/rewards/summary?group_by=week&tz=Europe/Berlin&format=ndjson", 200, nil},
		{"/v1/rewards/summary?group_by=month&format=csv", 200, nil},
		{"/v1/rewards/summary?group_by=month&format=parquet", 200, nil},
		{"/v1/rewards/summary?tz=Nowhere/City", 400, nil},
		{"/v1/nodes", 200, nil},
		{"/v1/nodes?format=ndjson", 200, nil},
		{"/v1/nodes?format=csv", 200, nil},
		{"/v1/nodes?format=parquet", 200, nil},
		{"/v1/nodes?format=x", 400, nil},
		{preHist + "?limit=3", 200, nil},
		{preHist + "?format=ndjson", 200, nil},
		{preHist + "?format=csv", 200, nil},
		{preHist + "?format=parquet", 200, nil},
		{preHist + "?to_time=x", 400, nil},
		{"/v1/nodes/presearch/nope/history", 404, nil},
		{"/v1/rewards/missed", 200, nil},
		{"/v1/rewards/missed?source=sm-node&account=" + smSmesher + "&from_height=1&to_height=100000&limit=2", 200, nil},
		{"/v1/rewards/missed?from_time=2020-01-01&to_time=2099-01-01&order=desc&limit=1", 200, nil},
		{"/v1/rewards/missed?format=ndjson", 200, nil},
		{"/v1/rewards/missed?format=csv", 200, nil},
		{"/v1/rewards/missed?format=parquet", 200, nil},
		{"/v1/rewards/missed?cursor=nope", 400, nil},
		{"/v1/rewards/missed", 401, []string{"Authorization", ""}},
		{"/v1/rewards/missed/coverage", 200, nil},
		{"/v1/rewards/missed/coverage?source=sm-node&account=" + smSmesher, 200, nil},
		{"/v1/rewards/missed/coverage?format=ndjson", 200, nil},
		{"/v1/rewards/missed/coverage?format=csv", 200, nil},
		{"/v1/rewards/missed/coverage?format=parquet", 200, nil},
		{"/v1/rejected", 200, nil},
		{"/v1/rejected?source=flow-main&from_height=1&limit=1", 200, nil},
		{"/v1/rejected?format=ndjson", 200, nil},
		{"/v1/rejected?format=csv", 200, nil},
		{"/v1/rejected?format=parquet", 200, nil},
		{"/v1/rejected?cursor=nope", 400, nil},
		{"/v1/rejected", 401, []string{"Authorization", ""}},
		{"/v1/alerts", 200, nil},
		{"/v1/alerts?state=firing&source=presearch&rule=node_down&order=desc&limit=1", 200, nil},
		{"/v1/alerts?state=resolved&format=ndjson", 200, nil},
		{"/v1/alerts?format=csv", 200, nil},
		{"/v1/alerts?format=parquet", 200, nil},
		{"/v1/alerts?state=pending", 400, nil},
		{"/v1/alerts?source=nope", 404, nil},
		{"/v1/alerts", 401, []string{"Authorization", ""}},
		{"/v1/admin/backup", e.backupStatus(), nil},
		{"/v1/admin/backup", 401, []string{"Authorization", ""}},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, e.srv.URL+c.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+token)
			for i := 0; i+1 < len(c.header); i += 2 {
				if c.header[i+1] == "" {
					req.Header.Del(c.header[i])
				} else {
					req.Header.Set(c.header[i], c.header[i+1])
				}
			}
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %.300s", res.StatusCode, c.status, body)
			}
			// The document's router matches the decoded path; a node id
			// holding an escaped slash must stay one segment.
			lookup := req.Clone(context.Background())
			if req.URL.RawPath != "" {
				lookup.URL.Path = req.URL.RawPath
			}
			route, pathParams, err := router.FindRoute(lookup)
			if err != nil {
				t.Fatalf("the document has no route for %s: %v", c.path, err)
			}
			covered[route.Path] = true
			in := &openapi3filter.ResponseValidationInput{
				RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams, Route: route},
				Status:                 res.StatusCode,
				Header:                 res.Header,
				Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
			}
			in.SetBodyBytes(body)
			if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
				t.Fatalf("response does not match the document: %v\n%.500s", err, body)
			}
			if res.Header.Get("Content-Type") == "application/x-ndjson" {
				schema := doc.Components.Schemas[itemSchema[route.Path]].Value
				lines := bytes.Split(bytes.TrimSpace(body), []byte("\n"))
				for _, line := range lines {
					var v any
					if err := json.Unmarshal(line, &v); err != nil {
						t.Fatal(err)
					}
					if err := schema.VisitJSON(v); err != nil {
						t.Fatalf("ndjson row does not match %s: %v\n%s", itemSchema[route.Path], err, line)
					}
				}
			}
		})
	}

	var docPaths []string
	for path, item := range doc.Paths.Map() {
		docPaths = append(docPaths, path)
		if item.Get == nil || len(item.Operations()) != 1 {
			t.Errorf("%s: every route is a GET", path)
		}
		if !covered[path] {
			t.Errorf("%s: no response validated against the document", path)
		}
	}
	var routes []string
	err = chi.Walk(New(Config{Store: e.st}).router, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if method == http.MethodGet {
			routes = append(routes, strings.Replace(route, "/assets/*", "/assets/{file}", 1))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(docPaths)
	slices.Sort(routes)
	if !slices.Equal(docPaths, routes) {
		t.Fatalf("document paths %v\nrouter paths   %v", docPaths, routes)
	}
	for _, want := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json", "/", "/v1/sources", "/v1/sources/{name}",
		"/v1/sources/{name}/coverage", "/v1/events", "/v1/blocks", "/v1/blocks/{source}/{height}", "/v1/rewards",
		"/v1/rewards/summary", "/v1/nodes", "/v1/nodes/{source}/{node}/history", "/v1/rejected", "/v1/rewards/missed", "/v1/admin/backup"} {
		if !slices.Contains(docPaths, want) {
			t.Errorf("API.md route %s is missing from the document", want)
		}
	}
}
