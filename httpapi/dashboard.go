package httpapi

import (
	"embed"
	"io/fs"
	"net/http"
)

// webFiles are the dashboard's page and assets; nothing is loaded from
// elsewhere, so the page works offline.
//
//go:embed web
var webFiles embed.FS

var webRoot, _ = fs.Sub(webFiles, "web")

func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, webRoot, "index.html")
}

func (s *Server) handleAssets(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	http.StripPrefix("/assets/", http.FileServerFS(webRoot)).ServeHTTP(w, r)
}
