package httpapi

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/evindex/evindex/store"
)

// TestOpenAPIReadyz validates both answers of /readyz against the
// document: TestOpenAPIResponses has a backfilling source, so it sees only
// the 503.
func TestOpenAPIReadyz(t *testing.T) {
	doc := loadOpenAPI(t)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		status store.SourceStatus
		want   int
	}{
		{"Live", store.SourceStatus{Name: flowSource, Kind: "flow", State: store.StateLive, HeadHeight: 2000, Lag: 1, LagThreshold: 5}, 200},
		{"Lagging", store.SourceStatus{Name: flowSource, Kind: "flow", State: store.StateLive, HeadHeight: 2000, Lag: 9, LagThreshold: 5}, 503},
		{"Retrying", store.SourceStatus{Name: flowSource, Kind: "flow", State: store.StateRetrying, LastError: "connection refused"}, 503},
		{"Stalled", stalledSource(time.Hour, time.Minute), 503},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.status.set(tt.status)
			req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/readyz", nil)
			if err != nil {
				t.Fatal(err)
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
			if res.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.want, body)
			}
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatal(err)
			}
			in := &openapi3filter.ResponseValidationInput{
				RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
				Status:                 res.StatusCode,
				Header:                 res.Header,
				Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
			}
			in.SetBodyBytes(body)
			if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
				t.Fatalf("response does not match the document: %v\n%s", err, body)
			}
		})
	}
}
