package httpapi

import (
	_ "embed"
	"net/http"
)

// openapiDoc is the OpenAPI 3 document of API.md, served as is. A test
// validates real responses of every route against it.
//
//go:embed openapi.json
var openapiDoc []byte

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(openapiDoc)
}
